"""Every implementation of the store implements every port: each method of each Protocol in
`bot.store.ports.PORTS` exists on it, as a coroutine function, with the same parameters (names,
kinds, defaults, annotations). The contract suites check what the methods do; this checks that
none is missing or has drifted, which the suites would only notice for the methods they call.
"""

from __future__ import annotations

import inspect
from typing import Any

from bot.store.ports import (
    NoticeStore,
    OperationsStore,
    PortalStore,
    PORTS,
    DialogStore,
    DirectoryStore,
    EscalationStore,
    InboxStore,
    OutboxStore,
    Store,
    StoreLifecycle,
    TicketStore,
    TimeEntryStore,
)
from bot.store.sql import SqlStore
from bot.store.sql.base import SqlBase
from bot.store.sql.dialogs import SqlDialogs
from bot.store.sql.directory import SqlDirectory
from bot.store.sql.escalations import SqlEscalations
from bot.store.sql.inbox import SqlInbox
from bot.store.sql.notices import SqlNotices
from bot.store.sql.operations import SqlOperations
from bot.store.sql.portal import SqlPortal
from bot.store.sql.outbox import SqlOutbox
from bot.store.sql.tickets import SqlTickets
from bot.store.sql.time_entries import SqlTimeEntries

IMPLEMENTATIONS = (SqlStore,)


def port_methods(port: type) -> dict[str, Any]:
    """The methods a port declares itself (not those of the Protocol machinery)."""
    return {name: value for name, value in vars(port).items() if not name.startswith("_") and callable(value)}


def differences(implementation: type, ports: tuple[type, ...] = PORTS) -> list[str]:
    problems = []
    for port in ports:
        for name, declared in port_methods(port).items():
            where = f"{implementation.__name__}.{name} ({port.__name__})"
            made = getattr(implementation, name, None)
            if made is None:
                problems.append(f"{where} is missing")
                continue
            if inspect.iscoroutinefunction(declared) != inspect.iscoroutinefunction(made):
                problems.append(f"{where}: async in one, not in the other")
            if inspect.signature(declared) != inspect.signature(made):
                problems.append(f"{where}: {inspect.signature(made)} instead of {inspect.signature(declared)}")
    return problems


def test_every_implementation_implements_every_port() -> None:
    for implementation in IMPLEMENTATIONS:
        assert differences(implementation) == []


def test_each_sql_module_implements_its_own_port() -> None:
    # SqlStore is made of them: each aggregate's SQL class stands for its port (and the life cycle).
    own = {
        SqlBase: StoreLifecycle,
        SqlDirectory: DirectoryStore,
        SqlTickets: TicketStore,
        SqlDialogs: DialogStore,
        SqlTimeEntries: TimeEntryStore,
        SqlEscalations: EscalationStore,
        SqlOutbox: OutboxStore,
        SqlInbox: InboxStore,
        SqlNotices: NoticeStore,
        SqlOperations: OperationsStore,
        SqlPortal: PortalStore,
    }
    assert set(own.values()) == set(PORTS)
    for implementation, port in own.items():
        assert differences(implementation, (port, StoreLifecycle)) == []


def test_store_is_the_union_of_the_ports_and_they_do_not_overlap() -> None:
    declared = [name for port in PORTS for name in port_methods(port)]
    assert len(declared) == len(set(declared)), "a method is declared by two ports"
    assert set(declared) == {name for name in dir(Store) if not name.startswith("_")}
    assert set(PORTS) <= set(Store.__mro__)


def test_the_check_sees_a_missing_method_and_a_changed_parameter() -> None:
    # The checks above must be able to fail: an inbox missing one method and with one parameter renamed.
    class HalfInbox(SqlStore):
        count_unfinished_inbound = None  # type: ignore[assignment]

        async def purge_inbound(self, finished_before):  # type: ignore[no-untyped-def,override]
            return 0

    problems = differences(HalfInbox, (InboxStore,))
    assert len(problems) == 2, problems
    assert "HalfInbox.count_unfinished_inbound (InboxStore) is missing" in problems
    assert any(p.startswith("HalfInbox.purge_inbound (InboxStore): (self, finished_before)") for p in problems)
