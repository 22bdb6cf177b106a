"""The dialog engine without any I/O: the new-ticket flow, validation, back/cancel/help, the
out-of-hours rules with a set clock, forms, quotes and escalations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.dialogs.engine import DirectoryEntry, Effect, EffectKind
from bot.domain.model import Company, Ticket, TicketKind, TicketStatus, Urgency
from bot.protocol.replies import Choices, Confirmation, Text, Tone

from tests.core.engine_driver import LOTTE, Driver, context

DESCRIPTION = "The invoice print job fails with error 42 since this morning's update"


def walk_incident(d: Driver, urgency: str = "normal") -> None:
    d.start("new_ticket")
    assert d.at == "kind"
    d.say("1")  # incident, by number
    assert d.at == "contact"
    d.click("yes")
    assert d.at == "module"  # company known from the directory: not asked
    d.say("Invoicing module")
    d.say(DESCRIPTION)
    assert d.at == "reproduce"
    d.say("Open an invoice, press Print")
    d.say("Restarted the PC; same error for a colleague")
    assert d.at == "urgency"
    d.click(urgency)


def test_incident_flow_to_confirmation_and_effect():
    d = Driver(context())
    walk_incident(d)
    assert d.at == "summary"
    assert isinstance(d.last.replies[-1], Confirmation)
    d.click("confirm")
    effect = d.last.effect
    assert effect is not None and effect.kind is EffectKind.CREATE_TICKET
    assert effect.payload == {
        "kind": "incident", "name": "Lotte Peeters", "email": "lotte@acme.be", "phone": "+32 3 555 12 34",
        "company": "ACME", "module": "Invoicing module", "description": DESCRIPTION,
        "reproduce": "Open an invoice, press Print", "diagnostics": "Restarted the PC; same error for a colleague",
        "urgency": "normal", "emergency": False,
    }


def test_service_request_skips_reproduce_and_diagnostics():
    d = Driver(context())
    d.start("new_ticket")
    d.click("service_request")
    d.click("yes")
    d.say("Reporting")
    d.say("How can I export the monthly sales report to Excel with the VAT columns?")
    assert d.at == "urgency"


def test_unknown_user_is_asked_contact_details_with_validation():
    # Someone the platform gives no e-mail for, whose address is nobody's in the directory (the
    # runner looked it up): asked the contact details, and never a company (staff set it later).
    jan = DirectoryEntry("jan@example.be")
    d = Driver(context(contact=None, company=None, named={"jan@example.be": jan}))
    d.start("new_ticket")
    d.click("change_request")
    assert d.at == "name"
    d.say("Jan Jansen")
    assert d.at == "email"
    out = d.say("jan at example")
    assert d.at == "email" and "e-mail address" in out
    d.say("jan@example.be")
    out = d.say("12345")
    assert d.at == "phone" and "phone number" in out
    d.say("0470 12 34 56")  # Belgian mobile, national format
    assert d.data["phone"] == "+32 470 12 34 56"
    assert d.at == "module" and d.data.get("company") is None


def test_vague_or_short_description_is_asked_again_with_the_reason():
    d = Driver(context())
    d.start("new_ticket", kind="incident")
    d.click("yes")
    d.say("ERP")
    out = d.say("it doesn't work")
    assert d.at == "description" and "more detail" in out
    out = d.say("error, help please, it does not work, urgent!")
    assert d.at == "description" and "too vague" in out
    d.say(DESCRIPTION)
    assert d.at == "reproduce"


def test_back_returns_to_previous_question_and_keeps_answers():
    d = Driver(context())
    d.start("new_ticket", kind="incident")
    d.click("yes")
    d.say("Invoicing")
    assert d.at == "description"
    d.say("back")
    assert d.at == "module"
    out = d.last.replies
    assert any(isinstance(r, Choices) and r.options[0].value == "Invoicing" for r in out)  # offer to keep it
    d.say("1")
    assert d.at == "description" and d.data["module"] == "Invoicing"


def test_back_at_the_first_question_and_help_stay_put():
    d = Driver(context())
    d.start("new_ticket")
    out = d.say("back")
    assert d.at == "kind" and "first question" in out
    out = d.say("help")
    assert d.at == "kind" and "disruption" in out


def test_cancel_finishes_without_effect():
    d = Driver(context())
    walk_incident(d)
    d.say("cancel")
    assert d.state is None and d.last.effect is None and d.last.done


def test_cancel_in_french_and_dutch():
    for lang, word in (("fr", "annuler"), ("nl", "annuleren")):
        d = Driver(context(lang=lang))
        d.start("new_ticket")
        d.say(word)
        assert d.state is None and d.last.effect is None


def test_edit_from_summary_returns_to_summary():
    d = Driver(context())
    walk_incident(d)
    d.click("edit")
    assert d.at == "edit"
    d.click("module")
    assert d.at == "module"
    d.say("Warehouse scanner")
    assert d.at == "summary" and d.data["module"] == "Warehouse scanner"


def test_changing_kind_to_incident_asks_the_missing_incident_questions():
    d = Driver(context())
    d.start("new_ticket", kind="service_request")
    d.click("yes")
    d.say("Reporting")
    d.say("How can I export the monthly sales report to Excel with the VAT columns?")
    d.click("low")
    assert d.at == "summary"
    d.click("edit")
    d.click("kind")
    d.click("incident")
    assert d.at == "reproduce"
    d.say("steps")
    d.say("tests")
    assert d.at == "summary"


def test_stale_button_is_refused_and_question_repeated():
    d = Driver(context())
    d.start("new_ticket")
    stale = d.engine.handle(d.ctx, d.state, None, "new_ticket:summary:deadbeef", __import__("bot.dialogs.engine", fromlist=["Answer"]).Answer(text="confirm"))
    assert stale.effect is None and stale.state["state"] == "kind"
    assert any(isinstance(r, Text) and r.tone is Tone.WARNING for r in stale.replies)


# ---- out of office hours (rules page §1) -------------------------------------------------------

@pytest.mark.parametrize(
    "now,percent",
    [
        ("2026-11-28T22:30", "150"),  # Saturday night
        ("2026-11-29T11:00", "200"),  # Sunday
        ("2026-11-11T10:00", "200"),  # Armistice Day, a Wednesday
        ("2026-11-26T19:00", "150"),  # weekday evening
    ],
)
def test_urgent_incident_out_of_hours_asks_for_acceptance(now, percent):
    d = Driver(context(now=now))
    walk_incident(d, urgency="critical")
    assert d.at == "emergency"
    text = "\n".join(r.text for r in d.last.replies if isinstance(r, Text))
    assert f"{percent} %" in text
    assert "support module" in text  # ACME has none: extra fees may apply
    d.click("yes")
    assert d.at == "summary" and d.data["emergency"] is True
    d.click("confirm")
    assert d.last.effect.payload["emergency"] is True
    # what was accepted travels with the ticket: the multiplier, its basis, the fee warning
    payload = d.last.effect.payload
    assert (payload["accepted_percent"], payload["accepted_basis"], payload["fee_warning"]) == (percent, "default", True)


def test_sla_surcharge_is_the_customers_own():
    klok = Company("Klok", support_module=True, multiplier_overrides={"sunday": __import__("decimal").Decimal("1.5")})
    d = Driver(context(now="2026-11-29T11:00", company=klok, contact=replace(LOTTE, company="Klok")))
    walk_incident(d, urgency="high")
    text = "\n".join(r.text for r in d.last.replies if isinstance(r, Text))
    assert "150 %" in text and "support module" not in text
    d.click("yes")
    d.click("confirm")
    payload = d.last.effect.payload
    assert (payload["accepted_percent"], payload["accepted_basis"], payload["fee_warning"]) == ("150", "sla", False)


def test_declining_registers_for_next_business_day():
    d = Driver(context(now="2026-11-28T22:30"))
    walk_incident(d, urgency="critical")
    out = d.click("no")
    assert d.at == "summary" and d.data["emergency"] is False and d.data["ooh"] == "declined"
    assert "Monday 30 November 2026" in out


def test_person_not_named_in_sla_is_told_when_office_hours_start_and_not_sent_to_the_phone():
    jonas = replace(LOTTE, email="jonas@acme.be", name="Jonas", sla_named=False)
    d = Driver(context(now="2026-11-28T22:30", contact=jonas))
    walk_incident(d, urgency="critical")
    assert d.at == "summary" and d.data["ooh"] == "not_named" and d.data["emergency"] is False
    warning = next(r for r in d.last.replies if isinstance(r, Text) and r.tone is Tone.WARNING)
    assert "named in your company's SLA" in warning.text and "Monday 30 November 2026" in warning.text
    assert "a colleague who is named in your company's SLA may call" in warning.text
    # the 24/7 line is not offered for what the rules refuse them (rules page §1.3)
    assert "+32 3 800 5 800" not in warning.text


def test_question_out_of_hours_is_deferred_to_office_hours():
    d = Driver(context(now="2026-11-26T19:00"))
    d.start("new_ticket", kind="service_request")
    d.click("yes")
    d.say("Reporting")
    d.say("How can I export the monthly sales report to Excel with the VAT columns?")
    out = d.click("critical")
    assert d.at == "summary" and d.data["ooh"] == "deferred"
    assert "Friday 27 November 2026" in out
    assert "only for disruptions (incidents)" in out  # why it waits, though it is critical


def test_urgent_incident_in_office_hours_goes_straight_to_summary():
    d = Driver(context(now="2026-11-26T10:00"))
    walk_incident(d, urgency="critical")
    assert d.at == "summary" and d.data["ooh"] is None


# ---- the one-shot form ------------------------------------------------------------------------


def test_form_and_chat_share_validation():
    d = Driver(context(contact=None, company=None, named={"jan@x.be": DirectoryEntry("jan@x.be")}))
    d.start("new_ticket")
    result = d.submit("new_ticket", kind="incident", name="", email="nope", phone="12", company="X",
                      module="ERP", description="broken", reproduce="", diagnostics="", urgency="normal")
    assert set(result.field_errors) == {"name", "email", "phone", "description", "reproduce", "diagnostics"}
    assert result.effect is None
    result = d.submit("new_ticket", kind="incident", name="Jan", email="jan@x.be", phone="+32 3 555 12 34",
                      company="X", module="ERP", description=DESCRIPTION, reproduce="steps", diagnostics="tests",
                      urgency="normal")
    assert not result.field_errors and d.at == "summary"
    assert d.data["company"] is None  # a company typed in by someone outside the directory is ignored


def test_confirmed_form_creates_directly():
    d = Driver(context())
    d.start("new_ticket")
    result = d.submit("new_ticket", confirmed=True, kind="service_request", name="Lotte", email="lotte@acme.be",
                      phone="03 555 12 34", module="ERP", description=DESCRIPTION, urgency="low")
    assert result.effect is not None and result.effect.payload["company"] == "ACME"


# ---- quotes ---------------------------------------------------------------------------------------


def test_quote_dialog_in_french_formats_money_the_french_way():
    d = Driver(context(lang="fr", company=None, contact=None))
    d.start("quote")
    d.click("teamviewer")
    d.say("26/11/2026")
    d.say("16h")
    out = d.say("2h30")
    assert d.at == "participants"
    out = d.say("4")
    assert d.at == "participants"  # at most 3
    out = d.say("2")
    assert d.state is None
    assert "332,18\xa0€" in out and "229,97\xa0€" in out


def test_quote_dialog_validates_date_time_and_duration():
    d = Driver(context())
    d.start("quote", service="development")
    assert d.at == "date"
    d.say("the 32nd")
    assert d.at == "date"
    d.say("tomorrow")
    d.say("25:00")
    assert d.at == "time"
    d.say("09:00")
    d.say("0m")
    assert d.at == "duration"
    d.say("30h")
    assert d.at == "duration"
    out = d.say("1h")
    assert d.state is None and "€111.32" in out


# ---- escalations ------------------------------------------------------------------------------


def _ticket(number: str, company: str = "ACME", status: TicketStatus = TicketStatus.NEW,
            kind: TicketKind = TicketKind.INCIDENT) -> Ticket:
    from datetime import datetime, timezone

    now = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    return Ticket(1, number, kind, status, "lotte@acme.be", "Lotte", None, company,
                  "ERP", DESCRIPTION, None, None, Urgency.NORMAL, "console", False, now, now)


def test_escalation_flow():
    d = Driver(context(tickets=(_ticket("CS-2026-00007"), _ticket("CS-2026-00003", status=TicketStatus.RESOLVED))))
    d.start("escalate")
    assert d.options() == ["CS-2026-00007", "CS-2026-00003"]
    d.say("cs-2026-00003")  # typed, in lower case
    assert d.at == "reason"
    d.click("solution")
    d.say("The workaround you sent does not fix the print job.")
    d.click("confirm")
    assert d.last.effect.kind == "create_escalation"
    assert d.last.effect.payload == {"ticket": "CS-2026-00003", "reason": "solution",
                                     "comment": "The workaround you sent does not fix the print job."}


@pytest.mark.parametrize("kind,status,offered", [
    (TicketKind.INCIDENT, TicketStatus.NEW, False),
    (TicketKind.INCIDENT, TicketStatus.IN_PROGRESS, False),
    (TicketKind.INCIDENT, TicketStatus.RESOLVED, True),
    (TicketKind.SERVICE_REQUEST, TicketStatus.CLOSED, True),
    (TicketKind.CHANGE_REQUEST, TicketStatus.APPROVED, False),
    (TicketKind.CHANGE_REQUEST, TicketStatus.SCHEDULED, False),
    (TicketKind.CHANGE_REQUEST, TicketStatus.RELEASED, True),
])
def test_the_solution_reason_is_offered_only_once_a_solution_was_given(kind, status, offered):
    d = Driver(context(tickets=(_ticket("CS-2026-00005", status=status, kind=kind),)))
    d.start("escalate", number="CS-2026-00005")
    assert d.at == "reason"
    assert ("solution" in d.options()) is offered
    assert {"feedback", "attitude"} <= set(d.options())
    said = "".join(r.text for r in d.last.replies if isinstance(r, Text))
    assert ("solution is inadequate\" can be chosen" in said or "not been released yet" in said) is not offered
    d.say("solution")
    assert (d.at == "comment") is offered  # typed when not offered: asked again


def test_escalating_a_ticket_not_in_my_list_is_impossible():
    d = Driver(context(tickets=(_ticket("CS-2026-00007"),)))
    d.start("escalate", number="CS-2026-00099")
    assert d.state is None and "found no ticket CS-2026-00099" in "".join(
        r.text for r in d.last.replies if isinstance(r, Text))
    d.start("escalate")
    d.say("CS-2026-00099")
    assert d.at == "ticket"  # not one of the options: asked again


def test_an_effects_kind_is_one_the_runner_knows():
    # Read from its word too (the kind's value is that word), and nothing else.
    assert Effect("log_time", {}).kind is EffectKind.LOG_TIME == "log_time"
    assert {k.value for k in EffectKind} == {"create_ticket", "create_escalation", "log_time", "add_comment",
                                            "register_ticket"}
    with pytest.raises(ValueError):
        Effect("delete_everything", {})
