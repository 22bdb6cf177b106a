"""The retention purge (docs/operations.md, `[retention]`): what is no longer needed is deleted
once it has been kept as long as the settings say, by whichever process runs the outbox
dispatcher (the server, or its `caredesk worker` processes), every few minutes."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Callable, Mapping

from bot.domain.config import RetentionSettings
from bot.store.ports import OperationsStore, RetentionCutoffs

log = logging.getLogger("caredesk.retention")

PURGE_EVERY_S = 600.0


def cutoffs(settings: RetentionSettings) -> RetentionCutoffs:
    return RetentionCutoffs(dialogs=timedelta(days=settings.dialog_days),
                            inbox_done=timedelta(minutes=settings.inbox_done_minutes),
                            outbox_sent=timedelta(days=settings.outbox_sent_days),
                            conversation_refs=timedelta(days=settings.conversation_ref_days))


class Retention:
    """Purges at most every `every` seconds; `clock` is real time (a demo clock must not make
    today's rows look old)."""

    def __init__(self, store: OperationsStore, settings: RetentionSettings, clock: Callable[[], datetime],
                 every: float = PURGE_EVERY_S) -> None:
        self.store = store
        self.cutoffs = cutoffs(settings)
        self.clock = clock
        self.every = every
        self._last: float | None = None

    async def tick(self) -> Mapping[str, int] | None:
        """Purge if it is time (None: not yet)."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every:
            return None
        self._last = now
        purged = await self.store.purge_retained(self.clock(), self.cutoffs)
        if any(purged.values()):
            log.info("retention: purged %s", ", ".join(f"{n} {table}" for table, n in purged.items() if n))
        return purged
