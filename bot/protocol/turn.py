"""One inbound turn: what a person said or clicked, on which channel, in which conversation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from bot.domain.model import DialogKey


def person_key(tenant: str, user: str) -> str:
    """A person's key in the store for what a channel keeps per person (conversation
    references, notices of lost answers): their workspace or tenant and their user id."""
    return f"{tenant}:{user}"


@dataclass(frozen=True)
class UserIdentity:
    id: str  # the platform's user id (Slack U…, Teams 29:…, console: the e-mail)
    email: str | None = None
    display_name: str | None = None
    locale: str | None = None  # as the platform gives it: "fr-BE", "nl_NL", …
    phone: str | None = None


@dataclass(frozen=True)
class Turn:
    channel: str  # "slack", "msteams", "console"
    tenant: str  # Slack team id, Teams tenant id, "local"
    conversation: str  # channel/DM/chat id
    user: UserIdentity
    text: str | None = None
    # A click or a submitted form: the core action's wire string, as the platform brought it back
    # (`bot.protocol.ids.parse_action` reads it; it may be forged), and the submitted values.
    action: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)
    # The platform's id for this delivery; a redelivery with the same id is processed once.
    event_id: str | None = None
    # Where the channel posts the answer (its own address: a Slack channel and thread). Given,
    # with an `event_id`, the answer is written to the outbox in the transaction that saves the
    # turn, so that it is delivered even if the process dies before posting it.
    reply_to: Mapping[str, str] | None = None
    # The workspace or tenant the person belongs to (Slack: their own team id, also in a channel
    # shared by Slack Connect; Teams: the activity's tenant id), which vouches for the e-mail on
    # their profile: the directory trusts it only as far as that workspace or tenant is bound to
    # the person's company (`bot.app.identity`). None: the channel itself proved who the person
    # is (the console on the operator's machine; a portal token).
    home_tenant: str | None = None

    @property
    def person(self) -> str:
        """`person_key` of whoever is talking."""
        return person_key(self.tenant, self.user.id)

    @property
    def dialog_key(self) -> DialogKey:
        return DialogKey(self.channel, self.tenant, self.conversation, self.user.id)
