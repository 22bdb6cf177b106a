"""Validation of what people type: one set of rules for a form submitted at once and for the
same fields asked one by one in a chat. Errors carry a catalog key, never a sentence."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Mapping

from bot.config import is_email

MAX_SHORT_TEXT = 200
MAX_LONG_TEXT = 4000


@dataclass(frozen=True)
class Invalid(Exception):
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


def clean_text(value: str) -> str:
    """Drop control characters (but keep line breaks and tabs) and surrounding space."""
    kept = [
        ch for ch in value
        if ch in "\n\t" or not unicodedata.category(ch).startswith("C")
    ]
    return "".join(kept).strip()


def short_text(value: str, *, required: bool = True) -> str | None:
    text = clean_text(value)
    if not text:
        if required:
            raise Invalid("validation.required")
        return None
    if len(text) > MAX_SHORT_TEXT:
        raise Invalid("validation.too_long", {"max": MAX_SHORT_TEXT})
    return " ".join(text.split())


def long_text(value: str, *, required: bool = True) -> str | None:
    text = clean_text(value)
    if not text:
        if required:
            raise Invalid("validation.required")
        return None
    if len(text) > MAX_LONG_TEXT:
        raise Invalid("validation.too_long", {"max": MAX_LONG_TEXT})
    return text


def email(value: str) -> str:
    text = clean_text(value)
    if not is_email(text):
        raise Invalid("validation.email")
    return text


_PHONE_CHARS = re.compile(r"[\s./()-]")


def phone(value: str, default_country_code: str = "32") -> str:
    """Accept international (+32 3 800 5 800, 0032 …) and Belgian national (03 800 58 00,
    0470 12 34 56) formats; return E.164 (+3238005800)."""
    text = _PHONE_CHARS.sub("", clean_text(value))
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits.startswith("0"):
            raise Invalid("validation.phone")
        if digits.startswith("32") and not 10 <= len(digits) <= 11:
            raise Invalid("validation.phone")
        return "+" + digits
    if text.startswith("0") and text.isdigit() and len(text) in (9, 10) and text[1] != "0":
        # Belgian national format: 9 digits for landlines, 10 for mobiles (04xx).
        if len(text) == 10 and text[1] != "4":
            raise Invalid("validation.phone")
        return f"+{default_country_code}{text[1:]}"
    raise Invalid("validation.phone")


_VAGUE = {
    # A description made only of these says nothing the desk can act on.
    "it", "doesnt", "doesn't", "does", "not", "work", "working", "works", "broken", "error", "errors", "bug",
    "problem", "problems", "issue", "help", "please", "urgent", "asap", "crash", "down", "fix", "the", "a",
    "is", "my", "ne", "marche", "pas", "fonctionne", "plus", "erreur", "problème", "probleme", "aide", "svp",
    "urgent", "bug", "panne", "ça", "ca", "il", "y", "un", "une", "le", "la", "werkt", "niet", "fout",
    "probleem", "hulp", "dringend", "kapot", "het", "de", "een", "is", "mijn", "mon", "ma", "mes",
}


def description(value: str, *, min_words: int, min_chars: int) -> str:
    text = long_text(value)
    assert text is not None
    words = re.findall(r"[\w'’]+", text.lower())
    if len(text) < min_chars or len(words) < min_words:
        raise Invalid("validation.description_short", {"min_words": min_words})
    if all(w.replace("’", "'") in _VAGUE for w in words):
        raise Invalid("validation.description_vague")
    return text


def choice(value: str, options: Mapping[str, str]) -> str:
    """`options` maps accepted answers (lower-case) to the value they stand for."""
    key = clean_text(value).lower()
    if key in options:
        return options[key]
    raise Invalid("validation.choice")
