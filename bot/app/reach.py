"""Whether a message the bot sends on its own initiative can reach a person, said to the staff
whose action caused it ("the requester has been told" only when it is true).

It is the outbox's own rule (bot/app/outbox.py, adapters/server/delivery.py): pushed on the
channel a person was last seen on (a Slack or Teams conversation reference, their portal chat);
else, for a person of the directory, kept and shown the next time they talk to CareDesk ("While
you were away"); else nobody can tell them, and the staff member must phone or mail them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Protocol

from bot.store.ports import DirectoryStore, PortalStore


class How(enum.Enum):
    PUSHED = "pushed"  # on `channel`, now
    KEPT = "kept"  # the next time they use CareDesk
    NONE = "none"  # no way at all: phone or mail them


@dataclass(frozen=True)
class Reach:
    how: How
    channel: str | None = None  # where it is pushed

    def said(self, t: Callable[..., str], name: str) -> str:
        """What staff are told, in their language (`t`: their translator)."""
        if self.how is How.PUSHED:
            channel = self.channel or ""
            shown = t(f"reach.channel.{channel}") if channel in KNOWN_CHANNELS else channel.capitalize()
            return t("reach.pushed", name=name, channel=shown)
        return t(f"reach.{self.how.value}", name=name)


# The channels with a name of their own in the three languages (reach.channel.*).
KNOWN_CHANNELS = frozenset({"slack", "teams", "msteams", "portal"})


class ReachStore(DirectoryStore, PortalStore, Protocol):
    """What finding a person's reach needs of the store."""


async def reach_of(store: ReachStore, email: str) -> Reach:
    refs = await store.find_conversation_refs_by_email(email)
    if refs:
        return Reach(How.PUSHED, refs[0][0])  # newest first: where they were seen last
    if await store.portal_conversation_of(email) is not None:
        return Reach(How.PUSHED, "portal")
    return Reach(How.KEPT) if await in_directory(store, email) else Reach(How.NONE)


async def in_directory(store: DirectoryStore, email: str) -> bool:
    """Whether someone no channel can push to may still talk to CareDesk and see what was kept
    for them: a person of the directory (the console is theirs). The outbox keeps their
    messages by this very rule (bot/app/outbox.py)."""
    contact, staff, _ = await store.find_person(email)
    return contact is not None or staff is not None
