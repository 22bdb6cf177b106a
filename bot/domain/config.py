"""CareDesk settings: one frozen object, loaded from an optional TOML file and the environment.

Every figure of the service desk's rules page (rates, multipliers, office hours, holiday
country, contacts, escalation levels) is a setting whose default is the rules page's value.

The adapters' own sections (`[server]`, `[slack]`, `[teams]`) are carried here unread, as
read-only tables: each adapter parses and validates its section and its environment variables
itself (adapters/server/config.py, adapters/slack/config.py, adapters/teams/config.py), so the
core knows no transport and no server. Secrets are never read here: the channels take them from
the environment, and a file that carries one is refused so that it never lands in a repository
by accident.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from bot.domain.money import decimal_places

DEFAULT_CONFIG_FILE = "caredesk.toml"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./caredesk.db"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MULTIPLIER_KEYS = ("office_hours", "outside_office_hours", "saturday", "sunday", "public_holiday")
LANGUAGES = ("en", "fr", "nl")
# The adapters' sections of the file: carried unread in `Settings.adapter_tables`, parsed by
# the adapter of that name (adapters/server/config.py, adapters/slack/config.py,
# adapters/teams/config.py).
ADAPTER_TABLES = ("server", "slack", "teams", "metrics", "portal")
# A top-level key with one of these endings names a credential (SLACK_BOT_TOKEN,
# MICROSOFT_APP_PASSWORD, ...): refused as a secret rather than as an unknown key.
SECRET_KEY_ENDINGS = ("_token", "_secret", "_password")
SECRETS_MESSAGE = "secrets are read from the environment only, never from the file"


class ConfigError(ValueError):
    """Invalid configuration; the message always names the offending key."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"configuration key '{key}': {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Multipliers:
    office_hours: Decimal = Decimal("1.0")
    outside_office_hours: Decimal = Decimal("1.5")
    saturday: Decimal = Decimal("1.5")
    sunday: Decimal = Decimal("2.0")
    public_holiday: Decimal = Decimal("2.0")

    def with_overrides(self, overrides: Mapping[str, Decimal] | None) -> "Multipliers":
        """A customer's written agreement (upgraded SLA) replaces some of the defaults."""
        if not overrides:
            return self
        return replace(self, **{k: Decimal(str(v)) for k, v in overrides.items()})


@dataclass(frozen=True)
class CalendarSettings:
    timezone: str = "Europe/Brussels"
    office_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    office_start: time = time(9, 0)
    office_end: time = time(17, 0)
    holiday_country: str = "BE"
    holiday_subdivision: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def office_weekdays(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.office_days)


@dataclass(frozen=True)
class Service:
    key: str
    rate: Decimal
    max_participants: int | None = None
    # Names per language; the catalogs hold the generic texts, these are the operator's own words.
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names.get("en") or self.key


DEFAULT_SERVICES: tuple[Service, ...] = (
    Service(
        "teamviewer",
        Decimal("102.21"),
        3,
        {
            "en": "Assistance via TeamViewer on specific parts or functions of a system",
            "fr": "Assistance via TeamViewer sur des parties ou des fonctions spécifiques d'un système",
            "nl": "Ondersteuning via TeamViewer voor specifieke onderdelen of functies van een systeem",
        },
    ),
    Service(
        "parameters",
        Decimal("82.18"),
        None,
        {
            "en": "Adjusting parts of the system: checking/correcting parameters with you",
            "fr": "Ajustement d'éléments du système : vérification/correction des paramètres avec vous",
            "nl": "Aanpassen van systeemonderdelen: parameters samen met u nakijken/corrigeren",
        },
    ),
    Service(
        "database",
        Decimal("82.18"),
        None,
        {
            "en": "Database corrections, reinstallations, extra modules, checking or restoring backups",
            "fr": "Corrections de base de données, réinstallations, modules supplémentaires, sauvegardes",
            "nl": "Databasecorrecties, herinstallaties, extra modules, back-ups nakijken of terugzetten",
        },
    ),
    Service(
        "development",
        Decimal("111.32"),
        None,
        {
            "en": "Being called out to repair something (development)",
            "fr": "Intervention pour réparer quelque chose (développement)",
            "nl": "Oproep om iets te herstellen (ontwikkeling)",
        },
    ),
)


@dataclass(frozen=True)
class Contact:
    email: str = "servicedesk@caresolutions.be"
    phone: str = "+32 3 800 5 800"


@dataclass(frozen=True)
class EscalationLevel:
    level: int
    role: str
    name: str
    email: str
    phone: str


DEFAULT_ESCALATION_LEVELS: tuple[EscalationLevel, ...] = (
    EscalationLevel(
        1,
        "Customer Service Manager",
        "Naïda Jelacic",
        "Naida.jelacic@caresolutions.be",
        "+32 3 800 5 864",
    ),
)


@dataclass(frozen=True)
class EscalationSettings:
    levels: tuple[EscalationLevel, ...] = DEFAULT_ESCALATION_LEVELS
    ack_timeout_minutes: int = 60
    top_level_repeat_minutes: int = 60

    def level(self, number: int) -> EscalationLevel | None:
        return next((lvl for lvl in self.levels if lvl.level == number), None)


@dataclass(frozen=True)
class OnCallSettings:
    # Out of hours nobody watches a queue: an unacknowledged page goes to the backup, then to the
    # level-1 manager, then round again, after this many real minutes each (not office time).
    ack_timeout_minutes: int = 15


@dataclass(frozen=True)
class TicketSettings:
    # {year} and {seq} are filled in by the store; seq restarts at 1 each year.
    number_format: str = "CS-{year}-{seq:05d}"
    min_description_words: int = 5
    min_description_chars: int = 20


@dataclass(frozen=True)
class DialogSettings:
    idle_timeout_minutes: int = 120


@dataclass(frozen=True)
class OutboxSettings:
    # A message the bot sends on its own (an escalation ping, a reply whose post failed) is tried
    # again, with back-off, for this long before it is dead-lettered: a platform outage of a
    # working day or a night must not lose it.
    give_up_after_hours: int = 24
    # The longest wait between two tries, so that the message goes out soon after the platform
    # is back rather than up to an hour later.
    max_retry_minutes: int = 15


@dataclass(frozen=True)
class RetentionSettings:
    """How long what is no longer needed is kept before the worker purges it (docs/operations.md):
    personal data is kept no longer than its purpose needs (GDPR art. 5(1)(e))."""

    # A dialog left unanswered (past `dialogs.idle_timeout_minutes` it is expired, not resumed).
    dialog_days: int = 30
    # An inbox item worked on: kept so that a platform's late retry (Slack: about 5 minutes) is
    # recognised as one, then purged with what the person wrote.
    inbox_done_minutes: int = 15
    # An outbox message delivered (a notification, a page, a reply).
    outbox_sent_days: int = 30
    # A conversation reference (where to reach a person) not refreshed by any message.
    conversation_ref_days: int = 365


@dataclass(frozen=True)
class BillingSettings:
    """How worked time becomes billed time, and how prices are labelled. The rules page sets no
    granularity and does not say whether its rates include VAT, so the defaults add nothing:
    time is billed exactly as worked and totals carry no VAT label."""

    # Billed time is rounded up to a multiple of this many minutes (0: exact, to the minute).
    increment_minutes: int = 0
    # The least time billed for one call or session (0: none).
    minimum_minutes: int = 0
    # Whether the rate card's prices exclude VAT: only then do totals say "excl. VAT".
    prices_exclude_vat: bool = False


@dataclass(frozen=True)
class Settings:
    calendar: CalendarSettings = CalendarSettings()
    multipliers: Multipliers = Multipliers()
    services: tuple[Service, ...] = DEFAULT_SERVICES
    currency: str = "EUR"
    contact: Contact = Contact()
    escalation: EscalationSettings = EscalationSettings()
    oncall: OnCallSettings = OnCallSettings()
    tickets: TicketSettings = TicketSettings()
    dialogs: DialogSettings = DialogSettings()
    outbox: OutboxSettings = OutboxSettings()
    billing: BillingSettings = BillingSettings()
    retention: RetentionSettings = RetentionSettings()
    default_language: str = "en"
    database_url: str = DEFAULT_DATABASE_URL
    # Demo/test clock: an ISO datetime the business calendar pretends is "now". Never on by default.
    fixed_now: str | None = None
    # The file's `[server]`, `[slack]` and `[teams]` tables as written, read-only: the adapters
    # read them (`adapter_table`); the environment is not kept, so no secret is ever in here.
    adapter_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def service(self, key: str) -> Service | None:
        # "TeamViewer" and "teamviewer" are one service: people type names, not keys.
        wanted = key.strip().lower()
        return next((s for s in self.services if s.key.lower() == wanted), None)

    def adapter_table(self, adapter: str) -> Mapping[str, Any]:
        """The file's table of `adapter` (`[server]`, `[slack]`, `[teams]`), empty when the file
        has none."""
        return self.adapter_tables.get(adapter, MappingProxyType({}))

    @property
    def service_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.services)


