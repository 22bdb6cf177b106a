"""Property-based fuzzing (hypothesis) of the engine's inputs: random text, actions, values and
forms, from random people, into the pure dialog engine and into `TurnRunner.handle` on SQLite.

Properties: never an exception; every reply is one of the reply model's types, renders as text
and as valid Block Kit; the language is one of the three; field errors are text; and no ticket is
ever created without a confirmation (the summary's "confirm", or a form submitted as its own
confirmation)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.app.runner import TurnRunner
from bot.app.desk import Desk
from bot.dialogs.engine import Answer
from bot.domain.directory import read_directory_file
from bot.protocol.replies import Reply, Response
from bot.protocol.turn import Turn, UserIdentity
from cards import slack as slack_cards
from cards.text import render_all
from tests.core.engine_driver import Driver, context
from tests.slack.conftest import BXL, ROOT, validate_blocks

REPLY_TYPES = tuple(c for c in Reply.__args__) if hasattr(Reply, "__args__") else (object,)
WORDS = ["ticket", "new ticket", "quote", "status", "escalate", "contacts", "help", "back", "cancel", "yes", "no",
         "1", "2", "3", "4", "9", "0", "-1", "confirm", "edit", "incident", "normal", "critical", "teamviewer",
         "CS-2026-00001", "cs-2026-00002", "CS-1999-99999", "logtime CS-2026-00001 1h teamviewer",
         "status CS-2026-00001 closed", "ack CS-2026-00001", "note CS-2026-00001 hi", "2026-11-26T16:00",
         "offerte", "devis", "nouveau ticket", "aide", "annuler", "terug", "'; DROP TABLE tickets; --"]
ACTIONS = [None, "menu", "form:new_ticket", "form:quote", "form:logtime", "form:escalate", "form:nope", "escalation",
           "cmd:cancel", "cmd:back", "cmd:help", "choice:kind", "choice:urgency", "confirm:summary", ""]
EMAILS = [None, "lotte.peeters@brasseriedeklok.be", "camille.dubois@atelier-lumiere.be",
          "sofie.janssens@caresolutions.be", "naida.jelacic@caresolutions.be", "nobody@nowhere.example", "not an email"]
FIELDS = ["kind", "name", "email", "phone", "module", "description", "reproduce", "diagnostics", "urgency", "value",
          "_confirmed", "ticket", "duration", "service", "start", "end", "participants", "reason", "comment", "date",
          "time"]
SUMMARY_SCRIPT = ["ticket", "No, a new ticket", "1", "1", "Invoicing module", "Printing an invoice fails with error 42 since the update",
                  "Open an invoice and press Print", "Restarted, same on another PC", "2"]

texts = st.one_of(st.sampled_from(WORDS), st.text(max_size=200), st.text(alphabet=st.characters(max_codepoint=0x3000),
                                                                         max_size=2000))
values = st.dictionaries(st.sampled_from(FIELDS), st.one_of(st.sampled_from(WORDS + ["1", "incident", "normal"]),
                                                             st.text(max_size=100)), max_size=8)
turn_specs = st.tuples(st.one_of(st.none(), texts), st.sampled_from(ACTIONS), values, st.sampled_from(EMAILS),
                       st.sampled_from([None, "en", "fr-BE", "nl_NL", "de", "xx-??", ""]))


def check_response(response: Response) -> None:
    assert isinstance(response, Response)
    assert response.lang in ("en", "fr", "nl")
    assert all(isinstance(r, REPLY_TYPES) for r in response.replies), response.replies
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in response.field_errors.items())
    if response.replies:
        assert render_all(response.replies).strip()
        validate_blocks(slack_cards.message(response.replies)["blocks"], 50)


# ---- TurnRunner.handle on SQLite --------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """One event loop, one SQLite store and one TurnRunner for all examples (fast)."""
    from bot.store.sql import SqlStore

    loop = asyncio.new_event_loop()
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")

    async def setup() -> TurnRunner:
        await store.initialize()
        await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
        desk = Desk(Settings(), store, ManualClock(datetime(2026, 11, 26, 10, 0, tzinfo=BXL)))
        for email, module in (("lotte.peeters@brasseriedeklok.be", "ERP"), ("camille.dubois@atelier-lumiere.be", "POS")):
            await desk.register_ticket(kind="incident", requester_email=email, module=module,
                                       description="The invoice print job fails with error 42 every time")
        return TurnRunner(desk)

    conversation = loop.run_until_complete(setup())
    yield loop, conversation
    loop.run_until_complete(store.close())
    loop.close()


_conversations = itertools.count(1)


async def _turn(conversation: TurnRunner, spec, name: str, event_id: str | None) -> Response:
    text, action, vals, email, locale = spec
    store = conversation.store
    user = UserIdentity(id=f"U-{email}", email=email, display_name="Fuzzy", locale=locale)
    turn = Turn("slack", "T1", name, user, text=text, action=action or None, values=vals, event_id=event_id)
    stored = await store.load_dialog(turn.dialog_key)
    before = len(await store.list_tickets(limit=1000))
    response = await conversation.handle(turn)
    after = len(await store.list_tickets(limit=1000))
    check_response(response)
    if after != before:
        assert after == before + 1
        assert response.ticket_number is not None
        at_summary = stored is not None and stored.state.get("dialog") == "new_ticket" \
            and stored.state.get("state") == "summary"
        submitted_confirmed = bool(action and action.startswith("form:") and vals.get("_confirmed") == "1")
        assert at_summary or submitted_confirmed, (stored, spec)
    else:
        assert response.ticket_number is None or response.duplicate is False
    return response


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(turn_specs, min_size=1, max_size=6), st.booleans())
def test_conversation_never_fails_on_random_turns(runner, specs, redeliver):
    loop, conversation = runner
    name = f"fuzz-{next(_conversations)}"

    async def run() -> None:
        for i, spec in enumerate(specs):
            event_id = f"{name}-{i}"
            first = await _turn(conversation, spec, name, event_id)
            if redeliver:
                again = await _turn(conversation, spec, name, event_id)
                assert again.duplicate and not again.replies and first is not again

    loop.run_until_complete(run())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(turn_specs, min_size=1, max_size=4))
def test_random_turns_at_the_summary_create_a_ticket_only_when_confirmed(runner, specs):
    """Reach the summary with the scripted answers, then fuzz: the properties above, and at most
    one ticket for the dialog whatever follows."""
    loop, conversation = runner
    name = f"fuzz-summary-{next(_conversations)}"
    lotte = (None, None, {}, "lotte.peeters@brasseriedeklok.be", "en")

    async def run() -> None:
        for text in SUMMARY_SCRIPT:
            await _turn(conversation, (text,) + lotte[1:], name, None)
        stored = await conversation.store.load_dialog(
            Turn("slack", "T1", name, UserIdentity(id="U-lotte.peeters@brasseriedeklok.be")).dialog_key)
        assert stored is not None and stored.state["state"] == "summary"
        created = 0
        for spec in specs:
            created += (await _turn(conversation, (spec[0], spec[1], spec[2]) + lotte[3:], name, None)).ticket_number \
                is not None
        assert created <= 2  # the summary's ticket, and at most one more from a confirmed form

    loop.run_until_complete(run())


# ---- the pure engine -------------------------------------------------------------------------------------

DIALOGS = ["new_ticket", "quote", "escalate", "ticket_info"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DIALOGS), st.lists(st.tuples(st.one_of(st.none(), texts), st.sampled_from(ACTIONS), values,
                                                    st.booleans()), min_size=1, max_size=10),
       st.sampled_from(["en", "fr", "nl"]))
def test_pure_engine_never_fails(dialog, steps, lang):
    driver = Driver(context(lang=lang))
    driver.start(dialog)
    for text, action, vals, confirmed in steps:
        if driver.state is None:
            break
        before = dict(driver.state)
        answer = Answer(text=(text or vals.get("value", "") or "").strip(), values=vals,
                        is_form=bool(action and action.startswith("form:")), confirmed=confirmed)
        result = driver.engine.handle(driver.ctx, driver.state, text, action or None, answer)
        assert all(isinstance(r, REPLY_TYPES) for r in result.replies)
        if result.replies:
            assert render_all(result.replies).strip()
        assert all(isinstance(v, str) and v for v in result.field_errors.values())
        if result.effect is not None and result.effect.kind == "create_ticket":
            assert before.get("state") == "summary" or (answer.is_form and confirmed), (before, text, action, vals)
        driver.state = result.state if result.effect is None else None
