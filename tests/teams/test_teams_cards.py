"""The Adaptive Card renderer: valid Adaptive Card 1.5, golden output, escaping of user text,
and the architecture rule that keeps botbuilder behind the transport interface."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from bot.protocol import ids
from bot.protocol.replies import (
    Choices,
    Confirmation,
    Facts,
    FieldKind,
    Form,
    FormField,
    Option,
    Text,
    Tone,
)
from cards.teams import (
    CardLabels,
    escape,
    render_card,
    render_chosen,
    render_form,
    render_submitted,
)
from tests.teams.conftest import card_errors

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden")

MENU = Choices("What can I do for you?", (
    Option("new_ticket", "Open a ticket", primary=True), Option("my_tickets", "My tickets"),
    Option("quote", "Get a quote"), Option("escalate", "Escalate a ticket"), Option("contacts", "Contacts and rates"),
), ids.MENU)
SUMMARY = Confirmation("Please check your ticket", (("Kind", "Incident"), ("Module", "Invoicing")),
                       ids.StepAnswer("new_ticket", "summary", "1a2b3c4d"), Option("confirm", "Create the ticket", primary=True),
                       Option("edit", "Edit a field"), Option("cancel", "Cancel", danger=True))
FORM = Form("quote", "Rate quote", (
    FormField("service", "Service", FieldKind.SINGLE_CHOICE, options=(Option("teamviewer", "TeamViewer"),
                                                                        Option("database", "Database"))),
    FormField("date", "Date", FieldKind.DATE, value="2026-11-26"),
    FormField("time", "Start", FieldKind.TIME, value="16:00"),
    FormField("duration", "Duration", FieldKind.SHORT_TEXT, hint="e.g. 1h30", max_length=20),
    FormField("participants", "Participants", FieldKind.NUMBER, required=False, value="1"),
    FormField("email", "E-mail", FieldKind.EMAIL, value="a@b.be"),
    FormField("phone", "Phone", FieldKind.PHONE),
    FormField("notes", "Notes", FieldKind.LONG_TEXT, required=False),
), "Get the quote", "Cancel", intro="All times are Brussels time.")


def golden(name: str, card: dict) -> None:
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(card, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"missing golden file {path} (run with UPDATE_GOLDEN=1 once)"
    assert rendered == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_golden_welcome_like_card():
    card = render_card((Text("Your ticket CS-2026-00001 was created.", Tone.SUCCESS),
                        Facts((("Service desk", "+32 3 800 5 800"), ("E-mail", "servicedesk@caresolutions.be")),
                              "Contacts"), MENU), lang="en")
    assert card_errors(card) == []
    golden("menu_card", card)


def test_golden_confirmation_card():
    card = render_card((SUMMARY,), lang="en")
    assert card_errors(card) == []
    golden("confirmation_card", card)


def test_golden_form_card_with_errors():
    card = render_form(FORM, lang="fr", labels=CardLabels(required="Ce champ est obligatoire."),
                       errors={"duration": "Durée invalide"})
    assert card_errors(card) == []
    golden("form_card_with_errors", card)


def test_form_inputs():
    card = render_form(FORM)
    inputs = {e["id"]: e for e in card["body"] if e["type"].startswith("Input.")}
    assert [e for e in inputs] == [f.name for f in FORM.fields]
    assert inputs["service"]["type"] == "Input.ChoiceSet" and inputs["service"]["isRequired"] is True
    assert inputs["date"] == {**inputs["date"], "type": "Input.Date", "value": "2026-11-26"}
    assert inputs["time"]["type"] == "Input.Time" and inputs["participants"]["value"] == 1
    assert inputs["email"]["style"] == "email" and inputs["phone"]["style"] == "tel"
    assert inputs["notes"]["isMultiline"] is True and "isRequired" not in inputs["notes"]
    assert inputs["duration"]["placeholder"] == "e.g. 1h30" and inputs["duration"]["maxLength"] == 20
    assert all(e["errorMessage"] for e in inputs.values())


def test_many_options_become_a_choice_set():
    options = tuple(Option(f"CS-2026-0000{i}", f"CS-2026-0000{i}") for i in range(1, 9))
    card = render_card((Choices("Which ticket?", options, ids.StepAnswer("escalate", "ticket", "abcd1234")),))
    assert card_errors(card) == []
    [choice_set] = [e for e in card["body"] if e["type"] == "Input.ChoiceSet"]
    assert choice_set["id"] == "value" and len(choice_set["choices"]) == 8


def test_used_cards_have_no_actions():
    for card in (render_chosen("What kind?", "Incident"), render_submitted(FORM, {"service": "database",
                                                                                   "duration": "1h"})):
        assert card_errors(card) == []
        assert "Action." not in json.dumps(card) and "Input." not in json.dumps(card)
    assert "Database" in json.dumps(render_submitted(FORM, {"service": "database"}))


@pytest.mark.parametrize("evil, safe", [
    ("[click me](https://evil.example)", "\\[click me\\](https://evil.example)"),
    ("<at>Naïda</at> please", "\\<at\\>Naïda\\</at\\> please"),
    ("![img](https://evil.example/x.png)", "!\\[img\\](https://evil.example/x.png)"),
    ("\\[still escaped]", "\\\\\\[still escaped\\]"),
    ("C:\\Program Files\\App 1.5 - 50% *done*", "C:\\Program Files\\App 1.5 - 50% *done*"),
])
def test_user_text_cannot_inject_links_or_mentions(evil, safe):
    assert escape(evil) == safe
    card = render_card((Text(evil), Facts(((evil, evil),))))
    text = json.dumps(card)
    assert json.dumps(safe)[1:-1] in text


def test_rtl_is_never_used_and_version_is_at_most_1_5():
    cards = [render_card((MENU, SUMMARY)), render_form(FORM)]
    for card in cards:
        assert card["version"] == "1.5"
        assert '"rtl"' not in json.dumps(card)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _users_of(sdk: set[str]) -> list[str]:
    users = sorted(str(p.relative_to(ROOT)) for folder in ("adapters", "cards", "bot")
                   for p in (ROOT / folder).rglob("*.py") if _imports(p) & sdk)
    return [u for u in users if not u.startswith("adapters/slack")]


def test_botbuilder_stays_behind_the_transport_interface():
    assert _users_of({"botbuilder", "botframework", "msrest"}) == ["adapters/teams/botbuilder_transport.py"]


def test_the_agents_sdk_stays_behind_the_transport_interface():
    assert _users_of({"microsoft_agents", "msal"}) == ["adapters/teams/agents_transport.py"]


def test_cards_import_only_the_reply_model():
    import sys

    stdlib = set(sys.stdlib_module_names)
    assert all(name in stdlib or name in ("bot", "cards") for name in _imports(ROOT / "cards" / "teams.py"))


def test_the_schema_check_can_fail():
    bad = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "x", "colour": "red"}]}
    assert card_errors(bad)
    rtl = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Container", "items": [], "rtl": True}]}
    assert card_errors(rtl)  # the 1.5 schema spells it "rtl?": the renderer never uses it


def test_oncall_page_card_carries_the_facts_and_the_acknowledge_button():
    """Issue 15: the page to the person on duty, as Teams shows it (a valid Adaptive Card 1.5),
    in the recipient's language, with the escalation ack button's typed value."""
    from bot.app.notifications import PAGE, render
    from bot.domain.config import Settings

    payload = {"ticket": "CS-2026-00007", "step": 1, "role": "on_duty", "repeat": False,
               "requester": "Camille Dubois <camille.dubois@atelier-lumiere.be>", "phone": "+32 2 555 67 89",
               "company": "Atelier Lumière", "module": "Facturation", "summary": "Erreur 42 à l'impression",
               "urgency": "critical", "percent": "150", "basis": "default", "fee_warning": True}
    response = render(PAGE, payload, "fr", Settings())
    card = render_card(response.replies, lang="fr")
    assert card_errors(card) == []
    text = json.dumps(card, ensure_ascii=False)
    for needed in ("vous êtes de garde", "Atelier Lumière", "+32 2 555 67 89", "Erreur 42",
                   "150 % du tarif horaire (la grille tarifaire standard)", "pas de module de support"):
        assert needed in text, needed
    [ack] = [a for block in card["body"] if block.get("type") == "ActionSet" for a in block["actions"]
             if a["data"].get("value") == str(ids.EscalationChoice(ids.EscalationVerb.ACKNOWLEDGE, "CS-2026-00007"))]
    assert ack["data"]["action"] == str(ids.ESCALATION) and ack["style"] == "positive"
