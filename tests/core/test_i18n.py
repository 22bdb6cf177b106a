"""The catalogs: every message in English, French and Dutch, with the same placeholders."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

from bot.i18n import LANGUAGES, catalog, format_money, normalize_language, placeholders, translate

ROOT = Path(__file__).resolve().parents[2]


def test_all_languages_have_the_same_keys():
    keys = {lang: set(catalog(lang)) for lang in LANGUAGES}
    for lang in LANGUAGES:
        assert keys[lang] == keys["en"], (lang, keys[lang] ^ keys["en"])


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_placeholders_match(lang):
    for key, text in catalog("en").items():
        assert placeholders(catalog(lang)[key]) == placeholders(text), (lang, key)


def test_translations_are_not_copies_of_english():
    same = [k for k, v in catalog("en").items() if catalog("fr")[k] == v and catalog("nl")[k] == v and len(v) > 12]
    assert not same


def test_every_key_used_in_code_exists():
    """Scan the code for catalog keys passed as literals and check each one is in the catalogs."""
    known = set(catalog("en"))
    sections = {k.split(".")[0] for k in known}
    missing = []
    # Code that talks to people (the store and the settings modules, the core's and each
    # adapter's config.py, use dotted names of their own: "slack.api_url").
    sources = [p for p in (ROOT / "bot").rglob("*.py") if "store" not in p.parts and p.name != "config.py"]
    sources += [p for p in (ROOT / "adapters").rglob("*.py") if p.name != "config.py"]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                if "." not in value or " " in value or value.split(".")[0] not in sections:
                    continue
                if value.endswith("."):
                    # The fixed part of an f-string key such as f"ticket.kind.{kind}".
                    ok = any(k.startswith(value) for k in known)
                else:
                    ok = value in known or any(k.startswith(value + ".") for k in known)
                if not ok:
                    missing.append(f"{path.relative_to(ROOT)}: {value}")
    assert not missing


def test_language_fallback_and_locale_normalisation():
    assert normalize_language("fr-BE") == "fr"
    assert normalize_language("nl_NL") == "nl"
    assert normalize_language("de-DE") == "en"
    assert normalize_language(None) == "en"
    assert translate("de", "validation.required") == translate("en", "validation.required")
    assert translate("fr", "validation.required") == "Ce champ est obligatoire."


def test_missing_placeholder_never_crashes():
    assert "{max}" in translate("en", "validation.too_long")


def test_money_per_locale():
    assert format_money(Decimal("102.21"), "fr") == "102,21\xa0€"
    assert format_money(Decimal("1102.21"), "nl") == "€\xa01.102,21"
    assert format_money(Decimal("102.21"), "en") == "€102.21"
