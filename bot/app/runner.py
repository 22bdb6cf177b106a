"""The runner: one `Turn` in, one `Response` out, with the dialog state kept in the store.

It loads who the user is (directory, visible tickets), runs the pure dialog engine, performs
the engine's effects idempotently (a ticket is created once per dialog, whatever the retries),
and saves the new state with optimistic versioning. A redelivered platform event is answered
once. Every channel (console, Slack, Teams) calls `TurnRunner.handle`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from bot.app import log_context, metrics
from bot.app.desk import Desk
from bot.app.escalations import Acceptance
from bot.app.identity import TenantTrust, as_unknown
from bot.app.notifications import render
from bot.app.outbox import REPLY_HOLD, durable_reply, reply_key
from bot.dialogs.engine import (Answer, Context, DirectoryEntry, Effect, EffectKind, DialogEngine, DialogResult,
                                command_of)
from bot.dialogs.intents import Intent, detect, ticket_number_pattern
from bot.dialogs.new_ticket import NewTicketDialog, check_requester
from bot.dialogs.quote import QuoteDialog
from bot.dialogs.log_time import NAME as LOGTIME, LogTimeDialog
from bot.dialogs.register import NAME as REGISTER, RegisterDialog
from bot.app.registration import register_for_customer
from bot.dialogs.tickets import EscalationDialog, TicketInfoDialog, my_tickets_replies
from bot.dialogs import menus
from bot.dialogs.common import contacts_facts, ticket_facts
from bot.domain.model import EscalationReason, KeptMessage, NewTicket, StoredDialog, Ticket, TicketKind, Urgency
from bot.i18n import format_datetime, normalize_language, translate
from bot.protocol.replies import Form, Reply, Response, Text, Tone
from bot.protocol.stored import response_from_json
from bot.domain.quote import QuoteError
from bot.app.staff import StaffCommand, StaffDesk
from bot.store.ports import StaleDialogError, TurnStart, UnknownTicketError
from bot.domain.time_entries import TimeRequest, is_agent
from bot.domain.validation import Invalid, email as parse_email, strip_controls
from bot.domain.visibility import Scope, escalation_reasons, may_see, own_open, scope_of
from bot.protocol.ids import (ESCALATION, MENU, Command, EscalationVerb, FormSubmission, parse_action,
                              parse_escalation_choice)
from bot.protocol.turn import Turn

log = logging.getLogger("caredesk.conversation")

# Turns of one conversation taken at the same moment by several processes meet at the dialog
# state's version: the loser waits a little and starts again from the winner's state. The
# version is the guarantee across processes, so the loser keeps trying for a while rather than
# asking the person to send it again: within STALE_RETRY_BUDGET_S (below Teams' 10 s answer
# deadline, itself inside the Bot Framework's 15 s), waiting from STALE_FIRST_WAIT_S, doubling up
# to STALE_MAX_WAIT_S, each wait jittered so that two losers do not meet again in step.
STALE_RETRY_BUDGET_S = 8.0
STALE_FIRST_WAIT_S = 0.01
STALE_MAX_WAIT_S = 0.25
VISIBLE_TICKETS = 50
TICKETLESS_DIALOGS = frozenset({"new_ticket", "quote", LOGTIME, REGISTER})
# `register` (staff register a ticket for a customer, issue 15 §3) in the three languages.
REGISTER_WORDS = frozenset({"register", "enregistrer", "registreren", "registreer"})


class NotVisible(Exception):
    """The ticket an effect is about is not (or no longer) among those this user may see."""

    def __init__(self, number: str):
        super().__init__(number)
        self.number = number


class TurnRunner:
    def __init__(self, desk: Desk):
        self.desk = desk
        self.settings = desk.settings
        self.store = desk.store
        self.engine = DialogEngine([NewTicketDialog(), QuoteDialog(), EscalationDialog(), TicketInfoDialog(), LogTimeDialog(),
                                    RegisterDialog()])
        self.number_pattern = ticket_number_pattern(self.settings.tickets.number_format)
        self.staff = StaffDesk(desk, self.number_pattern)
        # Who a person is, as far as their workspace or tenant proves it (every channel's turns).
        self.trust = TenantTrust(desk.store)

    # ---- public --------------------------------------------------------------------------------
    async def handle(self, turn: Turn) -> Response:
        with metrics.timed_turn(turn.channel), log_context.bound(channel=turn.channel,
                                                                   conversation=turn.conversation):
            return await self._handle_retrying(turn)

    async def _handle_retrying(self, turn: Turn) -> Response:
        # Wall-clock time, not the desk's (possibly demo) clock: this bounds how long a person waits.
        give_up_at = time.monotonic() + STALE_RETRY_BUDGET_S
        wait = STALE_FIRST_WAIT_S
        turn = _without_controls(turn)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._handle_once(turn)
            except StaleDialogError:
                # Another process took a turn of this conversation at the same moment: start
                # again from what it saved (effects are idempotent, so nothing is done twice).
                log.info("stale dialog state for %s, retrying (attempt %d)", turn.dialog_key, attempt)
            pause = wait * random.uniform(0.5, 1.5)
            if time.monotonic() + pause > give_up_at:
                break
            await asyncio.sleep(pause)
            wait = min(wait * 2, STALE_MAX_WAIT_S)
        log.warning("gave up on a turn of %s after %d stale attempts", turn.dialog_key, attempt)
        lang = normalize_language(turn.user.locale, self.settings.default_language)
        return Response((Text(translate(lang, "engine.busy"), Tone.WARNING),), lang)

    async def context(self, turn: Turn, with_tickets: bool = True, start: TurnStart | None = None) -> Context:
        """Who is talking, in which language, and (unless the turn cannot need them, which
        saves a query on most turns) which tickets they may see. `start`: the person already
        read with the turn's first read."""
        store = self.store
        email = _email(turn)
        if start is not None:
            contact, staff, company = start.contact, start.staff, start.company
        else:
            contact, staff, company = await store.find_person(email) if email else (None, None, None)
            if not await self.trust.vouched(turn, contact, staff):
                turn, email = as_unknown(turn), None
                contact = staff = company = None
        lang = normalize_language(
            turn.user.locale or (contact.language if contact else None) or (staff.language if staff else None),
            self.settings.default_language,
        )
        tickets: Sequence[Ticket]
        # The visibility policy (bot/domain/visibility.py): staff all, a contact named in the SLA
        # the company's, another contact their own, a person outside the directory none.
        scope = scope_of(contact, staff)
        if not with_tickets or scope is Scope.NONE:
            tickets = []
        elif scope is Scope.ALL:
            tickets = await store.list_tickets(limit=VISIBLE_TICKETS)
        elif scope is Scope.COMPANY and contact is not None:
            tickets = await store.list_tickets(company=contact.company, limit=VISIBLE_TICKETS)
        elif contact is not None:
            tickets = await store.list_tickets(requester_email=contact.email, limit=VISIBLE_TICKETS)
        else:
            tickets = []
        mentioned = mentioned_unknown = None
        # A ticket number typed, or carried by a button ("view:CS-2026-00042").
        match = self.number_pattern.search(turn.text or turn.values.get("value", "") or "")
        if match:
            ticket = await store.get_ticket(match.group(0))
            if ticket is not None and may_see(ticket, email, contact, staff):
                mentioned = ticket
                if all(t.number != ticket.number for t in tickets):
                    tickets = [ticket, *tickets]
            else:
                mentioned_unknown = match.group(0).upper()
        comments: tuple[Mapping[str, Any], ...] = ()
        if mentioned is not None and staff is not None:
            # Agents see what customers added to the ticket (and the internal notes) on it.
            comments = tuple(await store.list_ticket_comments(mentioned.number, include_internal=True))
        # Staff too: the customer a staff member registers a ticket for is looked up.
        named = await self._named(turn, email)
        return Context(
            settings=self.settings,
            lang=lang,
            now=self.desk.local_now(),
            calendar=self.desk.calendar,
            quotes=self.desk.quotes,
            user=turn.user,
            contact=contact,
            company=company,
            staff=staff,
            tickets=tuple(tickets),
            mentioned=mentioned,
            mentioned_unknown=mentioned_unknown,
            mentioned_comments=comments,
            named=named,
        )

    async def _named(self, turn: Turn, own: str | None) -> dict[str, DirectoryEntry]:
        """Who the e-mail address this turn gives is in the directory, when it is not the
        speaker's own: the new-ticket dialog lets a customer file only for themselves or a
        colleague (`check_requester`). One lookup, only on a turn that carries an address."""
        # "requester": the registration form's customer (staff register for them).
        for candidate in (turn.values.get("email"), turn.values.get("requester"), turn.text):
            try:
                address = parse_email(candidate or "")
            except Invalid:
                continue
            if own and address.lower() == own.lower():
                return {}
            return {address.lower(): await self._entry(address)}
        return {}

    async def _entry(self, address: str) -> DirectoryEntry:
        contact, staff, _ = await self.store.find_person(address)
        return DirectoryEntry(address, contact.company if contact else None, staff is not None)

    async def in_dialog(self, turn: Turn) -> bool:
        """Whether this conversation is in the middle of a dialog (one not left idle too long)."""
        return self._live(await self.store.load_dialog(turn.dialog_key)) is not None

    async def resume_prompt(self, turn: Turn) -> tuple[Reply, ...]:
        """The question a conversation is waiting on, if any (after a restart)."""
        state = self._live(await self.store.load_dialog(turn.dialog_key))
        if state is None:
            return ()
        ctx = await self.context(turn)
        return (Text(ctx.t("engine.resuming")),) + self.engine.prompt(ctx, state)

    async def preview(self, turn: Turn) -> DialogResult:
        """What this turn would do — field errors, a next question, or a finishing effect —
        without doing or saving anything. A channel that must answer within seconds (a Slack
        modal submission) checks the form with it, answers, and then handles the turn."""
        start = await self.store.read_turn_start(turn.dialog_key, _email(turn))
        turn, start = await self._vouch(turn, start)
        state = self._live(start.dialog)
        # A form's tickets: the new-ticket form may choose one of the person's open tickets.
        ctx = await self.context(turn, with_tickets=_is_form(turn), start=start)
        if state is not None:
            return self.engine.handle(ctx, dict(state), turn.text, turn.action, _answer(turn))
        return await self._outside_dialog(ctx, turn, _answer(turn))

    async def home(self, turn: Turn) -> Response:
        """A home page (Slack App Home): the user's open tickets and what they can do."""
        ctx = await self.context(turn)
        open_tickets = tuple(t for t in ctx.tickets if t.is_open)
        replies: list[Reply] = [Text(ctx.t("home.greeting", name=ctx.contact.name if ctx.contact else (turn.user.display_name or "")))]
        if open_tickets:
            replies.append(Text(ctx.t("home.open_tickets", count=len(open_tickets))))
            replies.extend(ticket_facts(ctx, t, full=False) for t in open_tickets[:10])
        else:
            replies.append(Text(ctx.t("home.no_open_tickets")))
        replies.extend(menus.menu(ctx))
        return Response(tuple(replies), ctx.lang)

    async def welcome(self, turn: Turn) -> Response:
        """What a new user sees when the app is installed: what the bot does and the contacts."""
        ctx = await self.context(turn)
        return Response((Text(ctx.t("help.overview")), contacts_facts(ctx)) + menus.menu(ctx), ctx.lang)

    async def form(self, turn: Turn, dialog: str, prefill: Mapping[str, Any] | None = None) -> Form | None:
        """The one-shot form of a dialog (for a Slack modal or a Teams card)."""
        ctx = await self.context(turn)
        if dialog == LOGTIME and not is_agent(ctx.staff):
            return None
        return self.engine.form_for(ctx, dialog, prefill)

    # ---- internals -------------------------------------------------------------------------------
    async def _vouch(self, turn: Turn, start: TurnStart) -> tuple[Turn, TurnStart]:
        """The turn and its first read as far as the person's workspace or tenant proves who they
        are (`bot.app.identity`): unproven, without the e-mail and the directory entry it named."""
        if await self.trust.vouched(turn, start.contact, start.staff):
            return turn, start
        return as_unknown(turn), replace(start, contact=None, staff=None, company=None)

    async def _visible(self, ctx: Context, turn: Turn, number: str) -> Ticket:
        """The ticket an effect acts on, read again and checked against the visibility policy
        whatever the dialog state or a form brought (NotVisible otherwise)."""
        ticket = await self.store.get_ticket(number)
        if ticket is None or not may_see(ticket, _email(turn), ctx.contact, ctx.staff):
            raise NotVisible(number)
        return ticket

    def _live(self, stored: StoredDialog | None) -> Mapping[str, Any] | None:
        """The stored dialog's state, unless it was left idle past the configured time."""
        if stored is None:
            return None
        idle = self.desk.now() - stored.updated_at
        return None if idle > timedelta(minutes=self.settings.dialogs.idle_timeout_minutes) else stored.state

    async def _handle_once(self, turn: Turn) -> Response:
        store = self.store
        event = (turn.channel, turn.event_id) if turn.event_id else None
        # One read for the delivery, the dialog and the person: every turn needs them.
        start = await store.read_turn_start(turn.dialog_key, _email(turn), event, turn.person)
        turn, start = await self._vouch(turn, start)
        if start.processed:
            return await self._answered_before(turn)
        stored = start.dialog
        state = self._live(stored)
        # Inside a dialog that never looks at tickets (a new ticket, a quote, time), skip them.
        in_dialog = state.get("dialog") if state is not None else None
        ctx = await self.context(turn, with_tickets=in_dialog not in TICKETLESS_DIALOGS or _is_form(turn), start=start)
        expired = stored is not None and state is None
        prefix: tuple[Reply, ...] = (Text(ctx.t("engine.expired")),) if expired else ()

        answer = _answer(turn)
        inside = self.staff.recognise(turn.text, staff=True) if (
            state is not None and ctx.staff is not None and not turn.action) else None
        if state is not None and inside is not None:
            # A staff command works from anywhere: it is run, and the open conversation waits
            # where it was (said, with how to leave it), unless the command starts a new one.
            result = await self._staff(ctx, turn, inside)
            if result.state is None:
                result = DialogResult(dict(state), result.replies + (Text(ctx.t("staff.more.dialog_open")),))
        elif state is not None:
            result = self.engine.handle(ctx, dict(state), turn.text, turn.action, answer)
        else:
            result = await self._outside_dialog(ctx, turn, answer, expired=expired)
        replies = prefix + result.replies
        ticket_number = None
        if result.effect is not None:
            assert result.state is not None
            try:
                outcome = await self._perform(ctx, turn, result.state, result.effect)
            except NotVisible as exc:
                # The ticket left this user's reach while they were answering (moved, or a race):
                # say so plainly, as for any ticket they may not see.
                replies += (Text(ctx.t("tickets.not_found", number=exc.number), Tone.WARNING),)
            except UnknownTicketError:
                number = result.effect.payload.get("ticket", "")
                replies += (Text(ctx.t("staff.unknown_ticket", number=number), Tone.ERROR),)
            except QuoteError as exc:
                replies += (Text(ctx.t(exc.key, **exc.params), Tone.ERROR),)
            except Invalid as exc:
                # Refused where it acts (a forged form, an old dialog state): said, nothing done.
                replies += (Text(ctx.t(exc.key, **exc.params), Tone.WARNING),)
            else:
                replies += self.engine.completed(ctx, result.state["dialog"], result.state["data"], outcome)
                if isinstance(outcome, Ticket):
                    ticket_number = outcome.number
                    metrics.TICKETS_CREATED.labels(turn.channel).inc()
            new_state = None
        else:
            new_state = result.state

        now = self.desk.now()
        # What was sent to them while no channel could push it (the console, a closed portal
        # page): shown first, once. A turn that saves something marks them shown in that very
        # transaction (with its durable answer); one that saves nothing takes them (read and
        # marked in one transaction).
        email = _email(turn)
        saves = new_state is not None or stored is not None or event is not None
        kept: Sequence[KeptMessage] = ()
        if email and start.kept_waiting:  # the turn's first read said whether to look
            kept = await (store.pending_kept_messages(email) if saves else store.take_kept_messages(email, now))
        if kept:
            replies = self._while_away(ctx, kept) + replies
        shown = [k.id for k in kept] if saves else []
        response = Response(replies, ctx.lang, dict(result.field_errors), done=result.done, ticket_number=ticket_number,
                            notices_owed=start.notices_owed)
        # The answer is as durable as the state change it comes from: saved with it.
        reply = durable_reply(turn, response, now)
        if new_state is not None:
            await store.save_dialog(turn.dialog_key, new_state, stored.version if stored else None, now, event=event,
                                    reply=reply, shown=shown)
        elif stored is not None:
            await store.delete_dialog(turn.dialog_key, stored.version, event=event, now=now, reply=reply, shown=shown)
        elif event and not await store.claim_event(*event, now, reply=reply, shown=shown):
            # Another process answered this very delivery a moment ago: it was answered once.
            return Response(lang=ctx.lang, duplicate=True)
        return replace(response, reply_key=reply.idempotency_key) if reply is not None else response

    def _while_away(self, ctx: Context, kept: Sequence[KeptMessage]) -> tuple[Reply, ...]:
        """The messages kept for this person, headed "While you were away:", each with when it was sent."""
        replies: list[Reply] = [Text(ctx.t("away.title"))]
        for message in kept:
            when = format_datetime(message.created_at.astimezone(ctx.calendar.tz), ctx.lang)
            replies.append(Text(ctx.t("away.when", when=when)))
            replies.extend(render(message.kind, message.payload, ctx.lang, self.settings).replies)
        replies.append(Text(ctx.t("away.end")))
        return tuple(replies)

    async def _answered_before(self, turn: Turn) -> Response:
        """A delivery already processed (a platform's retry, or an inbox item taken again after
        its worker died). Its answer was saved with it: if it was never posted, it is posted now
        rather than lost; else nothing is sent twice."""
        if turn.reply_to is not None and turn.event_id:
            owed = await self.store.claim_reply(reply_key(turn.channel, turn.event_id), self.desk.now(), REPLY_HOLD)
            if owed is not None:
                log.info("delivery %s was answered but its answer not posted: posting it now", turn.event_id)
                return replace(response_from_json(owed.payload["response"]), reply_key=owed.idempotency_key)
        log.info("duplicate delivery %s ignored", turn.event_id)
        return Response(duplicate=True)

    async def _ticket_company(self, ctx: Context, chosen: Any) -> str | None:
        """A directory contact's tickets belong to their company; staff registering a ticket for
        a customer name one of the directory's companies; anyone else's belong to no company
        until staff set it (`company NUMBER NAME`)."""
        if ctx.contact is not None:
            return ctx.company.name if ctx.company else ctx.contact.company
        if ctx.staff is None or not chosen:
            return None
        company = await self.store.get_company(str(chosen))
        if company is None:
            raise Invalid("validation.unknown_company", {"company": str(chosen)})
        return company.name

    async def _outside_dialog(self, ctx: Context, turn: Turn, answer: Answer, expired: bool = False) -> DialogResult:
        """No dialog in progress: a menu click, a form, a command or free text."""
        action = turn.action
        clicked = parse_action(action)
        if isinstance(clicked, FormSubmission):
            dialog = clicked.dialog
            if dialog == LOGTIME and not is_agent(ctx.staff):
                return DialogResult(None, (Text(ctx.t("staff.only_agents"), Tone.WARNING),))
            if dialog in self.engine.dialogs:
                return self.engine.start_with_form(ctx, dialog, answer)
        if clicked == MENU:
            return self._intent(ctx, Intent(answer.text))
        if clicked == ESCALATION:
            choice = parse_escalation_choice(answer.text)
            if choice is not None and choice.verb is EscalationVerb.VIEW:
                return self._intent(ctx, Intent("ticket_info", {"number": choice.ticket}))
            # Anything else is an acknowledgement, a forged or empty value too: the staff command
            # checks who may acknowledge, and says so of a ticket it does not know.
            return await self._staff(ctx, turn, StaffCommand("ack", choice.ticket if choice else ""))
        if not action and (turn.text or "").strip().lower().lstrip("/") in REGISTER_WORDS:
            return self.engine.start(ctx, REGISTER)
        command = self.staff.recognise(turn.text, staff=ctx.staff is not None) if not action else None
        if command is not None:
            return await self._staff(ctx, turn, command)
        word = command_of(turn.text if not action else None, action)
        if word in (Command.CANCEL, Command.BACK):
            return DialogResult(None, (Text(ctx.t("engine.nothing_to_cancel")),) + menus.menu(ctx))
        if word is Command.HELP:
            return DialogResult(None, menus.help_replies(ctx))
        if ctx.staff is not None and not action:
            staff_view = await self._staff_ticket(ctx, turn.text or "")
            if staff_view is not None:
                return staff_view
        if action:
            # A button of a conversation that is over (a double click, an old card): never act twice.
            return DialogResult(None, (Text(ctx.t("engine.finished_already"), Tone.WARNING),) + menus.menu(ctx))
        # The menu the console prints is numbered: "1" or "Open a ticket" answers it (but not an
        # answer to the question of a conversation that has just expired).
        chosen = None if expired else menus.menu_choice(ctx, turn.text)
        if chosen is not None:
            return self._intent(ctx, Intent(chosen))
        intent = detect(turn.text or "", self.number_pattern)
        if intent is None:
            if ctx.mentioned_unknown:
                return DialogResult(None, (Text(ctx.t("tickets.not_found", number=ctx.mentioned_unknown), Tone.WARNING),))
            return DialogResult(None, (Text(ctx.t("menu.unknown")),) + menus.menu(ctx))
        return self._intent(ctx, intent)

    async def _staff_ticket(self, ctx: Context, text: str) -> DialogResult | None:
        """Staff who type a ticket's number (or `ticket NUMBER`) see it as staff need it, not the
        customer's menu of what to do with it."""
        words = text.strip().split()
        if not words or len(words) > 2 or (len(words) == 2 and words[0].lower().lstrip("/") != "ticket"):
            return None
        number = words[-1].upper()
        if not self.number_pattern.fullmatch(number):
            return None
        ticket = await self.store.get_ticket(number)
        if ticket is None:
            return DialogResult(None, (Text(ctx.t("staff.unknown_ticket", number=number), Tone.WARNING),))
        return DialogResult(None, await self.staff.agent_view(ctx, ticket))

    async def _staff(self, ctx: Context, turn: Turn, command: StaffCommand) -> DialogResult:
        if not self.staff.allowed(ctx, command):
            return DialogResult(None, self.staff.refusal(ctx, command))
        if command.name == "logtime" and not command.rest.strip():
            return self.engine.start(ctx, LOGTIME)
        # A redelivered command must not log the same time twice: the delivery id is the key.
        key = f"{turn.channel}:{turn.event_id}" if turn.event_id else None
        return DialogResult(None, await self.staff.run(ctx, command, key))

    def _intent(self, ctx: Context, intent: Intent) -> DialogResult:
        name, args = intent.name, dict(intent.args)
        if name in ("ticket_info", "escalate", "my_tickets") and scope_of(ctx.contact, ctx.staff) is Scope.NONE:
            # Outside the directory: a first contact only, no ticket read or escalated.
            return DialogResult(None, (Text(ctx.t("visibility.unknown_person", email=ctx.settings.contact.email,
                                                  phone=ctx.settings.contact.phone), Tone.WARNING),))
        if name in ("ticket_info", "escalate") and args.get("number") and ctx.mentioned is None:
            return DialogResult(None, (Text(ctx.t("tickets.not_found", number=args["number"]), Tone.WARNING),))
        if name == "new_ticket":
            return self.engine.start(ctx, "new_ticket", args)
        if name == "quote":
            return self.engine.start(ctx, "quote", args)
        if name == "escalate":
            return self.engine.start(ctx, "escalate", args)
        if name == "ticket_info":
            return self.engine.start(ctx, "ticket_info", args)
        if name == "my_tickets":
            return DialogResult(None, my_tickets_replies(ctx))
        if name == "contacts":
            return DialogResult(None, menus.contacts_replies(ctx))
        if name == "help":
            return DialogResult(None, menus.help_replies(ctx))
        return DialogResult(None, (Text(ctx.t("menu.unknown")),) + menus.menu(ctx))

    async def _page(self, ticket: Ticket, p: Mapping[str, Any], accepted_by: str, now: datetime, key: str) -> None:
        """An accepted out-of-hours emergency (rules page §1): record what was accepted on the
        ticket (an internal note agents see) and page whoever is on duty. Both are keyed by the
        dialog instance like the ticket, so a retried turn does neither twice."""
        acceptance = Acceptance(str(p.get("accepted_percent") or ""), str(p.get("accepted_basis") or "default"),
                                bool(p.get("fee_warning")), accepted_by, now.isoformat())
        lang = self.settings.default_language
        note = translate(
            lang, "staff.emergency_record", by=accepted_by,
            at=format_datetime(now.astimezone(self.desk.calendar.tz), lang), percent=acceptance.percent,
            basis=translate(lang, f"notify.page.basis.{acceptance.basis}"),
            fee=(" " + translate(lang, "staff.emergency_fee")) if acceptance.fee_warning else "",
        )
        await self.store.add_ticket_comment(ticket.number, accepted_by, note, now, internal=True,
                                            idempotency_key=f"{key}:emergency")
        await self.staff.escalations.start_page(ticket, acceptance, now, key)

    async def _perform(self, ctx: Context, turn: Turn, state: Mapping[str, Any], effect: Effect) -> Any:
        """Carry out a finishing effect. Each is keyed by the dialog instance, so a retried turn
        (stale state, redelivery, a crash before the state was saved) never does it twice."""
        key = f"dialog:{state['instance']}"
        p = effect.payload
        now = self.desk.now()
        if effect.kind is EffectKind.CREATE_TICKET:
            requester = str(p["email"])
            # Checked again here, whatever the dialog state or the form brought: the requester
            # is the speaker or a colleague, and the company is the speaker's own (as the
            # platform proves the speaker's e-mail), never one typed in.
            check_requester(replace(ctx, named={requester.lower(): await self._entry(requester)}), requester)
            new = NewTicket(
                kind=TicketKind(p["kind"]),
                requester_email=requester,
                requester_name=p["name"],
                requester_phone=p.get("phone"),
                company=await self._ticket_company(ctx, p.get("company")),
                module=p["module"],
                description=p["description"],
                reproduce=p.get("reproduce"),
                diagnostics=p.get("diagnostics"),
                urgency=Urgency(p["urgency"]),
                channel=turn.channel,
                out_of_hours_emergency=bool(p.get("emergency")),
                created_by=turn.user.email or turn.user.id,
            )
            created = await self.store.create_ticket(new, now, self.settings.tickets.number_format, idempotency_key=key)
            log_context.add(ticket=created.number)
            log.info("ticket %s created from %s", created.number, turn.channel)
            if created.out_of_hours_emergency:
                await self._page(created, p, turn.user.email or turn.user.id, now, key)
            return created
        if effect.kind is EffectKind.CREATE_ESCALATION:
            number = p["ticket"]
            ticket = await self._visible(ctx, turn, number)
            if EscalationReason(p["reason"]) not in escalation_reasons(ticket):
                # A reason the ticket does not allow (a forged form, or the ticket changed
                # while the person answered): refused, nothing done.
                raise Invalid("visibility.reason_unfit", {"number": number})
            requested_by = turn.user.email or turn.user.id
            outbox = await self.staff.escalations.ping_messages(
                ticket, 1, p["reason"], p["comment"], requested_by, f"{key}:escalation:level:1")
            escalation = await self.store.create_escalation(
                number, 1, EscalationReason(p["reason"]), p["comment"], requested_by, now,
                outbox=outbox, idempotency_key=key,
            )
            log.info("ticket %s escalated to level 1", number)
            return escalation
        if effect.kind is EffectKind.REGISTER_TICKET:
            if ctx.staff is None:
                raise Invalid("register.only_staff")
            return await register_for_customer(self.desk, intake=str(p.get("intake") or ""), by=ctx.staff.email,
                                               requester=str(p.get("requester") or ""), values=p,
                                               idempotency_key=key)
        if effect.kind is EffectKind.LOG_TIME:
            request = TimeRequest(p["ticket"], timedelta(minutes=int(p["minutes"])), p["service"],
                                  datetime.fromisoformat(p["start"]), p.get("note"))
            return await self.staff.log_time_questioned(ctx, request, key)
        if effect.kind is EffectKind.ADD_COMMENT:
            number = p["ticket"]
            ticket = await self._visible(ctx, turn, number)
            if p.get("own_open") and not own_open(ticket, ctx.contact, ctx.staff):
                # Offered as one of the speaker's own open tickets (§3b): still one, or refused.
                raise Invalid("existing.form.not_yours", {"number": ticket.number})
            await self.store.add_ticket_comment(
                number, turn.user.email or turn.user.id, p["text"], now, internal=False, idempotency_key=key
            )
            return number
        raise ValueError(f"unknown effect {effect.kind}")


def _without_controls(turn: Turn) -> Turn:
    """What a person typed, without terminal escape sequences and control characters: whatever
    the channel, they never reach the store, a log or another person's screen."""
    text = strip_controls(turn.text) if turn.text is not None else None
    values = {k: strip_controls(v) if isinstance(v, str) else v for k, v in turn.values.items()}
    if text == turn.text and values == dict(turn.values):
        return turn
    return replace(turn, text=text, values=values)


def _is_form(turn: Turn) -> bool:
    return isinstance(parse_action(turn.action), FormSubmission)


def _answer(turn: Turn) -> Answer:
    return Answer(
        text=(turn.text or turn.values.get("value", "") or "").strip(),
        values=dict(turn.values),
        is_form=_is_form(turn),
        confirmed=turn.values.get("_confirmed") == "1",
    )


def _email(turn: Turn) -> str | None:
    return (turn.user.email or "").strip() or None
