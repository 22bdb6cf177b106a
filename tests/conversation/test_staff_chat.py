"""Staff in chat (issue 16), on SQLite and PostgreSQL: agents and managers find their commands
(help in their language, a command word alone says how it reads), their commands work from
anywhere, they are read as typed ("in progress", `uren`), a bare number of time is said back
before anything is logged, and staff see what they need of a ticket (assignee, history,
internal notes, everyone's time) while a customer never sees the internal part."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.desk import Desk
from bot.app.runner import TurnRunner
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.domain.directory import read_directory_file
from bot.domain.model import EscalationReason, TicketStatus
from bot.protocol.turn import Turn, UserIdentity
from cards.text import render_all

ROOT = Path(__file__).resolve().parents[2]
BXL = ZoneInfo("Europe/Brussels")
LOTTE = "lotte.peeters@brasseriedeklok.be"
SOFIE = "sofie.janssens@caresolutions.be"  # agent
THOMAS = "thomas.leroy@caresolutions.be"  # agent
NAIDA = "Naida.jelacic@caresolutions.be"  # manager, level 1
PIETER = "pieter.vandenbroeck@caresolutions.be"  # manager, level 2


@pytest.fixture
async def desk(store):
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    return Desk(Settings(), store, ManualClock(datetime(2026, 11, 30, 10, 0, tzinfo=BXL)))  # a Monday


async def say(conv: TurnRunner, email: str, text: str, lang: str = "en") -> str:
    turn = Turn("console", "local", f"c:{email}", UserIdentity(id=email.lower(), email=email, locale=lang), text=text)
    return render_all((await conv.handle(turn)).replies)


async def incident(desk: Desk, opened: datetime | None = None) -> str:
    """A ticket registered now or, with `opened`, at that moment (time logged on it must not
    start before it was opened, or the agent is asked to confirm); the clock is put back after."""
    now = desk.now()
    if opened is not None:
        desk.clock.set(opened)  # the tests' ManualClock
    try:
        ticket = await desk.register_ticket(kind="incident", requester_email=LOTTE, module="ERP",
                                            description="The invoice print job fails with error 42")
    finally:
        desk.clock.set(now)
    return ticket.number


# Before every time these tests log (27 November 2026).
EARLIER = datetime(2026, 11, 26, 9, 0, tzinfo=BXL)


# ---- finding their way ------------------------------------------------------------------------


@pytest.mark.parametrize("lang,agent_line,manager_line", [
    ("en", "logtime CS-2026-00042 1h30 teamviewer", "escalations (the open escalations"),
    ("fr", "temps CS-2026-00042 1h30 teamviewer", "escalations (les escalades ouvertes"),
    ("nl", "uren CS-2026-00042 1u30 teamviewer", "escalations (de open escalaties"),
])
async def test_help_shows_staff_their_commands_in_their_language(desk, lang, agent_line, manager_line):
    conv = TurnRunner(desk)
    agent = await say(conv, SOFIE, "help", lang)
    assert agent_line in agent and "assign CS-2026-00042" in agent and "register" in agent
    assert "escalations (" not in agent
    manager = await say(conv, NAIDA, "help", lang)
    assert manager_line in manager and "ack CS-2026-00042" in manager
    customer = await say(conv, LOTTE, "help", lang)
    assert "assign CS-2026" not in customer and "logtime" not in customer and "uren CS" not in customer


async def test_a_staff_command_word_alone_says_how_it_reads_and_changes_nothing(desk):
    number = await incident(desk)
    conv = TurnRunner(desk)
    out = await say(conv, NAIDA, "ack")
    assert "Which ticket? Give its number" in out and "Usage: ack NUMBER" in out
    assert "did not understand" not in out
    out = await say(conv, SOFIE, "note")
    assert "Usage: note NUMBER TEXT" in out
    out = await say(conv, SOFIE, f"status {number}")
    assert "Usage: status NUMBER NEW-STATUS" in out and "Assigned to" in out
    assert "What would you like to do" not in out and "Please pick one" not in out
    assert (await desk.store.get_ticket(number)).status is TicketStatus.NEW


async def test_staff_commands_work_inside_an_open_conversation_which_then_goes_on(desk):
    number = await incident(desk)
    conv = TurnRunner(desk)
    assert "Which service" in await say(conv, SOFIE, "quote")
    out = await say(conv, SOFIE, f"status {number} in progress")
    assert f"{number} is now: In progress" in out and "Your conversation is still open" in out
    out = await say(conv, SOFIE, f"note {number} Called the customer back")
    assert "Internal note added" in out
    # The quote goes on where it was: "1" answers its question (which service).
    out = await say(conv, SOFIE, "1")
    assert "On which date?" in out
    assert "Please pick one" not in out
    assert (await desk.store.get_ticket(number)).status is TicketStatus.IN_PROGRESS


@pytest.mark.parametrize("said,status", [
    ("in progress", TicketStatus.IN_PROGRESS),
    ("waiting for customer", TicketStatus.WAITING_FOR_CUSTOMER),
    ("In Progress", TicketStatus.IN_PROGRESS),
    ("en cours", TicketStatus.IN_PROGRESS),
    ("in behandeling", TicketStatus.IN_PROGRESS),
    ("in_progress", TicketStatus.IN_PROGRESS),
])
async def test_status_words_are_read_as_staff_type_them(desk, said, status):
    number = await incident(desk)
    out = await say(TurnRunner(desk), SOFIE, f"status {number} {said}")
    assert "Unknown status" not in out
    assert (await desk.store.get_ticket(number)).status is status


async def test_an_unknown_status_names_all_it_was_given(desk):
    number = await incident(desk)
    out = await say(TurnRunner(desk), SOFIE, f"status {number} in limbo")
    assert "Unknown status 'in limbo'" in out
    assert (await desk.store.get_ticket(number)).status is TicketStatus.NEW


async def test_uren_logs_time_like_logtime(desk):
    number = await incident(desk, opened=EARLIER)
    out = await say(TurnRunner(desk), SOFIE, f"uren {number} 1u30 database at 2026-11-27 10:00", "nl")
    assert "Tijd geregistreerd" in out
    [entry] = await desk.store.list_time_entries(ticket_number=number)
    assert entry.ended_at - entry.started_at == (datetime(2026, 1, 1, 11, 30) - datetime(2026, 1, 1, 10, 0))


@pytest.mark.parametrize("value", ["2", "90", "1,5"])
async def test_a_bare_number_of_time_is_said_back_and_nothing_is_logged(desk, value):
    number = await incident(desk)
    out = await say(TurnRunner(desk), SOFIE, f"logtime {number} {value} teamviewer")
    assert f"'{value}' has no unit: {value} hours or {value} minutes?" in out
    assert f"logtime {number} {value}h teamviewer" in out and f"logtime {number} {value}m teamviewer" in out
    assert await desk.store.list_time_entries() == []


# ---- seeing what they need ----------------------------------------------------------------------


async def test_the_agent_view_shows_what_staff_need_and_the_customer_view_never_the_internal(desk):
    number = await incident(desk, opened=EARLIER)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"assign {number} me")
    await say(conv, SOFIE, f"status {number} in progress")
    await say(conv, SOFIE, f"note {number} Suspect the printer driver of version 7")
    await say(conv, SOFIE, f"logtime {number} 1h teamviewer at 2026-11-27 10:00")
    await say(conv, THOMAS, f"logtime {number} 30m database at 2026-11-27 14:00")
    view = await say(conv, THOMAS, number)
    assert "Assigned to" in view and "Sofie" in view
    assert "Came in through" in view
    assert "New → In progress (by sofie.janssens@caresolutions.be)" in view
    assert "Suspect the printer driver of version 7" in view
    assert SOFIE in view and THOMAS in view
    # €102.21 (1 h TeamViewer) + €41.09 (30 min database) = €143.30, 1 h 30 in all.
    assert "€102.21" in view and "€41.09" in view and "1 h 30, €143.30" in view
    customer = await say(conv, LOTTE, number)
    assert number in customer
    assert "printer driver" not in customer and "Assigned to" not in customer and "€" not in customer


async def test_logtime_list_of_a_ticket_shows_every_agents_entries_marked_by_who(desk):
    number = await incident(desk, opened=EARLIER)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"logtime {number} 1h teamviewer at 2026-11-27 10:00")
    await say(conv, THOMAS, f"logtime {number} 30m database at 2026-11-27 14:00")
    out = await say(conv, SOFIE, f"logtime list {number}")
    assert f"Time logged on {number} by everyone (2 entries)" in out
    assert f"{SOFIE}: 27 Nov 2026 10:00, 1 h, teamviewer: €102.21" in out
    assert f"{THOMAS}: 27 Nov 2026 14:00, 0 h 30, database: €41.09" in out
    assert "1 h 30, €143.30" in out
    own = await say(conv, SOFIE, "logtime list")
    assert "€102.21" in own and "€41.09" not in own


async def test_managers_list_the_open_escalations_in_chat(desk):
    first, second = await incident(desk), await incident(desk)
    for number in (first, second):
        await desk.store.create_escalation(number, 1, EscalationReason.FEEDBACK, "too slow", LOTTE, desk.now(),
                                           outbox=(), idempotency_key=f"seed:{number}")
    conv = TurnRunner(desk)
    out = await say(conv, NAIDA, "escalations")
    assert "Open escalations (2)" in out and first in out and second in out
    assert "level 1, The feedback was insufficient or poor" in out
    # Pieter (level 2) sees them too, marked as not at his level yet.
    assert "(not at your level yet)" in await say(conv, PIETER, "escalations")
    assert "You took the escalation" in await say(conv, NAIDA, f"ack {first}")
    out = await say(conv, NAIDA, "escalations")
    assert "Open escalations (1)" in out and second in out and first not in out
    assert "Only service desk managers have a list of escalations" in await say(conv, SOFIE, "escalations")


# ---- trusting what they are told ------------------------------------------------------------------


async def test_an_escalation_made_by_an_agent_tells_the_customer_who_handles_it_with_a_role(desk):
    """Pieter manages level 2, which the default settings (the rules page's) do not name: the
    customer reads his level, not a blank role; and the requester hears it, not the agent."""
    from bot.app.notifications import ESCALATION_HANDLED, render

    number = await incident(desk)
    await desk.store.create_escalation(number, 1, EscalationReason.FEEDBACK, "no news for a week", SOFIE, desk.now(),
                                       outbox=(), idempotency_key=f"seed:{number}")
    [escalation] = await desk.store.list_escalations(ticket_number=number)
    await desk.store.escalation_pinged(escalation.id, 2, desk.now(), ())
    out = await say(TurnRunner(desk), PIETER, f"ack {number}")
    assert "You took the escalation" in out
    # The customer it was made for hears it, and the manager is told how (not "the customer is told").
    assert "Lotte Peeters has not been seen in Slack, Teams or the portal chat" in out
    [handled] = [m for m in await desk.store.list_outbox() if m.kind == ESCALATION_HANDLED]
    assert handled.recipient.lower() == LOTTE
    text = render_all(render(handled.kind, handled.payload, "en", desk.settings).replies)
    assert "Pieter Van den Broeck, manager (escalation level 2) (pieter.vandenbroeck@caresolutions.be)" in text


async def test_suspicious_time_is_questioned_before_it_is_saved(desk):
    number = await incident(desk, opened=EARLIER)
    conv = TurnRunner(desk)
    line = f"logtime {number} 1h teamviewer at 2026-11-27 10:00 first call"
    assert "Time logged" in await say(conv, SOFIE, line)
    out = await say(conv, SOFIE, line)  # the very same entry again
    assert "You already logged exactly this" in out and "Nothing was logged" in out
    assert f"{line} confirm" in out
    assert len(await desk.store.list_time_entries()) == 1
    assert "Time logged" in await say(conv, SOFIE, f"{line} confirm")
    entries = await desk.store.list_time_entries()
    assert len(entries) == 2 and entries[-1].note == "first call"  # 'confirm' is not part of the note
    # Another agent's identical entry is their own work, not a duplicate.
    assert "Time logged" in await say(conv, THOMAS, line)

    await say(conv, SOFIE, f"status {number} closed")
    out = await say(conv, SOFIE, f"logtime {number} 30m database at 2026-11-28 10:00")
    assert f"{number} is closed" in out and len(await desk.store.list_time_entries()) == 3
    assert "Time logged" in await say(conv, SOFIE, f"logtime {number} 30m database at 2026-11-28 10:00 confirm")
    assert len(await desk.store.list_time_entries()) == 4


@pytest.mark.parametrize("lang,before,future,nothing", [
    ("en", "was opened on Thursday 26 November 2026 at 09:00, but this time starts earlier",
     "later than now", "Nothing was logged"),
    ("fr", "a été ouvert le jeudi 26 novembre 2026 à 09:00, mais ce temps commence plus tôt",
     "plus tard que maintenant", "Rien n'a été encodé"),
    ("nl", "is geopend op donderdag 26 november 2026 om 09:00, maar deze tijd begint vroeger",
     "later dan nu", "Er is niets geregistreerd"),
])
async def test_time_before_the_ticket_or_beyond_now_is_questioned_in_the_agents_language(desk, lang, before, future,
                                                                                          nothing):
    """Time starting before the ticket was opened, or ending after now (more hours than have
    passed since its start), is asked about with the reason and logged only when confirmed."""
    number = await incident(desk, opened=EARLIER)  # Thursday 26 November 09:00; it is Monday 30, 10:00
    conv = TurnRunner(desk)
    early = f"logtime {number} 1h teamviewer at 2026-11-25 10:00"
    out = await say(conv, SOFIE, early, lang)
    assert f"{number} {before}" in out and nothing in out and f"{early} confirm" in out
    # Ending in the future: 09:30 plus 2 hours is 11:30, with an hour and a half passed.
    late = f"logtime {number} 2h database at 09:30"
    out = await say(conv, SOFIE, late, lang)
    assert future in out and nothing in out and before not in out
    # Not confirmed: nothing was written (the agent simply does not send it again).
    assert await desk.store.list_time_entries() == []
    assert "€" in await say(conv, SOFIE, f"{late} confirm", lang)
    assert "€" in await say(conv, SOFIE, f"{early} confirm", lang)
    entries = await desk.store.list_time_entries(ticket_number=number)
    assert len(entries) == 2 and {e.service for e in entries} == {"teamviewer", "database"}
    # Time inside the ticket's life and already worked is not questioned.
    out = await say(conv, SOFIE, f"logtime {number} 30m database at 2026-11-27 10:00", lang)
    assert nothing not in out and "€" in out and len(await desk.store.list_time_entries()) == 3


async def test_editing_an_entry_to_end_in_the_future_is_refused(desk):
    number = await incident(desk, opened=EARLIER)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"logtime {number} 1h teamviewer at 2026-11-27 10:00")
    [entry] = await desk.store.list_time_entries()
    out = await say(conv, SOFIE, f"logtime edit {entry.id} 1h teamviewer at 09:30")
    assert "in the future" in out
    [same] = await desk.store.list_time_entries()
    assert same.started_at == entry.started_at


async def test_a_manager_takes_over_an_escalation_not_at_their_level_and_it_is_recorded(desk):
    number = await incident(desk)
    await desk.store.create_escalation(number, 1, EscalationReason.ATTITUDE, "rude on the phone", LOTTE, desk.now(),
                                       outbox=(), idempotency_key=f"seed:{number}")
    conv = TurnRunner(desk)
    out = await say(conv, PIETER, f"ack {number}")
    assert "has not reached your level yet" in out and f"ack {number} take over" in out
    [escalation] = await desk.store.list_escalations(ticket_number=number)
    assert escalation.acknowledged_by is None
    out = await say(conv, PIETER, f"ack {number} take over")
    assert "You took over the escalation" in out
    [escalation] = await desk.store.list_escalations(ticket_number=number, open_only=False)
    assert escalation.acknowledged_by.lower() == PIETER
    notes = await desk.store.list_ticket_comments(number, include_internal=True)
    assert any(n["internal"] and "taken over by Pieter Van den Broeck" in n["text"] for n in notes)
    assert "already acknowledged" in await say(conv, NAIDA, f"ack {number}")
    # An agent cannot take over a manager's escalation.
    other = await incident(desk)
    await desk.store.create_escalation(other, 1, EscalationReason.FEEDBACK, "too slow", LOTTE, desk.now(),
                                       outbox=(), idempotency_key=f"seed:{other}")
    assert "Only service desk managers" in await say(conv, SOFIE, f"ack {other} take over")


# ---- while you were away (no push channel) --------------------------------------------------------


class _NoPushDelivery:
    """The server's delivery when the person was never seen on Slack or Teams: nothing pushes."""

    async def deliver(self, message, response):
        from bot.app.outbox import Undeliverable

        raise Undeliverable(f"{message.recipient} was never seen on slack, msteams")


@pytest.mark.parametrize("lang,title,status", [
    ("en", "While you were away:", "In progress"),
    ("fr", "Pendant votre absence :", "En cours"),
    ("nl", "Terwijl u weg was:", "In behandeling"),
])
async def test_a_console_customer_sees_what_was_sent_while_away_once_before_the_answer(desk, lang, title, status):
    from bot.app.outbox import Delivery, Dispatcher

    Delivery.register(_NoPushDelivery)
    number = await incident(desk)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"status {number} in progress")
    await Dispatcher(desk, _NoPushDelivery()).run_once()  # type: ignore[arg-type]
    [message] = [m for m in await desk.store.list_outbox() if m.recipient.lower() == LOTTE]
    assert message.status == "sent" and message.last_error == "kept for the next visit"  # not dead-lettered
    out = await say(conv, LOTTE, "help", lang)
    assert out.startswith(title) and number in out and status in out
    help_alone = await say(conv, LOTTE, "help", lang)
    assert title not in help_alone and out.endswith(help_alone)  # shown once, before the answer to "help"
    [kept] = await desk.store.list_kept_messages(LOTTE)
    assert kept.shown_at is not None


