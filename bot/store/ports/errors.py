"""The store's own errors, shared by its ports."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's own errors."""


class StaleDialogError(StoreError):
    """Someone else saved this dialog since it was read (optimistic concurrency, like e-tags)."""


class UnknownTicketError(StoreError):
    pass


class StaleTicketError(StoreError):
    """The ticket changed since it was read (another agent moved it first)."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached; the caller should ask the platform to retry later."""