# --------------------------------------------------------------------------------------------
# Loading


def _decimal(key: str, value: Any, *, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ConfigError(key, f"expected a decimal number, got {value!r}")
    try:
        # str() first: a TOML float such as 82.18 must not become 82.1799999…
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(key, f"expected a decimal number, got {value!r}") from None
    if not result.is_finite():
        raise ConfigError(key, f"expected a finite number, got {value!r}")
    if minimum is not None and result < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {value!r}")
    return result


def _time(key: str, value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = (int(p) for p in value.split(":"))
        if hours == 24 and minutes == 0:
            raise ConfigError(key, "use 23:59 or a time before midnight, not 24:00")
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise ConfigError(key, f"expected a time as HH:MM, got {value!r}")


def parse_int(key: str, value: Any, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(key, f"must be {bound}, got {value!r}")
    return value


def parse_text(key: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ConfigError(key, f"expected a non-empty text, got {value!r}")
    return value


def parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.lower() in ("1", "true", "yes", "on")
    raise ConfigError(key, f"expected true or false, got {value!r}")


def _table(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a table")
    return value


def reject_unknown_keys(prefix: str, table: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Refuse a key of `table` that is not `known`, named with its `prefix` (the adapters use
    this and the parse_* functions on their own sections, so every section's errors read the same)."""
    for k in table:
        if k not in known:
            raise ConfigError(f"{prefix}{k}", f"unknown key (known: {', '.join(known)})")


def _read_only(value: Any) -> Any:
    """A TOML value that nobody can change: tables become read-only mappings, arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _read_only(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_read_only(v) for v in value)
    return value


def parse_multipliers(prefix: str, table: Mapping[str, Any], base: Multipliers | None = None) -> Multipliers:
    reject_unknown_keys(prefix, table, MULTIPLIER_KEYS)
    base = base or Multipliers()
    values = {k: _decimal(f"{prefix}{k}", v, minimum=Decimal("0")) for k, v in table.items()}
    return replace(base, **values)


def parse_multiplier_overrides(prefix: str, table: Any) -> dict[str, Decimal]:
    """Validate a customer's multiplier overrides (the directory uses this too)."""
    if table is None:
        return {}
    table = _table(prefix.rstrip("."), table)
    reject_unknown_keys(prefix, table, MULTIPLIER_KEYS)
    return {k: _decimal(f"{prefix}{k}", v, minimum=Decimal("0")) for k, v in table.items()}


def _calendar(table: Mapping[str, Any]) -> CalendarSettings:
    p = "calendar."
    reject_unknown_keys(
        p, table, ("timezone", "office_days", "office_start", "office_end", "holiday_country", "holiday_subdivision")
    )
    cal = CalendarSettings()
    values: dict[str, Any] = {}
    if "timezone" in table:
        tz = parse_text(p + "timezone", table["timezone"])
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(p + "timezone", f"unknown time zone {tz!r}") from None
        values["timezone"] = tz
    if "office_days" in table:
        days = table["office_days"]
        if not isinstance(days, list) or not all(isinstance(d, str) and d.lower() in WEEKDAYS for d in days):
            raise ConfigError(p + "office_days", f"expected a list of {', '.join(WEEKDAYS)}, got {days!r}")
        values["office_days"] = tuple(d.lower() for d in days)
    if "office_start" in table:
        values["office_start"] = _time(p + "office_start", table["office_start"])
    if "office_end" in table:
        values["office_end"] = _time(p + "office_end", table["office_end"])
    if "holiday_country" in table:
        values["holiday_country"] = parse_text(p + "holiday_country", table["holiday_country"]).upper()
    if "holiday_subdivision" in table:
        sub = parse_text(p + "holiday_subdivision", table["holiday_subdivision"], allow_empty=True)
        values["holiday_subdivision"] = sub or None
    cal = replace(cal, **values)
    if cal.office_start >= cal.office_end:
        raise ConfigError(p + "office_end", "office hours must end after they start")
    supported = holidays_lib.list_supported_countries()
    if cal.holiday_country not in supported:
        raise ConfigError(p + "holiday_country", f"no holiday calendar for {cal.holiday_country!r}")
    if cal.holiday_subdivision and cal.holiday_subdivision not in supported[cal.holiday_country]:
        known = ", ".join(supported[cal.holiday_country]) or "none"
        raise ConfigError(p + "holiday_subdivision", f"unknown subdivision {cal.holiday_subdivision!r} (known: {known})")
    return cal


def _services(table: Mapping[str, Any]) -> tuple[Service, ...]:
    defaults = {s.key: s for s in DEFAULT_SERVICES}
    result = dict(defaults)
    for key, spec in table.items():
        prefix = f"services.{key}."
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", key):
            raise ConfigError(f"services.{key}", "service keys are lower-case letters, digits, - and _")
        spec = _table(f"services.{key}", spec)
        reject_unknown_keys(prefix, spec, ("rate", "max_participants", "names", "enabled"))
        if not parse_bool(prefix + "enabled", spec.get("enabled", True)):
            result.pop(key, None)
            continue
        base = defaults.get(key)
        if "rate" in spec:
            rate = _decimal(prefix + "rate", spec["rate"], minimum=Decimal("0"))
        elif base is not None:
            rate = base.rate
        else:
            raise ConfigError(prefix + "rate", "a new service needs a rate")
        if decimal_places(rate) > 2:
            raise ConfigError(prefix + "rate", f"a rate has at most two decimals, got {spec['rate']!r}")
        max_p = base.max_participants if base else None
        if "max_participants" in spec:
            max_p = parse_int(prefix + "max_participants", spec["max_participants"], minimum=0) or None
        names = dict(base.names) if base else {}
        if "names" in spec:
            raw = _table(prefix + "names", spec["names"])
            reject_unknown_keys(prefix + "names.", raw, LANGUAGES)
            names.update({lang: parse_text(f"{prefix}names.{lang}", text) for lang, text in raw.items()})
        result[key] = Service(key, rate, max_p, names)
    if not result:
        raise ConfigError("services", "at least one service must be enabled")
    return tuple(result.values())


def _escalation(table: Mapping[str, Any]) -> EscalationSettings:
    p = "escalation."
    reject_unknown_keys(p, table, ("levels", "ack_timeout_minutes", "top_level_repeat_minutes"))
    values: dict[str, Any] = {}
    if "ack_timeout_minutes" in table:
        values["ack_timeout_minutes"] = parse_int(p + "ack_timeout_minutes", table["ack_timeout_minutes"], minimum=1)
    if "top_level_repeat_minutes" in table:
        values["top_level_repeat_minutes"] = parse_int(
            p + "top_level_repeat_minutes", table["top_level_repeat_minutes"], minimum=1
        )
    if "levels" in table:
        raw = table["levels"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError(p + "levels", "expected a non-empty list of levels")
        levels = []
        for i, item in enumerate(raw):
            lp = f"{p}levels[{i}]."
            item = _table(lp.rstrip("."), item)
            reject_unknown_keys(lp, item, ("level", "role", "name", "email", "phone"))
            for needed in ("level", "role", "name", "email", "phone"):
                if needed not in item:
                    raise ConfigError(lp + needed, "missing")
            levels.append(
                EscalationLevel(
                    parse_int(lp + "level", item["level"], minimum=1),
                    parse_text(lp + "role", item["role"]),
                    parse_text(lp + "name", item["name"]),
                    _email(lp + "email", item["email"]),
                    parse_text(lp + "phone", item["phone"]),
                )
            )
        numbers = [lvl.level for lvl in levels]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            raise ConfigError(p + "levels", f"levels must be numbered 1, 2, 3… without gaps, got {numbers}")
        values["levels"] = tuple(sorted(levels, key=lambda lvl: lvl.level))
    return replace(EscalationSettings(), **values)


_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def is_email(value: str) -> bool:
    return bool(_EMAIL_RE.match(value)) and len(value) <= 254


def _email(key: str, value: Any) -> str:
    email = parse_text(key, value).strip()
    if not is_email(email):
        raise ConfigError(key, f"not an e-mail address: {email!r}")
    return email


def _tickets(table: Mapping[str, Any]) -> TicketSettings:
    p = "tickets."
    reject_unknown_keys(p, table, ("number_format", "min_description_words", "min_description_chars"))
    values: dict[str, Any] = {}
    if "number_format" in table:
        fmt = parse_text(p + "number_format", table["number_format"])
        try:
            sample = fmt.format(year=2026, seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(p + "number_format", f"only {{year}} and {{seq}} may be used ({exc})") from None
        if "{seq" not in fmt:
            raise ConfigError(p + "number_format", "must contain {seq}")
        if not re.fullmatch(r"[A-Za-z0-9/_-]+", sample):
            raise ConfigError(p + "number_format", f"numbers may only hold letters, digits, - _ /, got {sample!r}")
        values["number_format"] = fmt
    if "min_description_words" in table:
        values["min_description_words"] = parse_int(p + "min_description_words", table["min_description_words"], minimum=1)
    if "min_description_chars" in table:
        values["min_description_chars"] = parse_int(p + "min_description_chars", table["min_description_chars"], minimum=1)
    return replace(TicketSettings(), **values)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from defaults, then the TOML file, then the environment.

    The file is `path`, else `$CAREDESK_CONFIG`, else `./caredesk.toml` when it exists.
    """
    env = os.environ if environ is None else environ
    file_path: Path | None = None
    if path is not None:
        file_path = Path(path)
    elif env.get("CAREDESK_CONFIG"):
        file_path = Path(env["CAREDESK_CONFIG"])
    elif Path(DEFAULT_CONFIG_FILE).exists():
        file_path = Path(DEFAULT_CONFIG_FILE)

    data: dict[str, Any] = {}
    if file_path is not None:
        if not file_path.exists():
            raise ConfigError("CAREDESK_CONFIG", f"file not found: {file_path}")
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(file_path), f"not valid TOML ({exc})") from None
    return settings_from_mapping(data, env)


def _retention(table: Mapping[str, Any]) -> RetentionSettings:
    keys = ("dialog_days", "inbox_done_minutes", "outbox_sent_days", "conversation_ref_days")
    reject_unknown_keys("retention.", table, keys)
    defaults = RetentionSettings()
    # At least one unit: a retention of 0 would purge what is still in use (a dialog being
    # answered, an item a platform may still retry).
    return RetentionSettings(**{k: parse_int(f"retention.{k}", table.get(k, getattr(defaults, k)), minimum=1,
                                             maximum=100_000) for k in keys})


def settings_from_mapping(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    env = {} if env is None else env
    top_keys = (
        "calendar", "multipliers", "services", "currency", "contact", "escalation", "oncall", "tickets",
        "dialogs", "outbox", "billing", "retention", "default_language", "database", "clock", *ADAPTER_TABLES,
    )
    for k in data:
        if k.lower() == "secrets" or k.lower().endswith(SECRET_KEY_ENDINGS):
            raise ConfigError(k, SECRETS_MESSAGE)
    reject_unknown_keys("", data, top_keys)

    values: dict[str, Any] = {}
    if "calendar" in data:
        values["calendar"] = _calendar(_table("calendar", data["calendar"]))
    if "multipliers" in data:
        values["multipliers"] = parse_multipliers("multipliers.", _table("multipliers", data["multipliers"]))
    if "services" in data:
        values["services"] = _services(_table("services", data["services"]))
    if "currency" in data:
        cur = parse_text("currency", data["currency"])
        if not re.fullmatch(r"[A-Z]{3}", cur):
            raise ConfigError("currency", f"expected an ISO 4217 code such as EUR, got {cur!r}")
        values["currency"] = cur
    if "contact" in data:
        c = _table("contact", data["contact"])
        reject_unknown_keys("contact.", c, ("email", "phone"))
        values["contact"] = Contact(
            _email("contact.email", c.get("email", Contact.email)),
            parse_text("contact.phone", c.get("phone", Contact.phone)),
        )
    if "escalation" in data:
        values["escalation"] = _escalation(_table("escalation", data["escalation"]))
    if "oncall" in data:
        oc = _table("oncall", data["oncall"])
        reject_unknown_keys("oncall.", oc, ("ack_timeout_minutes",))
        values["oncall"] = OnCallSettings(parse_int(
            "oncall.ack_timeout_minutes", oc.get("ack_timeout_minutes", OnCallSettings.ack_timeout_minutes), minimum=1))
    if "tickets" in data:
        values["tickets"] = _tickets(_table("tickets", data["tickets"]))
    if "dialogs" in data:
        d = _table("dialogs", data["dialogs"])
        reject_unknown_keys("dialogs.", d, ("idle_timeout_minutes",))
        values["dialogs"] = DialogSettings(
            parse_int("dialogs.idle_timeout_minutes", d.get("idle_timeout_minutes", 120), minimum=1)
        )
    if "outbox" in data:
        o = _table("outbox", data["outbox"])
        reject_unknown_keys("outbox.", o, ("give_up_after_hours", "max_retry_minutes"))
        values["outbox"] = OutboxSettings(
            parse_int("outbox.give_up_after_hours", o.get("give_up_after_hours", OutboxSettings.give_up_after_hours),
                      minimum=1),
            parse_int("outbox.max_retry_minutes", o.get("max_retry_minutes", OutboxSettings.max_retry_minutes),
                      minimum=1),
        )
    if "billing" in data:
        b = _table("billing", data["billing"])
        reject_unknown_keys("billing.", b, ("increment_minutes", "minimum_minutes", "prices_exclude_vat"))
        values["billing"] = BillingSettings(
            parse_int("billing.increment_minutes", b.get("increment_minutes", 0), minimum=0, maximum=240),
            parse_int("billing.minimum_minutes", b.get("minimum_minutes", 0), minimum=0, maximum=1440),
            parse_bool("billing.prices_exclude_vat", b.get("prices_exclude_vat", False)),
        )
    if "retention" in data:
        values["retention"] = _retention(_table("retention", data["retention"]))
    if "default_language" in data:
        lang = parse_text("default_language", data["default_language"])
        if lang not in LANGUAGES:
            raise ConfigError("default_language", f"expected one of {', '.join(LANGUAGES)}, got {lang!r}")
        values["default_language"] = lang
    if "database" in data:
        db = _table("database", data["database"])
        reject_unknown_keys("database.", db, ("url",))
        if "url" in db:
            values["database_url"] = _database_url("database.url", db["url"])
    # Only the shape is checked here: each adapter checks its keys and values.
    values["adapter_tables"] = _read_only(
        {name: _table(name, data[name]) for name in ADAPTER_TABLES if name in data})
    if "clock" in data:
        ck = _table("clock", data["clock"])
        reject_unknown_keys("clock.", ck, ("fixed_now",))
        if "fixed_now" in ck:
            values["fixed_now"] = _fixed_now("clock.fixed_now", ck["fixed_now"])

    # The environment wins over the file.
    if env.get("DATABASE_URL"):
        values["database_url"] = _database_url("DATABASE_URL", env["DATABASE_URL"])
    if env.get("CAREDESK_FIXED_NOW"):
        values["fixed_now"] = _fixed_now("CAREDESK_FIXED_NOW", env["CAREDESK_FIXED_NOW"])
    settings = Settings(**values)
    _check_escalation_contacts(settings)
    return settings


def _check_escalation_contacts(settings: Settings) -> None:
    if not settings.escalation.levels:
        raise ConfigError("escalation.levels", "at least level 1 must be configured")


def _database_url(key: str, value: Any) -> str:
    url = parse_text(key, value)
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError(key, "expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB")
    return url


def _fixed_now(key: str, value: Any) -> str:
    from datetime import datetime

    text = value.isoformat() if hasattr(value, "isoformat") else parse_text(key, value)
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(key, f"expected an ISO date-time such as 2026-11-28T22:30, got {value!r}") from None
    return text
