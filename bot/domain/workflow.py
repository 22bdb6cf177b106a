"""The ticket workflow: which status may follow which, and what the requester is told.

Incidents and service requests: new → in progress ⇄ waiting for the customer → resolved →
closed (a resolved or closed ticket can be reopened). Change requests follow change
management (rules page §4.2): submitted → assessed → approved or rejected → scheduled (with a
release date) → released → closed. The requester hears of the changes that concern them; the
release date only once it is known.
"""

from __future__ import annotations

from datetime import date

from bot.domain.model import Ticket, TicketKind, TicketStatus as S

SUPPORT_FLOW: dict[S, frozenset[S]] = {
    S.NEW: frozenset({S.IN_PROGRESS, S.WAITING_FOR_CUSTOMER, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.WAITING_FOR_CUSTOMER, S.RESOLVED, S.CLOSED}),
    S.WAITING_FOR_CUSTOMER: frozenset({S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset({S.IN_PROGRESS}),
}
CHANGE_FLOW: dict[S, frozenset[S]] = {
    S.SUBMITTED: frozenset({S.ASSESSED, S.REJECTED}),
    S.ASSESSED: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.SCHEDULED, S.REJECTED}),
    S.SCHEDULED: frozenset({S.RELEASED, S.SCHEDULED}),
    S.REJECTED: frozenset({S.CLOSED}),
    S.RELEASED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}
# What the requester is told about (status changes they would want to know).
NOTIFIED = frozenset({S.IN_PROGRESS, S.WAITING_FOR_CUSTOMER, S.RESOLVED, S.CLOSED, S.ASSESSED, S.APPROVED,
                      S.REJECTED, S.SCHEDULED, S.RELEASED})

# Words agents may type for a status (English, French, Dutch).
STATUS_WORDS: dict[str, S] = {
    **{s.value: s for s in S},
    "progress": S.IN_PROGRESS, "in-progress": S.IN_PROGRESS, "waiting": S.WAITING_FOR_CUSTOMER,
    "en_cours": S.IN_PROGRESS, "encours": S.IN_PROGRESS, "attente": S.WAITING_FOR_CUSTOMER, "résolu": S.RESOLVED,
    "resolu": S.RESOLVED, "clôturé": S.CLOSED, "cloture": S.CLOSED, "évalué": S.ASSESSED, "approuvé": S.APPROVED,
    "rejeté": S.REJECTED, "planifié": S.SCHEDULED, "livré": S.RELEASED,
    "bezig": S.IN_PROGRESS, "wachten": S.WAITING_FOR_CUSTOMER, "opgelost": S.RESOLVED, "gesloten": S.CLOSED,
    "beoordeeld": S.ASSESSED, "goedgekeurd": S.APPROVED, "afgewezen": S.REJECTED, "gepland": S.SCHEDULED,
    "uitgerold": S.RELEASED,
    "en_attente": S.WAITING_FOR_CUSTOMER, "in_behandeling": S.IN_PROGRESS, "wacht_op_klant": S.WAITING_FOR_CUSTOMER,
    "wachten_op_klant": S.WAITING_FOR_CUSTOMER, "en_attente_du_client": S.WAITING_FOR_CUSTOMER,
}


def read_status(words: list[str]) -> tuple[S | None, int]:
    """The status the first words name, as agents type it ("in progress", "in_progress",
    "waiting for customer", "en cours", "in behandeling"), and how many words it took."""
    for count in (4, 3, 2, 1):
        if count > len(words):
            continue
        said = [w.lower() for w in words[:count]]
        for joined in ("_".join(said), "".join(said), "-".join(said)):
            if joined in STATUS_WORDS:
                return STATUS_WORDS[joined], count
    return None, 0


class TransitionRefused(ValueError):
    """A change that makes no sense; `key`/`params` name the message for the agent."""

    def __init__(self, key: str, **params: object):
        super().__init__(key)
        self.key = key
        self.params = params


def flow_of(ticket: Ticket) -> dict[S, frozenset[S]]:
    return CHANGE_FLOW if ticket.kind is TicketKind.CHANGE_REQUEST else SUPPORT_FLOW


def check_status(ticket: Ticket, target: S, release_date: date | None = None) -> None:
    flow = flow_of(ticket)
    if target not in flow and target not in {t for targets in flow.values() for t in targets}:
        raise TransitionRefused("workflow.error.status_for_kind", status=target.value, kind=ticket.kind.value)
    if target not in flow.get(ticket.status, frozenset()) or (target == ticket.status and target is not S.SCHEDULED):
        allowed = ", ".join(sorted(s.value for s in flow.get(ticket.status, frozenset())))
        raise TransitionRefused("workflow.error.transition", number=ticket.number, current=ticket.status.value,
                                target=target.value, allowed=allowed or "-")
    if target is S.SCHEDULED and release_date is None and ticket.release_date is None:
        raise TransitionRefused("workflow.error.needs_release_date", number=ticket.number)


def check_solution_date(ticket: Ticket, when: date, today: date) -> None:
    if ticket.kind is TicketKind.CHANGE_REQUEST:
        raise TransitionRefused("workflow.error.solution_for_change", number=ticket.number)
    if when < today:
        raise TransitionRefused("workflow.error.date_in_past")
    if ticket.status in (S.RESOLVED, S.CLOSED):
        raise TransitionRefused("workflow.error.closed", number=ticket.number)


def check_release_date(ticket: Ticket, when: date, today: date) -> None:
    if ticket.kind is not TicketKind.CHANGE_REQUEST:
        raise TransitionRefused("workflow.error.release_for_support", number=ticket.number)
    if when < today:
        raise TransitionRefused("workflow.error.date_in_past")
    if ticket.status not in (S.APPROVED, S.SCHEDULED):
        raise TransitionRefused("workflow.error.release_not_approved", number=ticket.number, current=ticket.status.value)
