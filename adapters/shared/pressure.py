"""Ack pressure: whether the server has more Slack requests in hand than it keeps up with, and
the route wrapper that counts them (`counted`). The inbox workers (`bot.app.inbox.InboxWorker`,
in the server or in its worker processes, which hear it through a pipe) make room for the acks
while it lasts."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from typing import Awaitable, Callable, Iterator

from aiohttp import web

log = logging.getLogger("caredesk.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Ack pressure: this many requests in hand at once (Slack's, acknowledged now and worked on
# later) mean a server is behind (a flood), until none has come this close for PRESSURE_HOLD_S.
# (The count alone flickers: a group commit answers a hundred requests at once, and the next
# hundred arrive a moment later.)
PRESSURE_HIGH = 32
PRESSURE_HOLD_S = 1.0


class AckPressure:
    """Whether a server has more requests in hand than it keeps up with (those it acknowledges
    now and works on later: Slack's).

    Why: Slack wants its acknowledgement within 3 s and gives up on an app that misses too many,
    while an answer may come a few seconds late. The work behind the acks (the inbox, in the
    server or in its worker processes) shares the machine and the database with them and, left
    at full speed, slows the acknowledgements down under a flood (docs/performance.md). So
    under pressure the workers make room: they keep only a floor of work going, urgent items
    first (`bot.app.inbox.PRESSURED_CONCURRENCY`); the rest waits in the inbox, durably, and is
    done as soon as the flood is over."""

    def __init__(self, high: int = PRESSURE_HIGH, hold: float = PRESSURE_HOLD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if high < 1 or hold <= 0:
            raise ValueError("the pressure's mark must be at least 1 and its hold positive")
        self.high = high
        self.hold = hold
        self.clock = clock
        self.in_flight = 0
        self.busy = False
        self._last_high = float("-inf")
        self._check: asyncio.TimerHandle | None = None
        self._listeners: list[Callable[[bool], None]] = []

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """`listener(busy)` is called at every change (not at every request)."""
        self._listeners.append(listener)

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.high:
            self._last_high = self.clock()
            if not self.busy:
                self.set(True)
                self._check_later(self.hold)

    def leave(self) -> None:
        self.in_flight -= 1

    def _check_later(self, delay: float) -> None:
        self._check = asyncio.get_running_loop().call_later(delay, self.check)

    def check(self) -> None:
        """Over once no request came close to the mark for the hold time."""
        self._check = None
        if not self.busy:
            return
        quiet = self.clock() - self._last_high
        if quiet >= self.hold:
            self.set(False)
        else:
            self._check_later(self.hold - quiet)

    def set(self, busy: bool) -> None:
        """Also told from outside (a worker process hears its server's pressure)."""
        if busy == self.busy:
            return
        self.busy = busy
        if not busy and self._check is not None:
            self._check.cancel()
            self._check = None
        for listener in self._listeners:
            try:
                listener(busy)
            except Exception:  # a failing listener must not fail the request that changed it
                log.exception("ack pressure: a listener failed")


@contextmanager
def in_hand(pressure: AckPressure | None) -> Iterator[None]:
    """Count one request in hand for `pressure` (None: nothing to count) while the block runs."""
    if pressure is None:
        yield
        return
    pressure.enter()
    try:
        yield
    finally:
        pressure.leave()


def counted(pressure: AckPressure, handler: Handler) -> Handler:
    """`handler`, its requests in hand counted for `pressure`: for a route whose requests are
    acknowledged at once and worked on afterwards (Slack's), so that the work makes room for the
    acknowledgements under a flood. (Teams' requests carry their own work: not counted.)"""

    async def counting(request: web.Request) -> web.StreamResponse:
        with in_hand(pressure):
            return await handler(request)

    return counting


# Where the server keeps its pressure for the channels it mounts (one per server).
PRESSURE_KEY: web.AppKey[AckPressure] = web.AppKey("ack_pressure", AckPressure)
