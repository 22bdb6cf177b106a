"""Which ticket status may follow which (change management included)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from bot.domain.model import Ticket, TicketKind, TicketStatus as S, Urgency
from bot.domain.workflow import TransitionRefused, check_release_date, check_solution_date, check_status

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)
TODAY = date(2026, 11, 26)


def ticket(kind: TicketKind, status: S, **kw) -> Ticket:
    return Ticket(1, "CS-2026-00001", kind, status, "a@b.be", "A", None, "ACME", "ERP", "desc", None, None,
                  Urgency.NORMAL, "console", False, NOW, NOW, **kw)


@pytest.mark.parametrize(
    "kind,path",
    [
        (TicketKind.INCIDENT, [S.NEW, S.IN_PROGRESS, S.WAITING_FOR_CUSTOMER, S.IN_PROGRESS, S.RESOLVED, S.CLOSED]),
        (TicketKind.SERVICE_REQUEST, [S.NEW, S.RESOLVED, S.IN_PROGRESS, S.CLOSED]),
        (TicketKind.CHANGE_REQUEST, [S.SUBMITTED, S.ASSESSED, S.APPROVED, S.SCHEDULED, S.RELEASED, S.CLOSED]),
        (TicketKind.CHANGE_REQUEST, [S.SUBMITTED, S.ASSESSED, S.REJECTED, S.CLOSED]),
    ],
)
def test_allowed_paths(kind, path):
    current = ticket(kind, path[0], release_date=date(2026, 12, 15))
    for target in path[1:]:
        check_status(current, target)
        current = replace(current, status=target)


@pytest.mark.parametrize(
    "kind,status,target,key",
    [
        (TicketKind.CHANGE_REQUEST, S.SUBMITTED, S.RELEASED, "workflow.error.transition"),
        (TicketKind.CHANGE_REQUEST, S.SUBMITTED, S.APPROVED, "workflow.error.transition"),
        (TicketKind.CHANGE_REQUEST, S.APPROVED, S.SCHEDULED, "workflow.error.needs_release_date"),
        (TicketKind.CHANGE_REQUEST, S.ASSESSED, S.IN_PROGRESS, "workflow.error.status_for_kind"),
        (TicketKind.INCIDENT, S.NEW, S.APPROVED, "workflow.error.status_for_kind"),
        (TicketKind.INCIDENT, S.NEW, S.NEW, "workflow.error.transition"),
        (TicketKind.INCIDENT, S.CLOSED, S.RESOLVED, "workflow.error.transition"),
    ],
)
def test_refused_transitions(kind, status, target, key):
    with pytest.raises(TransitionRefused) as err:
        check_status(ticket(kind, status), target)
    assert err.value.key == key


def test_dates():
    check_solution_date(ticket(TicketKind.SERVICE_REQUEST, S.NEW), date(2026, 12, 1), TODAY)
    with pytest.raises(TransitionRefused):
        check_solution_date(ticket(TicketKind.CHANGE_REQUEST, S.SUBMITTED), date(2026, 12, 1), TODAY)
    with pytest.raises(TransitionRefused):
        check_solution_date(ticket(TicketKind.SERVICE_REQUEST, S.NEW), date(2026, 11, 1), TODAY)
    check_release_date(ticket(TicketKind.CHANGE_REQUEST, S.APPROVED), date(2026, 12, 15), TODAY)
    with pytest.raises(TransitionRefused) as err:
        check_release_date(ticket(TicketKind.CHANGE_REQUEST, S.ASSESSED), date(2026, 12, 15), TODAY)
    assert err.value.key == "workflow.error.release_not_approved"
    with pytest.raises(TransitionRefused):
        check_release_date(ticket(TicketKind.INCIDENT, S.NEW), date(2026, 12, 15), TODAY)