async def test_a_message_kept_for_someone_is_shown_to_them_only_and_not_lost_when_the_turn_fails(desk, monkeypatch):
    from bot.app.outbox import Delivery, Dispatcher
    from bot.store.ports import StoreUnavailableError

    Delivery.register(_NoPushDelivery)
    number = await incident(desk)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, f"status {number} in progress")
    await Dispatcher(desk, _NoPushDelivery()).run_once()  # type: ignore[arg-type]
    assert "While you were away" not in await say(conv, SOFIE, "help")  # the agent's own turn: not theirs
    # A turn whose answer cannot be saved (the database went away at that moment) leaves them
    # kept: they were to be marked shown in the transaction that failed.
    original = desk.store.save_dialog

    async def gone(*args, **kwargs):
        raise StoreUnavailableError("connection lost")

    monkeypatch.setattr(desk.store, "save_dialog", gone)
    with pytest.raises(StoreUnavailableError):
        await say(conv, LOTTE, "ticket")  # starts a dialog: saved with what it shows
    monkeypatch.setattr(desk.store, "save_dialog", original)
    assert len(await desk.store.pending_kept_messages(LOTTE)) == 1
    out = await say(conv, LOTTE, "ticket")
    assert "While you were away" in out and number in out
    assert await desk.store.pending_kept_messages(LOTTE) == []
    assert "While you were away" not in await say(conv, LOTTE, "cancel")


