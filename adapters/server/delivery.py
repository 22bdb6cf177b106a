"""The outbox's channels: reach a person by e-mail on Teams (a stored conversation reference)
or Slack (their DM), trying first the channel the message names (the one the customer used)."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Mapping

from bot.app.desk import Desk
from bot.domain.model import OutboxMessage
from bot.app.notifications import REPLY
from bot.app.outbox import Delivery, DeliveryFailed, Undeliverable
from bot.protocol.replies import Response

log = logging.getLogger("caredesk.delivery")

# A channel's sender: True once sent, False when the person cannot be reached there; raises
# DeliveryFailed when the platform fails for now. Each channel's `send_to_person` is one.
Sender = Callable[[Desk, str, Response], Awaitable[bool]]
# A channel's way to post a turn's durable reply where the turn said (`Turn.reply_to`); raises
# DeliveryFailed (for now) or Undeliverable.
Replier = Callable[[Desk, Mapping[str, Any], Response], Awaitable[None]]


class ChannelDelivery(Delivery):
    def __init__(self, desk: Desk, senders: Mapping[str, Sender], repliers: Mapping[str, Replier] | None = None):
        self.desk = desk
        self.senders = dict(senders)
        self.repliers = dict(repliers or {})

    async def deliver(self, message: OutboxMessage, response: Response) -> None:
        if message.kind == REPLY:
            # A reply goes back where the person wrote, on the channel they used, or nowhere.
            replier = self.repliers.get(str(message.payload.get("channel")))
            if replier is None:
                raise DeliveryFailed(f"no {message.payload.get('channel')} channel in this process")
            await replier(self.desk, message.payload.get("to") or {}, response)
            return
        preferred = str(message.payload.get("channel") or "")
        order = sorted(self.senders, key=lambda name: name != preferred)
        for name in order:
            if await self.senders[name](self.desk, message.recipient, response):
                return
        raise Undeliverable(f"{message.recipient} was never seen on {', '.join(order) or 'any channel'}")
