"""User-facing text in English, French and Dutch, kept in message catalogs (locales/*.toml).

`translate(lang, key, **params)` looks the key up in the user's language, falls back to
English, and fills `{placeholders}`. Numbers, money and dates are formatted per locale with
Babel. The catalogs are checked by tests: same keys and placeholders in every language.
"""

from __future__ import annotations

import string
import tomllib
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from babel.dates import format_date as _babel_date
from babel.dates import format_time as _babel_time
from babel.numbers import format_currency as _babel_currency
from babel.numbers import format_decimal as _babel_decimal

LANGUAGES = ("en", "fr", "nl")
FALLBACK = "en"
# Belgian French and Dutch (decimal comma); Irish English writes euros the English way (€102.21).
BABEL_LOCALES = {"en": "en_IE", "fr": "fr_BE", "nl": "nl_BE"}
_CATALOG_DIR = Path(__file__).with_name("locales")


def normalize_language(locale: str | None, default: str = FALLBACK) -> str:
    """'fr-BE', 'fr_FR', 'FR' -> 'fr'; anything unknown -> the default."""
    if not locale:
        return default
    primary = locale.replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else default


@lru_cache(maxsize=None)
def catalog(lang: str) -> Mapping[str, str]:
    data = tomllib.loads((_CATALOG_DIR / f"{lang}.toml").read_text(encoding="utf-8"))
    return _flatten(data)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def translate(lang: str, key: str, /, **params: Any) -> str:
    lang = normalize_language(lang)
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(FALLBACK).get(key)
    if text is None:
        raise KeyError(f"no message {key!r} in the catalogs")
    if not params:
        return text
    return text.format_map(_Params(params))


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        # A missing parameter must never crash a reply: show the placeholder instead.
        return "{" + key + "}"


# ---- formatting ----------------------------------------------------------------------------


def format_money(amount: Decimal, lang: str, currency: str = "EUR") -> str:
    return _babel_currency(amount, currency, locale=BABEL_LOCALES[normalize_language(lang)])


def format_number(value: Decimal | int, lang: str, places: int | None = None) -> str:
    fmt = None
    if places is not None:
        fmt = "#,##0." + "0" * places if places else "#,##0"
    return _babel_decimal(value, format=fmt, locale=BABEL_LOCALES[normalize_language(lang)])


def format_rate(amount: Decimal, lang: str, currency: str = "EUR") -> str:
    """A rate per hour as each language writes it: '€102.21/h', '102,21 €/h', '€ 102,21/u'."""
    return translate(lang, "common.per_hour", amount=format_money(amount, lang, currency))


def format_duration(minutes: int, lang: str) -> str:
    """A duration as people write it: '1 h 30', '0 h 02', '2 h' ('1 u 30' in Dutch)."""
    hours, rest = divmod(int(minutes), 60)
    return translate(lang, "common.duration", hours=hours, minutes=f"{rest:02d}") if rest else translate(
        lang, "common.duration_hours", hours=hours)


def format_date(value: date, lang: str) -> str:
    return _babel_date(value, format="full", locale=BABEL_LOCALES[normalize_language(lang)])


def format_short_date(value: date, lang: str) -> str:
    return _babel_date(value, format="medium", locale=BABEL_LOCALES[normalize_language(lang)])


def format_time(value: datetime, lang: str) -> str:
    return _babel_time(value, format="HH:mm", locale=BABEL_LOCALES[normalize_language(lang)])


def format_datetime(value: datetime, lang: str) -> str:
    """'Monday 30 November 2026 at 09:00' / 'lundi 30 novembre 2026 à 09:00' / 'maandag … om 09:00'."""
    return translate(lang, "common.date_at_time", date=format_date(value.date(), lang), time=f"{value:%H:%M}")
