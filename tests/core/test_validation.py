from __future__ import annotations

import pytest

from bot.domain import validation
from bot.domain.validation import Invalid


@pytest.mark.parametrize(
    "typed,expected",
    [
        ("+32 3 800 5 800", "+32 3 800 58 00"),
        ("03 800 58 00", "+32 3 800 58 00"),
        ("0032 3 800 58 00", "+32 3 800 58 00"),
        ("0470/12.34.56", "+32 470 12 34 56"),
        ("+32 470 12 34 56", "+32 470 12 34 56"),
        ("050 12 34 56", "+32 50 12 34 56"),
        ("02-555-67-89", "+32 2 555 67 89"),
        ("+33 1 23 45 67 89", "+33123456789"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_accepted(typed, expected):
    assert validation.phone(typed) == expected


@pytest.mark.parametrize("typed", ["12345", "abc", "+32 12", "0032", "+0 123 456 789", "00 12", "0800 123", "+32 470 12 34 56 78"])
def test_phone_numbers_refused(typed):
    with pytest.raises(Invalid):
        validation.phone(typed)


@pytest.mark.parametrize("typed", ["a@b.be", "Naida.jelacic@caresolutions.be", "x+tag@sub.example.com"])
def test_emails_accepted(typed):
    assert validation.email(typed) == typed


@pytest.mark.parametrize("typed", ["a@b", "ab.be", "a b@c.be", "@c.be", "a@.be", ""])
def test_emails_refused(typed):
    with pytest.raises(Invalid):
        validation.email(typed)


def test_control_characters_are_dropped_but_line_breaks_kept():
    assert validation.long_text("line 1\x00\x1b[31m\nline 2\u202e") == "line 1\nline 2"


def test_too_long_text_is_refused():
    with pytest.raises(Invalid) as err:
        validation.short_text("x" * (validation.MAX_SHORT_TEXT + 1))
    assert err.value.key == "validation.too_long"


@pytest.mark.parametrize("text,key", [
    ("broken", "validation.description_short"),
    ("it does not work, please help, urgent", "validation.description_vague"),
    ("ça ne marche pas, aidez-moi svp urgent", "validation.description_vague"),
])
def test_descriptions_refused(text, key):
    with pytest.raises(Invalid) as err:
        validation.description(text, min_words=5, min_chars=20)
    assert err.value.key == key
