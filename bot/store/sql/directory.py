"""The directory on SQL: tables `companies`, `contacts`, `staff`, `oncall_shifts`, `company_bindings`,
`conversation_refs`.

Transactions: replace_directory deletes and rewrites the four directory tables in one, with the
file's bindings (a binding made by `caredesk companies bind` stays); a
conversation reference is one upsert; the rest are reads. `_person` reads who an e-mail is
inside a caller's transaction (the turn-start read).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping, Sequence

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.oncall import Shift
from bot.domain.model import Binding, Company, CustomerContact, Directory, StaffMember, StaffRole
from bot.store import models as m
from bot.store.ports import DirectoryCounts
from bot.store.sql.base import SqlBase, _aware, _email_key, to_json, _value


def company_from(row: Any, prefix: str = "") -> Company:
    """A company from a row of `companies`, or from columns labelled `prefix` + name (a join)."""
    overrides = getattr(row, prefix + "multiplier_overrides") or {}
    return Company(
        name=getattr(row, prefix + "name"),
        support_module=bool(getattr(row, prefix + "support_module")),
        sla_plan=getattr(row, prefix + "sla_plan"),
        multiplier_overrides={k: Decimal(str(v)) for k, v in overrides.items()},
    )


def contact_from(row: Any, prefix: str = "") -> CustomerContact:
    """A contact from a row of `contacts` (or labelled columns, as `company_from`)."""
    return CustomerContact(
        email=getattr(row, prefix + "email"),
        name=getattr(row, prefix + "name"),
        company=getattr(row, prefix + "company_name"),
        phone=getattr(row, prefix + "phone"),
        language=getattr(row, prefix + "language"),
        sla_named=bool(getattr(row, prefix + "sla_named")),
    )


def staff_from(row: Any, prefix: str = "") -> StaffMember:
    """A staff member from a row of `staff` (or labelled columns, as `company_from`)."""
    return StaffMember(
        email=getattr(row, prefix + "email"),
        name=getattr(row, prefix + "name"),
        role=StaffRole(getattr(row, prefix + "role")),
        phone=getattr(row, prefix + "phone"),
        language=getattr(row, prefix + "language"),
        level=getattr(row, prefix + "level"),
    )


def _check_directory(directory: Directory) -> None:
    names: dict[str, str] = {}
    for company in directory.companies:
        key = company.name.strip().lower()
        if not key:
            raise ValueError("a company has an empty name")
        if key in names:
            raise ValueError(f"company {company.name!r} appears twice in the directory")
        names[key] = company.name
    seen: set[str] = set()
    for contact in directory.contacts:
        key = _email_key(contact.email)
        if key in seen:
            raise ValueError(f"contact {contact.email!r} appears twice in the directory")
        seen.add(key)
        if contact.company.strip().lower() not in names:
            raise ValueError(
                f"contact {contact.email!r} ({contact.name}) names company {contact.company!r}, "
                "which is not in the directory"
            )
    seen = set()
    for member in directory.staff:
        key = _email_key(member.email)
        if key in seen:
            raise ValueError(f"staff member {member.email!r} appears twice in the directory")
        seen.add(key)
    for shift in directory.rota:
        for email in (shift.person, shift.backup):
            if email is not None and _email_key(email) not in seen:
                raise ValueError(f"the on-call rota names {email!r}, who is not staff in the directory")


# Built once, like dialogs.DIALOG_BY_KEY: every turn reads the person, and SQLAlchemy builds and
# keys a statement object each time it is made anew.
CONTACT_BY_EMAIL_KEY = select(m.contacts).where(m.contacts.c.email_key == bindparam("email_key"))
STAFF_BY_EMAIL_KEY = select(m.staff).where(m.staff.c.email_key == bindparam("email_key"))
COMPANY_BY_NAME_KEY = select(m.companies).where(m.companies.c.name_key == bindparam("name_key"))


async def _person(conn: AsyncConnection, email: str
                  ) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
    key = _email_key(email)
    contact_row = (await conn.execute(CONTACT_BY_EMAIL_KEY, {"email_key": key})).first()
    staff_row = (await conn.execute(STAFF_BY_EMAIL_KEY, {"email_key": key})).first()
    contact = contact_from(contact_row) if contact_row else None
    company_row = None
    if contact is not None:
        company_row = (await conn.execute(COMPANY_BY_NAME_KEY, {"name_key": contact.company.strip().lower()})).first()
    return contact, staff_from(staff_row) if staff_row else None, company_from(company_row) if company_row else None


PARTIES_OF_TENANT = select(m.company_bindings.c.party_key).where(
    m.company_bindings.c.channel == bindparam("channel"), m.company_bindings.c.tenant == bindparam("tenant"))


def _binding_row(binding: Binding, source: str, now: datetime) -> dict[str, Any]:
    return {"channel": binding.channel, "tenant": binding.tenant.strip(), "party_key": binding.party_key,
            "company_name": binding.company.strip() if binding.company else None, "source": source, "bound_at": now}


class SqlDirectory(SqlBase):
    """`DirectoryStore` on SQL."""

    async def replace_directory(self, directory: Directory) -> DirectoryCounts:
        _check_directory(directory)
        canonical = {c.name.strip().lower(): c.name.strip() for c in directory.companies}
        company_rows = [
            {
                "name": c.name.strip(),
                "name_key": c.name.strip().lower(),
                "support_module": bool(c.support_module),
                "sla_plan": c.sla_plan,
                "multiplier_overrides": {k: str(Decimal(str(v))) for k, v in c.multiplier_overrides.items()},
            }
            for c in directory.companies
        ]
        contact_rows = [
            {
                "email_key": _email_key(c.email),
                "email": c.email.strip(),
                "name": c.name,
                "company_name": canonical[c.company.strip().lower()],
                "phone": c.phone,
                "language": c.language,
                "sla_named": bool(c.sla_named),
            }
            for c in directory.contacts
        ]
        staff_rows = [
            {
                "email_key": _email_key(s.email),
                "email": s.email.strip(),
                "name": s.name,
                "role": StaffRole(_value(s.role)).value,
                "phone": s.phone,
                "language": s.language,
                "level": s.level,
            }
            for s in directory.staff
        ]
        rota_rows = [
            {"weekday": s.weekday, "start": s.start, "end": s.end, "person": s.person.strip(),
             "backup": s.backup.strip() if s.backup else None}
            for s in directory.rota
        ]
        b = m.company_bindings
        now = datetime.now(timezone.utc)
        binding_rows = [_binding_row(binding, "file", now) for binding in directory.bindings]
        async with self._tx() as conn:
            await conn.execute(delete(b).where(b.c.source == "file"))
            if binding_rows:
                # One bound by command already: kept as it is.
                await conn.execute(self._upsert(b).values(binding_rows).on_conflict_do_nothing(
                    index_elements=[b.c.channel, b.c.tenant, b.c.party_key]))
            await conn.execute(delete(m.contacts))
            await conn.execute(delete(m.staff))
            await conn.execute(delete(m.companies))
            await conn.execute(delete(m.oncall_shifts))
            for table, rows in ((m.companies, company_rows), (m.contacts, contact_rows), (m.staff, staff_rows),
                                (m.oncall_shifts, rota_rows)):
                if rows:
                    await conn.execute(insert(table), rows)
        return DirectoryCounts(len(company_rows), len(contact_rows), len(staff_rows))

    async def bind_tenant(self, binding: Binding, now: datetime) -> bool:
        _aware(now)
        b = m.company_bindings
        stmt = self._upsert(b).values(_binding_row(binding, "command", now))
        async with self._tx() as conn:
            # Bound by the file before: now the command's, so that a later load keeps it.
            result = await conn.execute(stmt.on_conflict_do_update(
                index_elements=[b.c.channel, b.c.tenant, b.c.party_key], set_={"source": "command"},
                where=b.c.source != "command"))
        return bool(result.rowcount)

    async def unbind_tenant(self, binding: Binding) -> bool:
        b = m.company_bindings
        async with self._tx() as conn:
            result = await conn.execute(delete(b).where(b.c.channel == binding.channel, b.c.tenant == binding.tenant,
                                                        b.c.party_key == binding.party_key))
        return bool(result.rowcount)

    async def tenant_parties(self, channel: str, tenant: str) -> frozenset[str]:
        async with self._tx(read_only=True) as conn:
            keys = (await conn.execute(PARTIES_OF_TENANT, {"channel": channel, "tenant": tenant})).scalars().all()
        return frozenset(keys)

    async def list_bindings(self, company: str | None = None, *, service_desk: bool = False) -> Sequence[Binding]:
        b = m.company_bindings
        query = select(b.c.channel, b.c.tenant, b.c.company_name).order_by(b.c.party_key, b.c.channel, b.c.tenant)
        if company is not None:
            query = query.where(b.c.party_key == company.strip().lower())
        elif service_desk:
            query = query.where(b.c.party_key == "")
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [Binding(row.channel, row.tenant, row.company_name) for row in rows]

    async def get_rota(self) -> tuple[Shift, ...]:
        r = m.oncall_shifts
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(select(r).order_by(r.c.id))).all()
        return tuple(Shift(row.weekday, row.start, row.end, row.person, row.backup) for row in rows)

    async def find_contact(self, email: str) -> CustomerContact | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(select(m.contacts).where(m.contacts.c.email_key == _email_key(email)))).first()
        return contact_from(row) if row else None

    async def find_staff(self, email: str) -> StaffMember | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(select(m.staff).where(m.staff.c.email_key == _email_key(email)))).first()
        return staff_from(row) if row else None

    async def get_company(self, name: str) -> Company | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(m.companies).where(m.companies.c.name_key == name.strip().lower()))
            ).first()
        return company_from(row) if row else None

    async def find_person(self, email: str) -> tuple[CustomerContact | None, StaffMember | None, Company | None]:
        async with self._tx(read_only=True) as conn:
            return await _person(conn, email)

    async def list_companies(self) -> Sequence[Company]:
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(select(m.companies).order_by(m.companies.c.name_key))).all()
        return [company_from(r) for r in rows]

    async def list_staff(self, role: StaffRole | None = None, level: int | None = None) -> Sequence[StaffMember]:
        s = m.staff
        query = select(s).order_by(s.c.level.asc().nulls_last(), s.c.name, s.c.email_key)
        if role is not None:
            query = query.where(s.c.role == StaffRole(_value(role)).value)
        if level is not None:
            query = query.where(s.c.level == level)
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [staff_from(r) for r in rows]

    async def save_conversation_ref(
        self, channel: str, user_key: str, reference: Mapping[str, Any], now: datetime, email: str | None = None
    ) -> None:
        _aware(now)
        r = m.conversation_refs
        stmt = self._upsert(r).values(
            channel=channel,
            user_key=user_key,
            email_key=_email_key(email) if email else None,
            reference=to_json(dict(reference)),
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.c.channel, r.c.user_key],
            set_={
                "reference": stmt.excluded.reference,
                "updated_at": stmt.excluded.updated_at,
                # a later save without the e-mail keeps the one already known
                "email_key": func.coalesce(stmt.excluded.email_key, r.c.email_key),
            },
        )
        async with self._tx() as conn:
            await conn.execute(stmt)

    async def get_conversation_ref(self, channel: str, user_key: str) -> Mapping[str, Any] | None:
        r = m.conversation_refs
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(r.c.reference).where(r.c.channel == channel, r.c.user_key == user_key))
            ).first()
        return row.reference if row else None

    async def find_conversation_refs_by_email(self, email: str) -> Sequence[tuple[str, str, Mapping[str, Any]]]:
        r = m.conversation_refs
        query = (
            select(r.c.channel, r.c.user_key, r.c.reference)
            .where(r.c.email_key == _email_key(email))
            .order_by(r.c.updated_at.desc(), r.c.channel, r.c.user_key)
        )
        async with self._tx(read_only=True) as conn:
            rows = (await conn.execute(query)).all()
        return [(row.channel, row.user_key, row.reference) for row in rows]
