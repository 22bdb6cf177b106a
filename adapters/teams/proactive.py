"""Proactive messages: CareDesk writes to a Teams user (or conversation) on its own initiative,
through the conversation reference stored when the bot last saw them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Union

from adapters.shared import references
from adapters.teams.channel import CHANNEL, response_message
from adapters.teams.refresh import with_refreshes
from adapters.teams.transport import DeliveryError, TeamsTransport, TurnIO
from bot.app.desk import Desk
from bot.i18n import normalize_language
from bot.protocol.replies import Reply, Response

log = logging.getLogger("caredesk.teams.proactive")

ProactiveMessage = Union[Response, Sequence[Reply]]


class ProactiveDeliveryError(DeliveryError):
    """The recipient is known but the Bot Framework connector failed: retry later."""


async def send_proactive(desk: Desk, user_key_or_email: str, message: ProactiveMessage, *,
                         transport: TeamsTransport) -> bool:
    """Send replies (or a core Response) to a Teams user or conversation as one Adaptive Card.

    Returns True once sent, False (logged) when the bot has never seen that user or
    conversation; raises ProactiveDeliveryError when the connector fails (the caller retries).
    """
    # A user key (AAD object id, Teams user id, "conversation:<id>") or an e-mail (their personal chat).
    reference = await references.find_reference(desk, CHANNEL, user_key_or_email)
    if reference is None:
        log.warning("no Teams conversation is known for %s: the bot never talked with them", user_key_or_email)
        return False
    if isinstance(message, Response):
        replies, lang = tuple(message.replies), message.lang
    else:
        replies, lang = tuple(message), desk.settings.default_language
        locale = reference.get("locale") if isinstance(reference, Mapping) else None
        if locale:
            lang = normalize_language(str(locale), lang)
    if not replies:
        return True
    # A page (an acknowledge button) refreshes for its recipient once someone takes the ticket.
    user = reference.get("user") if isinstance(reference, Mapping) else None
    activity = with_refreshes(response_message(replies, lang), str(user.get("id") or "") if isinstance(user, Mapping) else None)
    # To a person of another tenant (a customer's), the message carries their tenant.
    conversation = reference.get("conversation") if isinstance(reference, Mapping) else None
    tenant = conversation.get("tenantId") if isinstance(conversation, Mapping) else None
    if tenant:
        activity = {**activity, "channelData": {**dict(activity.get("channelData") or {}), "tenant": {"id": str(tenant)}}}

    async def deliver(io: TurnIO) -> None:
        await io.send([activity])

    try:
        await transport.continue_conversation(reference, deliver)
    except DeliveryError as exc:
        log.error("proactive Teams message to %s failed: %s", user_key_or_email, exc)
        raise ProactiveDeliveryError(str(exc)) from exc
    log.info("proactive Teams message sent to %s", user_key_or_email)
    return True
