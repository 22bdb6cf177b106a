"""Validation of what people type: one set of rules for a form submitted at once and for the
same fields asked one by one in a chat. Errors carry a catalog key, never a sentence."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, overload

from bot.domain.config import is_email

MAX_SHORT_TEXT = 200
MAX_LONG_TEXT = 4000


@dataclass(frozen=True)
class Invalid(Exception):
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


# Terminal escape sequences (CSI "ESC [ … final", OSC "ESC ] … BEL/ST", and two-byte "ESC x"):
# removed whole, so that no "[31m" is left behind when the ESC itself is dropped.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)


def strip_controls(value: str) -> str:
    """`value` without terminal escape sequences and control characters (line breaks and tabs
    kept): what a person or a platform sends must never drive another person's terminal."""
    value = _ESCAPES.sub("", value)
    return "".join(ch for ch in value if ch in "\n\t" or not unicodedata.category(ch).startswith("C"))


def clean_text(value: str) -> str:
    """Drop escape sequences and control characters (but keep line breaks and tabs) and
    surrounding space."""
    value = _ESCAPES.sub("", value)
    kept = [
        ch for ch in value
        if ch in "\n\t" or not unicodedata.category(ch).startswith("C")
    ]
    return "".join(kept).strip()


# A required text is never None (it raises instead): the overloads let callers rely on that.
@overload
def short_text(value: str, *, required: Literal[True] = ...) -> str: ...
@overload
def short_text(value: str, *, required: bool) -> str | None: ...
def short_text(value: str, *, required: bool = True) -> str | None:
    text = clean_text(value)
    if not text:
        if required:
            raise Invalid("validation.required")
        return None
    if len(text) > MAX_SHORT_TEXT:
        raise Invalid("validation.too_long", {"max": MAX_SHORT_TEXT})
    return " ".join(text.split())


@overload
def long_text(value: str, *, required: Literal[True] = ...) -> str: ...
@overload
def long_text(value: str, *, required: bool) -> str | None: ...
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
    0470 12 34 56) formats; return the international form, grouped for reading
    (+32 3 800 58 00, +32 470 12 34 56)."""
    text = _PHONE_CHARS.sub("", clean_text(value))
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits.startswith("0"):
            raise Invalid("validation.phone")
        if digits.startswith("32"):
            return _belgian(digits[2:])
        return "+" + digits
    if text.startswith("0") and text.isdigit() and text[1:2] != "0":
        if default_country_code == "32":
            return _belgian(text[1:])
        return f"+{default_country_code}{text[1:]}"
    raise Invalid("validation.phone")


def _belgian(national: str) -> str:
    """Group a Belgian number: mobiles as 470 12 34 56, the one-digit zones (2 Brussels,
    3 Antwerp, 4 Liège, 9 Ghent) as 3 800 58 00, the other zones as 50 12 34 56."""
    if len(national) == 9 and national.startswith("4"):
        groups = (national[:3], national[3:5], national[5:7], national[7:])
    elif len(national) == 8 and national[0] in "2349":
        groups = (national[0], national[1:4], national[4:6], national[6:])
    elif len(national) == 8:
        groups = (national[:2], national[2:4], national[4:6], national[6:])
    else:
        raise Invalid("validation.phone")
    return "+32 " + " ".join(groups)


_VAGUE = {
    # A description made only of these says nothing the desk can act on.
    "it", "doesnt", "doesn't", "does", "not", "work", "working", "works", "broken", "error", "errors", "bug",
    "problem", "problems", "issue", "help", "please", "urgent", "asap", "crash", "down", "fix", "the", "a",
    "is", "my", "ne", "marche", "pas", "fonctionne", "plus", "erreur", "problème", "probleme", "aide", "svp",
    "panne", "ça", "ca", "il", "y", "un", "une", "le", "la", "werkt", "niet", "fout",
    "probleem", "hulp", "dringend", "kapot", "het", "de", "een", "mijn", "mon", "ma", "mes",
    "aidez", "aider", "moi", "me", "nous", "stp", "merci", "helpen", "aub", "alstublieft",
    "dank", "graag", "anymore", "again", "now", "maintenant", "meer", "opnieuw", "nu", "still", "toujours",
}


def description(value: str, *, min_words: int, min_chars: int) -> str:
    text = long_text(value)
    assert text is not None
    words = re.findall(r"[\w'’]+", text.lower())
    if is_keyboard_mash(text):
        raise Invalid("validation.description_mash")
    if len(text) < min_chars or len(words) < min_words:
        raise Invalid("validation.description_short", {"min_words": min_words})
    if all(w.replace("’", "'") in _VAGUE for w in words):
        raise Invalid("validation.description_vague")
    return text


_VOWELS = set("aeiouyàâäéèêëïîôöùûü")
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "1234567890")


def _mashed(word: str) -> bool:
    """A word nobody writes: no vowel, a long run of consonants, a key held down, or a run
    along a keyboard row."""
    if len(word) < 4:
        return False
    if not _VOWELS & set(word) or re.search(r"(.)\1{3,}", word) or re.fullmatch(r"(.{1,3})\1+", word):
        return True
    if re.search(r"[^aeiouyàâäéèêëïîôöùûü\d]{6,}", word):
        return True
    return any(row[i:i + 4] in word for row in _KEY_ROWS for i in range(len(row) - 3))


def is_keyboard_mash(text: str) -> bool:
    """Most of the longer words are mashed keys ("sdkfjh qwpoe asdasd"), or the text is a few
    characters repeated: nothing a person wrote to be read."""
    words = [w for w in re.findall(r"[^\W\d_]+", text.lower()) if len(w) >= 4]
    if not words:
        return False
    letters = "".join(words)
    if len(letters) >= 12 and len(set(letters)) <= 3:
        return True
    return sum(_mashed(w) for w in words) * 2 > len(words)


# Fewer letters than this is no answer to "how to reproduce" / "what did you test" ("x", ".").
MIN_HELPFUL_LETTERS = 3


def helpful_answer(value: str, key: str) -> str:
    """A free answer that tells the desk something: not one or two characters, not mashed keys.
    `key` is the message, with an example, that asks again."""
    text = long_text(value)
    assert text is not None
    if len(re.findall(r"[^\W\d_]", text)) < MIN_HELPFUL_LETTERS or is_keyboard_mash(text):
        raise Invalid(key)
    return text


def module(value: str) -> str:
    """A module or hardware/environment name ("Invoicing", "POS", "Kassa 2"): a short text with
    at least two letters or digits that is not mashed keys ("x", "?" and "qsdfgh" tell the
    desk nothing)."""
    text = short_text(value)
    if len(re.findall(r"[^\W_]", text)) < 2 or is_keyboard_mash(text):
        raise Invalid("fields.module_unhelpful")
    return text


def choice(value: str, options: Mapping[str, str]) -> str:
    """`options` maps accepted answers (lower-case) to the value they stand for."""
    key = clean_text(value).lower()
    if key in options:
        return options[key]
    raise Invalid("validation.choice")
