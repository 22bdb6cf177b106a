"""Where a person can be reached later: the conversation references channels save as people talk,
and the lookup the outbox makes when CareDesk speaks first (an escalation ping, a ticket update)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from bot.app.desk import Desk

log = logging.getLogger("caredesk.references")


class ReferenceBook:
    """Saves a channel's conversation references to the store, once per change: a person who
    writes ten messages is one write, not ten (what was saved is remembered in this process only
    to skip a write; the store stays the truth, so any process can reach anybody)."""

    def __init__(self, desk: Desk, channel: str, *, max_remembered: int = 10_000) -> None:
        self.desk = desk
        self.channel = channel
        self.max_remembered = max_remembered
        self._saved: dict[str, str] = {}

    async def save(self, user_key: str, reference: Mapping[str, Any], email: str | None) -> None:
        """Store the reference; a failure is logged and never stops the turn that carried it."""
        fingerprint = json.dumps([reference, email], sort_keys=True, default=str)
        if self._saved.get(user_key) == fingerprint:
            return
        try:
            await self.desk.store.save_conversation_ref(self.channel, user_key, reference, self.desk.now(),
                                                        email=email)
        except Exception:
            log.exception("could not store the %s conversation reference of %s", self.channel, user_key)
            return
        if len(self._saved) >= self.max_remembered:
            self._saved.clear()
        self._saved[user_key] = fingerprint

    async def find(self, user_key_or_email: str) -> Mapping[str, Any] | None:
        """The stored reference of a user key, or of an e-mail (the person's own chat with the bot)."""
        return await find_reference(self.desk, self.channel, user_key_or_email)


async def find_reference(desk: Desk, channel: str, user_key_or_email: str) -> Mapping[str, Any] | None:
    key = user_key_or_email.strip()
    if not key:
        return None
    if "@" in key and not key.startswith("conversation:"):
        found = [ref for ref_channel, _, ref in await desk.store.find_conversation_refs_by_email(key)
                 if ref_channel == channel]
        return found[0] if found else None
    return await desk.store.get_conversation_ref(channel, key)
