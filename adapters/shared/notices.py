"""Answers owed to a person: an answer the platform failed to deliver after the turn was done is
remembered in the store (`NoticeStore`) and told with the next message that reaches the person.
In the store, not in a process's memory: the process that tells it need not be the one whose
delivery failed, and a restart forgets nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.app.desk import Desk
from bot.i18n import translate
from bot.protocol.replies import Reply, Response, Text, Tone

log = logging.getLogger("caredesk.notices")


@dataclass(frozen=True)
class Owed:
    """What to tell a person before the next message, and the newest notice it covers."""

    replies: tuple[Reply, ...]
    up_to: int | None  # None: nothing owed, nothing to clear


NOTHING_OWED = Owed((), None)


class OwedNotices:
    """A channel's notices of lost answers, per person (the channel's key of a person).

    `lost_key` is the text of a lost answer; `lost_ticket_key` (with `number`) that of a lost
    answer that named a ticket, one per distinct number, so that the person keeps the number.
    Reading or writing them never stops an answer: a failure is logged and the answer goes on."""

    def __init__(self, desk: Desk, channel: str, *, lost_key: str, lost_ticket_key: str) -> None:
        self.desk = desk
        self.channel = channel
        self.lost_key = lost_key
        self.lost_ticket_key = lost_ticket_key

    async def remember(self, person: str, response: Response) -> None:
        """`response` could not be delivered to `person`."""
        try:
            await self.desk.store.add_notice(self.channel, person, response.ticket_number, self.desk.now())
        except Exception:
            log.exception("could not remember a lost %s answer to %s", self.channel, person)

    async def owed(self, person: str, lang: str) -> Owed:
        """The warnings to put before the next message to `person`, in `lang`."""
        try:
            notices = await self.desk.store.pending_notices(self.channel, person)
        except Exception:
            log.exception("could not read the %s notices owed to %s", self.channel, person)
            return NOTHING_OWED
        if not notices:
            return NOTHING_OWED
        numbers = [number for number in dict.fromkeys(n.ticket_number for n in notices) if number]
        if numbers:
            replies = tuple(Text(translate(lang, self.lost_ticket_key, number=number), Tone.WARNING)
                            for number in numbers)
        else:
            replies = (Text(translate(lang, self.lost_key), Tone.WARNING),)
        return Owed(replies, notices[-1].id)

    async def told(self, person: str, owed: Owed) -> None:
        """The message carrying `owed` was delivered: forget those notices (one added since, by
        another process, stays for the next message)."""
        if owed.up_to is None:
            return
        try:
            await self.desk.store.clear_notices(self.channel, person, owed.up_to)
        except Exception:
            log.exception("could not clear the %s notices told to %s", self.channel, person)
