"""The Block Kit renderer: escaping, Block Kit limits (truncated safely), forms to modals, and
every payload valid for slack_sdk's own models."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.protocol.ids import LOADING, MENU, FlowModal, FormModal, SlackActionId, StepAnswer, parse_slack_action_id
from bot.protocol.replies import Choices, Confirmation, Facts, FieldKind, Form, FormField, Option, Text, Tone
from cards import slack as cards
from tests.slack.conftest import validate_blocks, validate_view


def test_escape_the_three_characters_slack_gives_a_meaning():
    assert cards.escape("<!channel> Tom & Jerry > <@U1>") == "&lt;!channel&gt; Tom &amp; Jerry &gt; &lt;@U1&gt;"
    assert cards.escape("&amp;") == "&amp;amp;"  # text is text, even when it looks like an entity


@given(st.text(max_size=5000))
@settings(max_examples=60, deadline=None)
def test_any_text_renders_to_valid_escaped_blocks(text):
    blocks = cards.blocks_for((Text(text, Tone.WARNING), Facts(((text[:50] or "x", text),), title=text[:100])))
    validate_blocks(blocks, cards.MAX_MESSAGE_BLOCKS)
    for block in blocks:
        pieces = [block.get("text", {}).get("text", "")] + [f["text"] for f in block.get("fields", ())]
        for piece in pieces:
            assert "<" not in piece and ">" not in piece
            assert not re.search(r"&(?!amp;|lt;|gt;)", piece), piece


def test_long_text_is_split_into_sections_within_the_limit():
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(100))  # about 10,000 characters
    blocks = cards.blocks_for((Text(text),))
    assert len(blocks) >= 4 and all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "".join(b["text"]["text"] + "\n" for b in blocks).rstrip("\n") == text
    validate_blocks(blocks, 50)


def test_truncation_never_cuts_an_entity_in_two():
    text = cards.truncate_mrkdwn("a" * 1996 + "&&&&&&", 2000)
    assert len(text) <= 2000 and text.endswith("…") and not re.search(r"&(?!amp;)", text)


def test_facts_beyond_ten_fields_continue_in_another_section_and_values_are_cut():
    facts = tuple((f"Label {i}", "v" * 2500) for i in range(23))
    blocks = cards.blocks_for((Facts(facts, title="Ticket"),))
    assert [len(b["fields"]) for b in blocks] == [10, 10, 3]
    assert blocks[0]["text"]["text"] == "*Ticket*"
    assert all(len(f["text"]) <= 2000 for b in blocks for f in b["fields"])
    validate_blocks(blocks, 50)


def test_choices_become_buttons_carrying_the_core_action_and_value():
    options = (Option("incident", "Incident", primary=True), Option("cancel", "Cancel", danger=True),
               Option("x" * 200, "L" * 100))
    kind = StepAnswer("new_ticket", "kind", "abcd1234")
    blocks = cards.blocks_for((Choices("What kind?", options, kind),))
    buttons = blocks[1]["elements"]
    assert [b["action_id"] for b in buttons] == ["cd.1.new_ticket:kind:abcd1234", "cd.2.new_ticket:kind:abcd1234",
                                                 "cd.3.new_ticket:kind:abcd1234"]
    assert [parse_slack_action_id(b["action_id"]) for b in buttons] == [SlackActionId(n, kind) for n in (1, 2, 3)]
    assert [b.get("style") for b in buttons] == ["primary", "danger", None]
    assert buttons[0]["value"] == "incident" and len(buttons[2]["text"]["text"]) <= 75
    validate_blocks(blocks, 50)


def test_many_options_become_one_select_menu_of_at_most_a_hundred():
    options = tuple(Option(f"CS-2026-{i:05d}", f"CS-2026-{i:05d} — ticket {i}") for i in range(130))
    blocks = cards.blocks_for((Choices("Which ticket?", options, StepAnswer("escalate", "ticket", "1234abcd")),))
    select = blocks[1]["elements"][0]
    assert select["type"] == "static_select" and len(select["options"]) == 100
    validate_blocks(blocks, 50)


def test_action_ids_stay_unique_across_a_message_and_foreign_ids_are_not_ours():
    replies = (Choices("A?", (Option("1", "One"),), MENU), Choices("B?", (Option("1", "One"),), MENU),
               Confirmation("Sure?", (("a", "b"),), StepAnswer("x", "y", "0123abcd"), Option("confirm", "OK"), None,
                            Option("cancel", "No")))
    validate_blocks(cards.blocks_for(replies), 50)
    assert parse_slack_action_id("something_else") is None
    assert parse_slack_action_id("cd.x.menu") is None and parse_slack_action_id("cd.1.") is None


def test_too_many_blocks_are_cut_keeping_the_question_at_the_end():
    replies = tuple(Text(f"Paragraph {i}") for i in range(80)) + (Choices("Go on?", (Option("yes", "Yes"),), MENU),)
    blocks = cards.blocks_for(replies)
    assert len(blocks) == 50
    assert blocks[-1]["type"] == "actions" and blocks[-2]["text"]["text"] == "Go on?"
    assert blocks[-3]["type"] == "context"
    validate_blocks(blocks, 50)


def _form(**overrides):
    fields = (
        FormField("kind", "Kind", FieldKind.SINGLE_CHOICE, value="b", options=(Option("a", "A"), Option("b", "B"))),
        FormField("email", "E-mail", FieldKind.EMAIL, value="a@b.be"),
        FormField("description", "Description " * 300, FieldKind.LONG_TEXT, value="d" * 5000, max_length=4000,
                  hint="h" * 2500, error="Too short & <vague>"),
        FormField("date", "Date", FieldKind.DATE, value="2026-11-27"),
        FormField("time", "Time", FieldKind.TIME, value="14:30"),
        FormField("n", "Participants", FieldKind.NUMBER, required=False, value="2"),
        FormField("bad_date", "Date", FieldKind.DATE, value="tomorrow"),
    )
    return Form("new_ticket", overrides.get("title", "A very long title for a modal"), fields, "Create the ticket now",
                "Cancel", intro="Tell us <everything>")


def test_a_form_becomes_a_valid_modal_with_one_input_per_field():
    view = cards.form_modal(_form(), callback_id=FormModal("new_ticket"), private_metadata="x" * 4000)
    validate_view(view)
    assert view["callback_id"] == "form:new_ticket"
    assert len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24
    assert len(view["private_metadata"]) == 3000 and view["notify_on_close"] is True
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs["kind"]["element"]["initial_option"]["value"] == "b"
    description = inputs["description"]
    assert description["element"]["multiline"] and description["element"]["max_length"] == 3000
    assert len(description["element"]["initial_value"]) == 3000
    assert "initial_date" not in inputs["bad_date"]["element"] and inputs["date"]["element"]["initial_date"] == "2026-11-27"
    assert inputs["time"]["element"]["initial_time"] == "14:30" and inputs["n"]["optional"] is True
    error = view["blocks"][view["blocks"].index(description) + 1]
    assert error["type"] == "context" and error["elements"][0]["text"] == ":x: Too short &amp; &lt;vague&gt;"
    assert view["blocks"][0]["text"]["text"] == "Tell us &lt;everything&gt;"


def test_field_errors_map_to_block_ids_and_unknown_fields_are_not_lost():
    answer = cards.field_errors({"email": "Bad e-mail", "company": "Required"}, ["kind", "email"])
    assert answer == {"response_action": "errors", "errors": {"email": "Bad e-mail", "kind": "Required"}}


def test_home_and_info_views_are_valid():
    replies = (Text("Hello"), Facts((("a", "b"),), title="T"), Choices("Menu", (Option("new_ticket", "Open"),), MENU))
    validate_view(cards.home_view(replies))
    info = cards.info_modal("Result of your request here", replies, "Close", callback_id=FlowModal("quote"),
                            notify_on_close=True)
    loading = cards.loading_modal("CareDesk", "Just a moment…", "Close", callback_id=LOADING)
    validate_view(info)
    validate_view(loading)
    assert (info["callback_id"], loading["callback_id"]) == ("flow:quote", "loading")


@pytest.mark.parametrize("lang", ["en", "fr", "nl"])
async def test_the_cores_real_replies_render_validly_in_every_language(lang, sqlite_store):
    from bot.app.runner import TurnRunner
    from bot.protocol.turn import Turn, UserIdentity
    from tests.slack.conftest import make_desk

    desk = await make_desk(sqlite_store)
    conversation = TurnRunner(desk)
    user = UserIdentity(id="W1", email="lotte.peeters@brasseriedeklok.be", locale=lang)
    for text in ("help", "contacts", "ticket", "quote", "status"):
        response = await conversation.handle(Turn("slack", "T", f"c-{text}", user, text=text))
        validate_blocks(cards.message(response.replies)["blocks"], 50)
    for dialog in ("new_ticket", "quote"):
        form = await conversation.form(Turn("slack", "T", "m", user), dialog)
        validate_view(cards.form_modal(form, callback_id=FormModal(dialog)))
    validate_view(cards.home_view((await conversation.home(Turn("slack", "T", "h", user))).replies))


def test_the_validator_catches_what_slack_rejects():
    """The checks above can fail: slack_sdk's models refuse payloads beyond Block Kit's limits."""
    from slack_sdk.errors import SlackObjectFormationError

    too_long_button = {"type": "actions", "elements": [
        {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 80}, "value": "v"}]}
    too_many_buttons = {"type": "actions", "elements": [
        {"type": "button", "action_id": f"a{i}", "text": {"type": "plain_text", "text": "x"}, "value": "v"}
        for i in range(26)]}
    too_long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    for bad in (too_long_button, too_many_buttons, too_long_section):
        with pytest.raises((SlackObjectFormationError, AssertionError)):
            validate_blocks([bad], 50)
    with pytest.raises(AssertionError):
        validate_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51, 50)
    with pytest.raises((SlackObjectFormationError, AssertionError)):
        validate_view({"type": "modal", "title": {"type": "plain_text", "text": "x" * 25}, "blocks": []})
