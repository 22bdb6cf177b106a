"""The outbox's channels: reach a person by e-mail on Teams (a stored conversation reference)
or Slack (their DM), trying first the channel the message names (the one the customer used)."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Mapping

from bot.app.desk import Desk
from bot.domain.model import OutboxMessage
from bot.app.outbox import Delivery, Undeliverable
from bot.protocol.replies import Response

log = logging.getLogger("caredesk.delivery")

# A channel's sender: True once sent, False when the person cannot be reached there; raises
# DeliveryFailed when the platform fails for now. Each channel's `send_to_person` is one.
Sender = Callable[[Desk, str, Response], Awaitable[bool]]


class ChannelDelivery(Delivery):
    def __init__(self, desk: Desk, senders: Mapping[str, Sender]):
        self.desk = desk
        self.senders = dict(senders)

    async def deliver(self, message: OutboxMessage, response: Response) -> None:
        preferred = str(message.payload.get("channel") or "")
        order = sorted(self.senders, key=lambda name: name != preferred)
        for name in order:
            if await self.senders[name](self.desk, message.recipient, response):
                return
        raise Undeliverable(f"{message.recipient} was never seen on {', '.join(order) or 'any channel'}")
