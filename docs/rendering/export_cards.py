"""Export the real card JSON shown in the README pictures.

Builds a Desk on a temporary SQLite database with the example directory and a fixed clock
(Thursday 26 November 2026, 10:00 in Brussels), drives `bot.app.runner.TurnRunner` the way
the Teams and Slack channels do, and renders the replies with the project's own renderers
(`cards/teams.py` for Adaptive Cards, `cards/slack.py` for Block Kit). Nothing here is written
by hand: if a dialog or a renderer changes, re-running this script changes the pictures.

    .venv/bin/python docs/rendering/export_cards.py      # writes docs/rendering/*.json

`docs/rendering/render.sh` runs it, then turns the JSON into docs/images/*.png.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from adapters.teams.channel import card_labels  # the labels the Teams channel uses
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.domain.directory import read_directory_file
from bot.protocol.ids import FormModal
from bot.protocol.replies import Confirmation, Response
from bot.store.sql import SqlStore
from bot.protocol.turn import Turn, UserIdentity
from cards import slack as slack_cards
from cards import teams as teams_cards

BXL = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=BXL)
LOTTE = UserIdentity(id="29:lotte", email="lotte.peeters@brasseriedeklok.be", display_name="Lotte Peeters",
                     locale="en-GB")
SLACK_LOTTE = UserIdentity(id="U0LOTTE", email="lotte.peeters@brasseriedeklok.be", display_name="Lotte Peeters",
                           locale="en-GB")
DESCRIPTION = "Printing an invoice fails with error 42 since this morning's update"
# The guided chat, answered as a user would type it (kind, contact ok, module, description,
# how to reproduce, first diagnostics, urgency) — as in tests/conversation/test_conversation.py.
CHAT = ("new ticket", "1", "1", "Invoicing module", DESCRIPTION,
        "Open any invoice and press Print", "Restarted the PC; same on a colleague's PC", "2")
QUOTE = {"service": "teamviewer", "date": "2026-11-26", "time": "16:00", "duration": "2h30", "participants": "1",
         "_confirmed": "1"}


def teams_turn(text: str | None = None, **kw) -> Turn:
    return Turn("msteams", "tenant-brasserie", "a:1lotte-personal-chat", LOTTE, text=text, **kw)


def slack_turn(conversation: str, text: str | None = None, **kw) -> Turn:
    return Turn("slack", "T0BRASSERIE", conversation, SLACK_LOTTE, text=text, **kw)


def write(name: str, payload: dict) -> None:
    path = OUT / name
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


async def chat(conv: TurnRunner, make_turn, texts) -> Response:
    response = Response()
    for text in texts:
        response = await conv.handle(make_turn(text))
    return response


async def export(db: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{db}")
    await store.initialize()
    try:
        await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
        desk = Desk(Settings(), store, ManualClock(NOW))
        conv = TurnRunner(desk)

        # ---- Teams: the `ticket` command's one-shot form card ------------------------------------
        turn = teams_turn("ticket")
        lang = (await conv.context(turn)).lang
        form = await conv.form(turn, "new_ticket")
        assert form is not None
        write("teams-ticket-form.json", teams_cards.render_form(form, lang=lang, labels=card_labels(lang)))

        # ---- Teams: the guided chat ends on a summary to confirm, then the created ticket ----------
        summary = await chat(conv, teams_turn, CHAT)
        confirmation = next(r for r in summary.replies if isinstance(r, Confirmation))
        write("teams-ticket-summary.json", teams_cards.render_card(summary.replies, lang=summary.lang,
                                                                   labels=card_labels(summary.lang)))
        created = await conv.handle(teams_turn(action=str(confirmation.action),
                                               values={"value": confirmation.confirm.value}))
        assert created.ticket_number, "the confirmation did not create a ticket"
        write("teams-ticket-created.json", teams_cards.render_card(created.replies, lang=created.lang,
                                                                   labels=card_labels(created.lang)))

        # ---- Slack: the /caredesk ticket modal (form_modal, as adapters/slack opens it) -----------
        turn = slack_turn("modal:new_ticket")
        form = await conv.form(turn, "new_ticket")
        assert form is not None
        write("slack-ticket-modal.json", slack_cards.form_modal(form, callback_id=FormModal("new_ticket")))

        # ---- Slack: the modal submitted -> the ticket confirmation posted in the DM ---------------
        values = {"kind": "incident", "name": "Lotte Peeters", "email": LOTTE.email, "phone": "+32 3 555 12 34",
                  "company": "Brasserie De Klok", "module": "Stock module",
                  "description": "The stock count screen shows negative quantities after the nightly import",
                  "reproduce": "Open Stock > Count after 06:00", "diagnostics": "Import log attached, no errors",
                  "urgency": "high", "_confirmed": "1"}
        submitted = await conv.handle(slack_turn("modal:new_ticket2", action="form:new_ticket", values=values))
        if not submitted.ticket_number:
            raise SystemExit(f"the Slack modal submission was refused: {dict(submitted.field_errors)}")
        write("slack-ticket-created.json", slack_cards.message(submitted.replies))

        # ---- Slack: a quote (the quote modal submitted), posted as a message -----------------------
        quote = await conv.handle(slack_turn("D0LOTTE", action="form:quote", values=QUOTE))
        assert quote.replies and not quote.field_errors, quote.field_errors
        write("slack-quote-message.json", slack_cards.message(quote.replies))
        write("teams-quote.json", teams_cards.render_card(quote.replies, lang=quote.lang,
                                                          labels=card_labels(quote.lang)))
    finally:
        await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="caredesk-cards-") as tmp:
        asyncio.run(export(Path(tmp) / "cards.db"))


if __name__ == "__main__":
    main()
