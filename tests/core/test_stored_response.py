"""A response kept in the outbox until it is posted (a durable reply) reads back as it was."""

from __future__ import annotations

import json

import pytest

from bot.protocol.ids import MENU, Command, CommandAction, FormSubmission, StepAnswer
from bot.protocol.replies import (Choices, Confirmation, Facts, FieldKind, Form, FormField, Option, Response, Text,
                                  Tone)
from bot.protocol.stored import UnreadableResponse, response_from_json, response_to_json

EVERY_KIND = Response(
    (
        Text("Your ticket has been created: CS-2026-00001", Tone.SUCCESS),
        Facts((("Company", "Brasserie De Klok"), ("Module", "—")), title="CS-2026-00001"),
        Choices("What now?", (Option("new_ticket", "New ticket", primary=True), Option("quote", "Quote")), MENU),
        Confirmation("Summary", (("Urgency", "high"),), StepAnswer("new_ticket", "confirm", "0123abcd"),
                     Option("confirm", "Confirm", primary=True), None, Option("cancel", "Cancel", danger=True)),
        Form("logtime", "Log time", (FormField("minutes", "Duration", FieldKind.NUMBER, value="90", max_length=4),
                                     FormField("service", "Service", FieldKind.SINGLE_CHOICE,
                                               options=(Option("teamviewer", "TeamViewer"),), hint="h", error="e")),
             "Log", "Cancel", intro="Agents only"),
        Choices("Sure?", (Option("y", "Yes"),), CommandAction(Command.CANCEL)),
        Choices("Form", (Option("x", "X"),), FormSubmission("quote")),
    ),
    "nl",
    done=True,
    ticket_number="CS-2026-00001",
)


def test_every_kind_of_reply_reads_back_as_it_was_also_through_json_text() -> None:
    stored = json.loads(json.dumps(response_to_json(EVERY_KIND)))
    assert response_from_json(stored) == EVERY_KIND


@pytest.mark.parametrize("broken", [{}, {"replies": [{"type": "video"}], "lang": "en"},
                                    {"replies": [{"type": "choices", "prompt": "p", "options": [],
                                                  "action": "not-ours"}], "lang": "en"},
                                    {"replies": "text", "lang": "en"}])
def test_what_is_not_a_stored_response_is_refused_clearly(broken) -> None:
    with pytest.raises(UnreadableResponse):
        response_from_json(broken)
