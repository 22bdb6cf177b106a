"""Who a person is, as far as their workspace or tenant proves it: the one place every channel's
turns pass (`TurnRunner`), so that Slack, Teams and any later channel check it the same way.

A Slack profile or a Teams account shows an e-mail address its workspace or tenant chose: a
customer's admin can give anyone any address. The directory therefore counts a person as a
contact of a company only when their workspace or tenant (`Turn.home_tenant`) is bound to that
company, and as staff only when it is bound to the service desk (`bot.domain.model.vouches_for`).
Otherwise the person is served as someone unknown, without the e-mail: they can open a first
contact and nothing more, and a profile e-mail of another company gives nothing of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable

from bot.domain.model import CustomerContact, StaffMember, vouches_for
from bot.protocol.turn import Turn
from bot.store.ports import DirectoryStore

log = logging.getLogger("caredesk.identity")

# How long a process keeps what a workspace or tenant is bound to: every turn needs it, a binding
# changes rarely (`caredesk companies bind`), and a change reaches every process within this.
BINDINGS_TTL_S = 5.0
MAX_TENANTS = 10_000


class TenantTrust:
    """The bindings of workspaces and tenants, read from the store and kept for BINDINGS_TTL_S."""

    def __init__(self, store: DirectoryStore, ttl: float = BINDINGS_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._parties: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def forget(self) -> None:
        """Read the bindings afresh at the next turn (tests, a binding changed in this process)."""
        self._parties.clear()

    async def parties(self, channel: str, tenant: str) -> frozenset[str]:
        key = (channel, tenant)
        now = self.clock()
        known = self._parties.get(key)
        if known is not None and known[0] > now:
            return known[1]
        parties = await self.store.tenant_parties(channel, tenant) if tenant else frozenset()
        if len(self._parties) >= MAX_TENANTS:
            self._parties.clear()
        self._parties[key] = (now + self.ttl, parties)
        return parties

    async def vouched(self, turn: Turn, contact: CustomerContact | None, staff: StaffMember | None) -> bool:
        """Whether the turn's workspace or tenant proves the directory entry its e-mail names."""
        if turn.home_tenant is None or not (turn.user.email or "").strip():
            return True
        if vouches_for(await self.parties(turn.channel, turn.home_tenant), contact, staff):
            return True
        # The tenant, never the address: who claimed to be whom is for the desk to ask, not the logs.
        log.info("a %s person of %s is served as unknown: their e-mail is %s", turn.channel, turn.home_tenant,
                 "not that of a directory entry of theirs" if (contact or staff) else "unproven (the workspace is bound to nobody)")
        return False


def as_unknown(turn: Turn) -> Turn:
    """The turn of a person whose profile e-mail is not proven: without it."""
    return replace(turn, user=replace(turn.user, email=None))
