"""The store's names where they were before the ports were split by aggregate (`bot.store.ports`).

Kept so that code written against the one port module still imports; new code imports from
`bot.store.ports`.
"""

from bot.store.ports import (
    DirectoryCounts,
    InboxItem,
    NewInboxItem,
    NewOutboxMessage,
    StaleDialogError,
    StaleTicketError,
    Store,
    StoreError,
    StoreUnavailableError,
    TurnStart,
    UnknownTicketError,
)

__all__ = [
    "DirectoryCounts",
    "InboxItem",
    "NewInboxItem",
    "NewOutboxMessage",
    "StaleDialogError",
    "StaleTicketError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TurnStart",
    "UnknownTicketError",
]
