"""Who is who: customer companies and their contacts, agents and managers.

The operator keeps the directory in a YAML or TOML file and loads it into the store with
`caredesk directory load FILE`; loading the same file twice changes nothing.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

import yaml

from bot.domain.config import LANGUAGES, ConfigError, is_email, parse_multiplier_overrides
from bot.domain.oncall import RotaError, parse_rota
from bot.domain.model import (SLACK_WORKSPACE, TEAMS_TENANT, Binding, Company, CustomerContact, Directory,
                              StaffMember, StaffRole)


class DirectoryError(ValueError):
    """The directory file is invalid; the message names the entry and the field."""


def read_directory_file(path: str | Path) -> Directory:
    path = Path(path)
    if not path.exists():
        raise DirectoryError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise DirectoryError(f"{path}: expected a .yaml, .yml or .toml file")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise DirectoryError(f"{path}: cannot be parsed ({exc})") from None
    return parse_directory(data or {}, source=str(path))


def parse_directory(data: Mapping[str, Any], source: str = "directory") -> Directory:
    if not isinstance(data, Mapping):
        raise DirectoryError(f"{source}: expected a mapping with companies, agents and managers")
    unknown = set(data) - {"companies", "agents", "managers", "oncall", "service_desk"}
    if unknown:
        raise DirectoryError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")

    companies: list[Company] = []
    contacts: list[CustomerContact] = []
    staff: list[StaffMember] = []
    bindings: list[Binding] = []
    seen_emails: dict[str, str] = {}
    seen_companies: set[str] = set()

    def claim_email(where: str, email: str) -> None:
        key = email.lower()
        if key in seen_emails:
            raise DirectoryError(f"{where}.email: {email} is already used by {seen_emails[key]}")
        seen_emails[key] = where

    for i, raw in enumerate(_list(data, "companies", source)):
        where = f"{source}: companies[{i}]"
        entry = _mapping(raw, where)
        _only(entry, where, {"name", "support_module", "sla_plan", "multiplier_overrides", "contacts",
                             *TENANT_FIELDS})
        name = _text(entry, "name", where)
        bindings.extend(_bindings(entry, where, name))
        if name.lower() in seen_companies:
            raise DirectoryError(f"{where}.name: company {name!r} appears twice")
        seen_companies.add(name.lower())
        try:
            overrides = parse_multiplier_overrides(f"{where}.multiplier_overrides.", entry.get("multiplier_overrides"))
        except ConfigError as exc:
            raise DirectoryError(f"{exc.key}: {exc.problem}") from None
        companies.append(
            Company(
                name=name,
                support_module=_flag(entry, "support_module", where),
                sla_plan=_text(entry, "sla_plan", where, default="standard"),
                multiplier_overrides=overrides,
            )
        )
        for j, raw_contact in enumerate(entry.get("contacts") or []):
            cwhere = f"{where}.contacts[{j}]"
            c = _mapping(raw_contact, cwhere)
            _only(c, cwhere, {"name", "email", "phone", "language", "sla_named"})
            email = _email(c, cwhere)
            claim_email(cwhere, email)
            contacts.append(
                CustomerContact(
                    email=email,
                    name=_text(c, "name", cwhere),
                    company=name,
                    phone=_text(c, "phone", cwhere, default=None),
                    language=_language(c, cwhere),
                    sla_named=_flag(c, "sla_named", cwhere),
                )
            )

    for section, role in (("agents", StaffRole.AGENT), ("managers", StaffRole.MANAGER)):
        for i, raw in enumerate(_list(data, section, source)):
            where = f"{source}: {section}[{i}]"
            entry = _mapping(raw, where)
            allowed = {"name", "email", "phone", "language"} | ({"level", "role"} if role is StaffRole.MANAGER else set())
            _only(entry, where, allowed)
            email = _email(entry, where)
            claim_email(where, email)
            level = None
            if role is StaffRole.MANAGER:
                level = entry.get("level")
                if isinstance(level, bool) or not isinstance(level, int) or level < 1:
                    raise DirectoryError(f"{where}.level: expected an escalation level 1, 2, 3…, got {level!r}")
            staff.append(
                StaffMember(
                    email=email,
                    name=_text(entry, "name", where),
                    role=role,
                    phone=_text(entry, "phone", where, default=None),
                    language=_language(entry, where),
                    level=level,
                )
            )
    if data.get("service_desk") is not None:
        desk = _mapping(data["service_desk"], f"{source}: service_desk")
        _only(desk, f"{source}: service_desk", set(TENANT_FIELDS))
        bindings.extend(_bindings(desk, f"{source}: service_desk", None))
    try:
        rota = parse_rota(data.get("oncall"), f"{source}: oncall", {s.email.lower(): s.email for s in staff})
    except RotaError as exc:
        raise DirectoryError(str(exc)) from None
    return Directory(tuple(companies), tuple(contacts), tuple(staff), rota, tuple(dict.fromkeys(bindings)))


# A company's (or the service desk's) Slack workspaces and Microsoft 365 tenants in the file.
TENANT_FIELDS = {"slack_teams": SLACK_WORKSPACE, "teams_tenants": TEAMS_TENANT}
SLACK_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,30}$")
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def tenant_id_problem(channel: str, tenant: str) -> str | None:
    """Why `tenant` is no Slack team id (T…, or E… for an Enterprise Grid) or Microsoft tenant id."""
    if channel == SLACK_WORKSPACE:
        return None if SLACK_TEAM_ID.match(tenant) else f"not a Slack team id (T… in capitals): {tenant!r}"
    return None if TENANT_ID.match(tenant) else f"not a Microsoft 365 tenant id: {tenant!r}"


def _bindings(entry: Mapping[str, Any], where: str, company: str | None) -> list[Binding]:
    found = []
    for key, channel in TENANT_FIELDS.items():
        values = entry.get(key) or []
        if not isinstance(values, list):
            raise DirectoryError(f"{where}.{key}: expected a list of ids")
        for value in values:
            tenant = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
            problem = tenant_id_problem(channel, tenant)
            if problem:
                raise DirectoryError(f"{where}.{key}: {problem}")
            found.append(Binding(channel, tenant, company))
    return found


_MISSING = object()


def _list(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise DirectoryError(f"{source}: {key} must be a list")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DirectoryError(f"{where}: expected a mapping")
    return value


def _only(entry: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = set(entry) - allowed
    if unknown:
        raise DirectoryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")


def _text(entry: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> Any:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is _MISSING:
            raise DirectoryError(f"{where}.{key}: missing")
        return default
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise DirectoryError(f"{where}.{key}: expected a text, got {value!r}")
    return str(value).strip()


def _email(entry: Mapping[str, Any], where: str) -> str:
    email: str = _text(entry, "email", where)
    if not is_email(email):
        raise DirectoryError(f"{where}.email: not an e-mail address: {email!r}")
    return email


def _flag(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise DirectoryError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _language(entry: Mapping[str, Any], where: str) -> str | None:
    lang: str | None = _text(entry, "language", where, default=None)
    if lang is not None and lang not in LANGUAGES:
        raise DirectoryError(f"{where}.language: expected one of {', '.join(LANGUAGES)}, got {lang!r}")
    return lang
