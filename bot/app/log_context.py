"""What a log line may say about the work it belongs to: the request id, the channel, the
conversation and the ticket number, where known (`CAREDESK_LOG_FORMAT=json` writes them as
fields; adapters/server/observability.py). Never a message's text, a token or a secret."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator, Mapping

_FIELDS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("caredesk_log_fields", default=None)


def current() -> Mapping[str, str]:
    return _FIELDS.get() or {}


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Add `fields` (those not None) to the log lines of the work inside."""
    token = _FIELDS.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def add(**fields: str | None) -> None:
    """Add `fields` to the log lines from here to the end of the current `bound` block."""
    _FIELDS.set({**current(), **{k: v for k, v in fields.items() if v is not None}})
