"""The customer-portal chat: a page the portal embeds (Microsoft's Web Chat, served by CareDesk)
speaking the part of Direct Line 3.0 it needs to CareDesk itself (docs/portal.md)."""

from adapters.portal.channel import PortalChannel
from adapters.portal.config import PortalConfig
from adapters.portal.web import Portal, mount

__all__ = ["Portal", "PortalChannel", "PortalConfig", "mount"]
