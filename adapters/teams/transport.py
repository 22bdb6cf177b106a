"""The small interface between CareDesk's Teams channel and the Bot Framework SDK.

Everything the channel needs from the platform fits here: authenticate an inbound request,
run a turn (send activities, update an activity, look a member up), and continue a stored
conversation for a proactive message. Activities cross this interface as plain Bot Framework
JSON (camelCase dicts), so the channel logic (`channel.py`), the cards and the core never see
an SDK type. `botbuilder_transport.py` implements it with botbuilder (CloudAdapter); a
Microsoft 365 Agents SDK implementation can replace it without touching anything else.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class AuthError(Exception):
    """The request is not from the Bot Framework (or not for this bot): answer 401."""


class AuthUnavailable(Exception):
    """The signing keys could not be fetched: answer 503, the channel retries later."""


class DeliveryError(Exception):
    """The Bot Framework connector refused or failed an outbound call."""


@dataclass(frozen=True)
class InvokeReply:
    """The HTTP answer to an `invoke` activity (status and JSON body)."""

    status: int
    body: Any = None


class TurnIO(abc.ABC):
    """What a handler of one inbound activity may do."""

    activity: Mapping[str, Any]  # the inbound activity, as Bot Framework JSON

    @abc.abstractmethod
    async def send(self, activities: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """Send activities into the activity's conversation (as replies); return their ids."""

    @abc.abstractmethod
    async def update(self, activity_id: str, activity: Mapping[str, Any]) -> None:
        """Replace a message the bot sent earlier (a used card)."""

    @abc.abstractmethod
    async def member(self, user_id: str) -> Mapping[str, Any]:
        """The Teams member (TeamsChannelAccount JSON: email, userPrincipalName, …)."""


TurnHandler = Callable[[TurnIO], Awaitable["InvokeReply | None"]]


class TeamsTransport(abc.ABC):
    @abc.abstractmethod
    async def authenticate(self, auth_header: str | None, activity: Mapping[str, Any]) -> Any:
        """Check the request's token; return an opaque ticket for `run`. Raise AuthError /
        AuthUnavailable."""

    @abc.abstractmethod
    def readable(self, activity: Mapping[str, Any]) -> None:
        """Raise `MalformedActivity` (adapters.teams.activities) when the SDK cannot read this
        authenticated activity."""

    @abc.abstractmethod
    async def vouch(self, auth_header: str | None) -> None:
        """Check the token alone (signature, issuer, audience, expiry), before the body is read;
        raise AuthError / AuthUnavailable. `authenticate` then binds it to the activity."""

    @abc.abstractmethod
    async def run(self, ticket: Any, activity: Mapping[str, Any], handler: TurnHandler) -> InvokeReply | None:
        """Run `handler` for an authenticated activity; return the invoke response, if any."""

    @abc.abstractmethod
    async def continue_conversation(self, reference: Mapping[str, Any], handler: TurnHandler) -> None:
        """Run `handler` in a stored conversation (a proactive message). Raise DeliveryError."""

    async def close(self) -> None:  # noqa: B027 - optional: most transports hold nothing to close
        """Release what the transport keeps open between turns (HTTP sessions)."""
