"""A small cache with an expiry per entry and a bound on its size.

Channels cache what a platform told them about a person (a Slack profile, a Teams member's
e-mail) so that every message does not cost a platform call; an entry expires so that a changed
profile is seen again, and the cache never grows past its bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class ExpiringCache(Generic[K, V]):
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _entries: dict[K, tuple[float, V]] = field(default_factory=dict)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock():
            del self._entries[key]
            return None
        return value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def put(self, key: K, value: V, ttl_seconds: float) -> None:
        now = self.clock()
        if key not in self._entries and len(self._entries) >= self.max_entries:
            # Drop what expired; if everything is still fresh, the oldest entries go.
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = (now + ttl_seconds, value)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