# ---- "the requester has been told" only when it is true ----------------------------------------------


@pytest.mark.parametrize("lang,kept,pushed,nobody", [
    ("en", "Lotte Peeters has not been seen in Slack, Teams or the portal chat: unless CareDesk finds them there, they will see it the next time",
     "Lotte Peeters has been told in Slack.", "Ghost Customer cannot be reached by CareDesk at all"),
    ("fr", "Lotte Peeters n'a été vu(e) ni dans Slack, ni dans Teams, ni dans le chat du portail",
     "Lotte Peeters a été prévenu(e) dans Slack.", "CareDesk ne peut joindre Ghost Customer d'aucune façon"),
    ("nl", "Lotte Peeters is niet gezien in Slack, Teams of de portaalchat",
     "Lotte Peeters is op de hoogte gebracht in Slack.", "CareDesk kan Ghost Customer op geen enkele manier"),
])
async def test_staff_are_told_whether_the_requester_was_told_and_where(desk, lang, kept, pushed, nobody):
    from bot.domain.model import NewTicket, TicketKind

    number = await incident(desk)
    conv = TurnRunner(desk)
    # Lotte never used Slack, Teams or the portal: it waits for her next visit (the console).
    out = await say(conv, SOFIE, f"status {number} in progress", lang)
    assert kept in out and "has been told" not in out
    # Once she has written from Slack, she is told there.
    await desk.store.save_conversation_ref("slack", "T1:U1", {"channel": "D1"}, desk.now(), email=LOTTE)
    out = await say(conv, SOFIE, f"solution {number} 2026-12-15", lang)
    assert pushed in out
    # Someone outside the directory, never seen on any channel: nobody can tell them.
    ghost = await desk.store.create_ticket(NewTicket(TicketKind.INCIDENT, "ghost@nowhere.example", "Ghost Customer",
                                                     None, "ERP", "The invoice print job fails with error 42"),
                                           desk.now(), desk.settings.tickets.number_format)
    out = await say(conv, SOFIE, f"status {ghost.number} in progress", lang)
    assert nobody in out


