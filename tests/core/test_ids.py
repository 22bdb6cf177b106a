"""The typed ids of bot.protocol.ids: every kind round-trips, the wire strings are exactly those
already stored in dialog states and carried by open cards and modals, and hostile input is None,
never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dialogs.engine import DialogEngine, step_answer
from bot.protocol import ids
from bot.protocol.ids import (
    ESCALATION,
    LOADING,
    MENU,
    Command,
    CommandAction,
    EscalationChoice,
    EscalationVerb,
    FlowModal,
    FormModal,
    FormSubmission,
    SlackActionId,
    StepAnswer,
    modal_dialog,
    parse_action,
    parse_callback_id,
    parse_escalation_choice,
    parse_slack_action_id,
)

# Exactly what the bot wrote before these types: changing one breaks stored states and open cards.
ACTIONS = [
    (MENU, "menu"),
    (ESCALATION, "escalation"),
    (CommandAction(Command.CANCEL), "cmd:cancel"),
    (CommandAction(Command.BACK), "cmd:back"),
    (CommandAction(Command.HELP), "cmd:help"),
    (FormSubmission("new_ticket"), "form:new_ticket"),
    (FormSubmission("quote"), "form:quote"),
    (FormSubmission("logtime"), "form:logtime"),
    (StepAnswer("new_ticket", "kind", "abcd1234"), "new_ticket:kind:abcd1234"),
    (StepAnswer("ticket_info", "action", "0f1e2d3c"), "ticket_info:action:0f1e2d3c"),
    # A dialog named like a prefix still reads back as its step answer (three parts, not two).
    (StepAnswer("form", "x", "abcd1234"), "form:x:abcd1234"),
    (StepAnswer("cmd", "help", "abcd1234"), "cmd:help:abcd1234"),
]
CALLBACKS = [
    (FormModal("new_ticket"), "form:new_ticket"),
    (FormModal("logtime"), "form:logtime"),
    (FlowModal("new_ticket"), "flow:new_ticket"),
    (LOADING, "loading"),
]
CHOICES = [
    (EscalationChoice(EscalationVerb.ACKNOWLEDGE, "CS-2026-00042"), "ack:CS-2026-00042"),
    (EscalationChoice(EscalationVerb.VIEW, "CS-2026-00042"), "view:CS-2026-00042"),
]
SLACK_IDS = [
    (SlackActionId(1, MENU), "cd.1.menu"),
    (SlackActionId(0, ESCALATION), "cd.0.escalation"),
    (SlackActionId(12, StepAnswer("new_ticket", "kind", "abcd1234")), "cd.12.new_ticket:kind:abcd1234"),
    (SlackActionId(3, FormSubmission("quote")), "cd.3.form:quote"),
]


@pytest.mark.parametrize("value,wire", ACTIONS)
def test_actions_have_their_wire_string_and_read_back(value, wire):
    assert value.encode() == str(value) == wire
    assert parse_action(wire) == value


@pytest.mark.parametrize("value,wire", CALLBACKS)
def test_modal_callbacks_have_their_wire_string_and_read_back(value, wire):
    assert value.encode() == str(value) == wire
    assert parse_callback_id(wire) == value


@pytest.mark.parametrize("value,wire", CHOICES)
def test_escalation_choices_have_their_wire_string_and_read_back(value, wire):
    assert value.encode() == str(value) == wire
    assert parse_escalation_choice(wire) == value


@pytest.mark.parametrize("value,wire", SLACK_IDS)
def test_slack_action_ids_have_their_wire_string_and_read_back(value, wire):
    assert value.encode() == str(value) == wire
    assert parse_slack_action_id(wire) == value


def test_a_form_modal_is_submitted_as_its_form_with_the_same_string():
    modal = FormModal("quote")
    assert modal.submission == FormSubmission("quote") and str(modal) == str(modal.submission)
    assert modal_dialog(modal) == modal_dialog(FlowModal("quote")) == "quote"
    assert modal_dialog(LOADING) is None and modal_dialog(None) is None


def test_commands_and_verbs_compare_as_their_words():
    # Stored and typed words ("cancel", "ack") are the enums' values.
    assert Command("cancel") is Command.CANCEL and CommandAction("back") == CommandAction(Command.BACK)
    assert EscalationChoice("view", "CS-1") == EscalationChoice(EscalationVerb.VIEW, "CS-1")


def test_every_question_of_every_dialog_reads_back_as_its_own_step_answer():
    """The engine compares a click with the current question's answer: each must read back equal,
    or a question could never be answered by a click."""
    engine = DialogEngine([cls() for cls in _dialog_classes()])
    for dialog in engine.dialogs.values():
        for state in dialog.steps:
            answer = step_answer({"dialog": dialog.name, "state": state, "instance": "9f" * 16})
            assert parse_action(str(answer)) == answer
        assert parse_action(str(FormSubmission(dialog.name))) == FormSubmission(dialog.name)
        assert parse_callback_id(str(FlowModal(dialog.name))) == FlowModal(dialog.name)


def _dialog_classes():
    from bot.dialogs.log_time import LogTimeDialog
    from bot.dialogs.new_ticket import NewTicketDialog
    from bot.dialogs.quote import QuoteDialog
    from bot.dialogs.tickets import EscalationDialog, TicketInfoDialog

    return (NewTicketDialog, QuoteDialog, EscalationDialog, TicketInfoDialog, LogTimeDialog)


def test_a_step_answer_keeps_the_first_eight_digits_of_the_instance():
    assert StepAnswer.of("quote", "date", "0123456789abcdef" * 2) == StepAnswer("quote", "date", "01234567")


HOSTILE = [
    None, 0, 1.5, b"menu", ["menu"], {"action": "menu"}, "", " ", "menu ", " menu", "MENU", "Menu\n", "menu\n",
    "cmd:", "cmd:nope", "cmd:CANCEL", "cmd:cancel ", "cmd:cancel\n", "form:", "form:a:b", "form:x y", "form:../etc",
    "form:" + "x" * 65, "flow:new_ticket", "loading", "choice:kind", "confirm:summary", "a:b", "a:b:c",
    "new_ticket:kind:ABCD1234", "new_ticket:kind:abcd123", "new_ticket:kind:abcd12345", "new_ticket::abcd1234",
    ":kind:abcd1234", "new_ticket:kind:abcd1234:x", "new_ticket:kïnd:abcd1234", "cd.1.menu", "x" * 5000,
    "form:new_ticket\x00", "escalation:ack", "\ud800",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_what_is_not_a_core_action_is_none(text):
    assert parse_action(text) is None


@pytest.mark.parametrize("text", [
    None, 7, "", "cd.", "cd.1", "cd.1.", "cd.x.menu", "cd.-1.menu", "cd.1.5.menu", "cd. 1.menu", "cd.1.nope",
    "cd.1.menu\n", "CD.1.menu", "xcd.1.menu", "cd.²." + "menu", "cd.١.menu", "cd.1234567890.menu", "menu",
    "cd.999." + "x" * 200, "cd.1." + "menu" * 100, "something_else",
])
def test_what_is_not_a_caredesk_element_is_none(text):
    assert parse_slack_action_id(text) is None


@pytest.mark.parametrize("text", [
    None, 3, "", "form:", "flow:", "form:a:b", "flow:x y", "loading ", "LOADING", "create_ticket_from_message",
    "cmd:cancel", "menu", "form:" + "x" * 300, "modal:new_ticket",
])
def test_what_is_not_a_caredesk_modal_is_none(text):
    assert parse_callback_id(text) is None


@pytest.mark.parametrize("text", [
    None, 5, "", "ack", "ack:", "view:", "ack: CS-1", "ack:CS 1", "ack:CS-1\n", "ACK:CS-1", "take:CS-1",
    "ack:CS:1", "view:" + "9" * 65, "ack:\x00",
])
def test_what_is_not_an_escalation_choice_is_none(text):
    assert parse_escalation_choice(text) is None


@given(st.one_of(st.text(max_size=300), st.text(alphabet="cdmenuform:.0123456789abf_lw-", max_size=40)))
@settings(max_examples=400, deadline=None)
def test_parsing_never_raises_and_what_reads_back_writes_the_same(text):
    for parse in (parse_action, parse_slack_action_id, parse_callback_id, parse_escalation_choice):
        value = parse(text)
        # Strict parsing: a value is read only from its one wire form.
        assert value is None or value.encode() == text


@pytest.mark.parametrize("make", [
    lambda: FormSubmission("a:b"), lambda: FormSubmission(""), lambda: FormModal("x y"), lambda: FlowModal(""),
    lambda: StepAnswer("d", "s", "xyz"), lambda: StepAnswer("d:1", "s", "abcd1234"), lambda: CommandAction("nope"),
    lambda: EscalationChoice(EscalationVerb.VIEW, ""), lambda: EscalationChoice("take", "CS-1"),
    lambda: SlackActionId(-1, MENU),
])
def test_an_id_the_core_could_not_read_back_cannot_be_built(make):
    with pytest.raises(ValueError):
        make()


def test_the_values_are_frozen_and_hashable():
    answer = StepAnswer("quote", "date", "abcd1234")
    with pytest.raises(AttributeError):
        answer.state = "time"  # type: ignore[misc]
    assert len({MENU, ids.MenuChoice(), answer, StepAnswer("quote", "date", "abcd1234")}) == 2
