"""Who is who: companies, customer contacts, staff, and where each person was last seen
(conversation references, for proactive messages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from bot.domain.oncall import Shift
from bot.domain.model import Binding, Company, CustomerContact, Directory, StaffMember, StaffRole


@dataclass(frozen=True)
class DirectoryCounts:
    companies: int
    contacts: int
    staff: int


class DirectoryStore(Protocol):
    """The directory (replaced as a whole from its file) and the conversation references."""

    async def replace_directory(self, directory: Directory) -> DirectoryCounts:
        """Make the stored directory equal to `directory` (idempotent; e-mails compared case-insensitively)."""

    async def bind_tenant(self, binding: Binding, now: datetime) -> bool:
        """Bind a workspace or tenant to a company or the service desk (kept across directory
        loads); False when it was bound so already."""

    async def unbind_tenant(self, binding: Binding) -> bool:
        """Undo a binding (the file's too, until the file is loaded again); False when there was none."""

    async def tenant_parties(self, channel: str, tenant: str) -> frozenset[str]:
        """Who a workspace or tenant is bound to: `Binding.party_key`s ("" the service desk); empty
        when it is bound to nobody."""

    async def list_bindings(self, company: str | None = None, *, service_desk: bool = False) -> Sequence[Binding]:
        """Every binding, or a company's (by name, case-insensitively), or the service desk's."""

    async def get_rota(self) -> tuple[Shift, ...]:
        """The on-call rota as loaded with the directory, in the file's order (weekly shifts, then
        overrides; a later override wins)."""

    async def find_contact(self, email: str) -> CustomerContact | None: ...

    async def find_staff(self, email: str) -> StaffMember | None: ...

    async def get_company(self, name: str) -> Company | None:
        """Look a company up by name, case-insensitively."""

    async def find_person(self, email: str) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
        """Who this e-mail is, read at once (every turn needs it): the customer contact, the staff
        member and the contact's company, each None when there is none."""

    async def list_companies(self) -> Sequence[Company]: ...

    async def list_staff(self, role: StaffRole | None = None, level: int | None = None) -> Sequence[StaffMember]: ...

    async def save_conversation_ref(
        self, channel: str, user_key: str, reference: Mapping[str, Any], now: datetime, email: str | None = None
    ) -> None: ...

    async def get_conversation_ref(self, channel: str, user_key: str) -> Mapping[str, Any] | None: ...

    async def find_conversation_refs_by_email(self, email: str) -> Sequence[tuple[str, str, Mapping[str, Any]]]:
        """(channel, user_key, reference) of every place the person with this e-mail was seen."""