async def test_the_logtime_questions_question_suspicious_time_and_give_the_line_that_confirms_it(desk):
    """`logtime` alone asks its questions; an answer that starts before the ticket was opened is
    not saved: the agent is told why, and given the one line that logs it anyway."""
    number = await incident(desk, opened=EARLIER)
    conv = TurnRunner(desk)
    await say(conv, SOFIE, "logtime")
    await say(conv, SOFIE, number)
    await say(conv, SOFIE, "1h30")
    await say(conv, SOFIE, "teamviewer")
    await say(conv, SOFIE, "2026-11-25 16:00")
    out = await say(conv, SOFIE, "called the customer")
    assert f"{number} was opened on Thursday 26 November 2026 at 09:00" in out and "Nothing was logged" in out
    line = f"logtime {number} 90m teamviewer at 2026-11-25 16:00 called the customer confirm"
    assert line in out
    assert await desk.store.list_time_entries() == []
    assert "Time logged" in await say(conv, SOFIE, line)
    [entry] = await desk.store.list_time_entries()
    assert entry.note == "called the customer" and entry.ended_at - entry.started_at == timedelta(minutes=90)
    # A closed ticket is questioned there too, in the agent's language.
    await say(conv, SOFIE, f"status {number} closed")
    for answer in ("logtime", number, "30m", "database", "2026-11-27 10:00", "-"):
        out = await say(conv, SOFIE, answer, "fr")
    assert f"{number} est clôturé" in out and "Rien n'a été encodé" in out
    assert len(await desk.store.list_time_entries()) == 1
