"""Settings: the rules page's values by default; invalid input names the key; secrets stay out."""

from __future__ import annotations

from dataclasses import fields
from datetime import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.config import ConfigError, Settings, load_settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_rules_page():
    s = Settings()
    assert s.calendar.timezone == "Europe/Brussels"
    assert (s.calendar.office_start, s.calendar.office_end) == (time(9), time(17))
    assert s.calendar.office_days == ("mon", "tue", "wed", "thu", "fri")
    assert s.calendar.holiday_country == "BE"
    m = s.multipliers
    assert (m.office_hours, m.outside_office_hours, m.saturday, m.sunday, m.public_holiday) == tuple(
        Decimal(x) for x in ("1.0", "1.5", "1.5", "2.0", "2.0")
    )
    assert {svc.key: (svc.rate, svc.max_participants) for svc in s.services} == {
        "teamviewer": (Decimal("102.21"), 3),
        "parameters": (Decimal("82.18"), None),
        "database": (Decimal("82.18"), None),
        "development": (Decimal("111.32"), None),
    }
    assert (s.contact.email, s.contact.phone) == ("servicedesk@caresolutions.be", "+32 3 800 5 800")
    level1 = s.escalation.level(1)
    assert (level1.role, level1.name, level1.email, level1.phone) == (
        "Customer Service Manager", "Naïda Jelacic", "Naida.jelacic@caresolutions.be", "+32 3 800 5 864"
    )
    assert s.database_url == "sqlite+aiosqlite:///./caredesk.db"
    assert s.tickets.number_format.format(year=2026, seq=42) == "CS-2026-00042"


def test_example_file_is_valid_and_documents_every_section(tmp_path):
    example = ROOT / "examples" / "caredesk.example.toml"
    s = load_settings(example, environ={})
    assert s == load_settings(example, environ={})  # deterministic
    assert s.escalation.level(2) is not None
    text = example.read_text()
    for key in ("office_start", "holiday_country", "outside_office_hours", "public_holiday", "max_participants",
                "number_format", "idle_timeout_minutes", "insecure_dev_mode", "ack_timeout_minutes",
                "top_level_repeat_minutes", "fixed_now", "api_url", "app_type", "default_language", "currency"):
        assert key in text, key


def test_file_values_override_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[multipliers]\nsaturday = "1.75"\n[services.teamviewer]\nrate = 110.5\n[calendar]\noffice_end = "18:00"\n')
    s = load_settings(path, environ={})
    assert s.multipliers.saturday == Decimal("1.75")
    assert s.service("teamviewer").rate == Decimal("110.5")  # a TOML float keeps its decimal digits
    assert s.calendar.office_end == time(18)
    assert s.service("parameters").rate == Decimal("82.18")


SECRET_ENVIRONMENT = {
    "SLACK_BOT_TOKEN": "xoxb-s3cr3t-bot",
    "SLACK_SIGNING_SECRET": "s3cr3t-signing",
    "SLACK_APP_TOKEN": "xapp-s3cr3t-app",
    "MICROSOFT_APP_PASSWORD": "s3cr3t-password",
}


def test_environment_wins(tmp_path):
    s = settings_from_mapping(
        {"database": {"url": "sqlite+aiosqlite:///x.db"}, "clock": {"fixed_now": "2026-11-28T22:30"}},
        {"DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1/test", "CAREDESK_FIXED_NOW": "2026-11-26T10:00"},
    )
    assert s.database_url.startswith("postgresql+asyncpg://")
    assert s.fixed_now == "2026-11-26T10:00"


def test_the_core_keeps_no_secret_even_when_the_environment_has_them(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[slack]\napi_url = "http://127.0.0.1:9/api/"\n[teams]\napp_id = "app"\n')
    s = load_settings(path, environ={**SECRET_ENVIRONMENT, "DATABASE_URL": "postgresql+asyncpg://postgres@db/test"})
    assert s.database_url == "postgresql+asyncpg://postgres@db/test"
    for secret in SECRET_ENVIRONMENT.values():
        assert secret not in repr(s) and secret not in str(s)  # never in logs
    assert "secrets" not in {f.name for f in fields(s)}


def test_adapter_tables_are_carried_unread_and_read_only(tmp_path):
    s = settings_from_mapping({"slack": {"api_url": "http://x/api/", "whatever": 1}, "teams": {"app_id": "a"},
                               "server": {"port": 4000, "hosts": ["a", "b"]}})
    # The core does not read the adapters' sections: an unknown key is the adapter's to refuse.
    assert dict(s.adapter_table("slack")) == {"api_url": "http://x/api/", "whatever": 1}
    assert s.adapter_table("teams")["app_id"] == "a"
    assert s.adapter_table("server")["hosts"] == ("a", "b")
    assert dict(Settings().adapter_table("slack")) == {}
    with pytest.raises(TypeError):
        s.adapter_table("slack")["api_url"] = "http://elsewhere/"  # type: ignore[index]


@pytest.mark.parametrize("key", ["slack_bot_token", "SLACK_SIGNING_SECRET", "slack_app_token",
                                 "microsoft_app_password", "secrets"])
def test_a_secret_in_the_file_is_refused(key):
    with pytest.raises(ConfigError) as err:
        settings_from_mapping({key: "s3cr3t"}, {})
    assert err.value.key == key
    assert "environment" in str(err.value) and "s3cr3t" not in str(err.value)


def test_config_file_from_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('default_language = "fr"\n')
    assert load_settings(environ={"CAREDESK_CONFIG": str(path)}).default_language == "fr"
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"CAREDESK_CONFIG": str(tmp_path / "missing.toml")})
    assert "CAREDESK_CONFIG" in str(err.value)


@pytest.mark.parametrize(
    "data,key",
    [
        ({"multipliers": {"saturday": "lots"}}, "multipliers.saturday"),
        ({"multipliers": {"weekend": "1.5"}}, "multipliers.weekend"),
        ({"calendar": {"office_start": "9h"}}, "calendar.office_start"),
        ({"calendar": {"office_start": "18:00"}}, "calendar.office_end"),
        ({"calendar": {"timezone": "Mars/Olympus"}}, "calendar.timezone"),
        ({"calendar": {"holiday_country": "XX"}}, "calendar.holiday_country"),
        ({"calendar": {"office_days": ["mon", "funday"]}}, "calendar.office_days"),
        ({"services": {"teamviewer": {"rate": "-1"}}}, "services.teamviewer.rate"),
        ({"services": {"teamviewer": {"rate": "10.123"}}}, "services.teamviewer.rate"),
        ({"services": {"newone": {"max_participants": 2}}}, "services.newone.rate"),
        ({"contact": {"email": "not-an-email"}}, "contact.email"),
        ({"escalation": {"levels": [{"level": 2, "role": "r", "name": "n", "email": "a@b.be", "phone": "1"}]}}, "escalation.levels"),
        ({"escalation": {"levels": [{"level": 1, "role": "r", "name": "n", "phone": "1"}]}}, "escalation.levels[0].email"),
        ({"tickets": {"number_format": "CS-{year}"}}, "tickets.number_format"),
        ({"tickets": {"number_format": "CS {seq}"}}, "tickets.number_format"),
        ({"server": "0.0.0.0"}, "server"),
        ({"default_language": "de"}, "default_language"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"slack_bot_token": "xoxb-1"}, "slack_bot_token"),
        ({"slack": "https://slack.com/api/"}, "slack"),
        ({"teams": ["app"]}, "teams"),
        ({"mystery": 1}, "mystery"),
    ],
)
def test_invalid_configuration_names_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        settings_from_mapping(data, {})
    assert err.value.key == key
    assert f"'{key}'" in str(err.value)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[calendar\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(path) in str(err.value)


def test_disabling_and_adding_services():
    s = settings_from_mapping({"services": {"development": {"enabled": False}, "training": {"rate": "75", "names": {"fr": "Formation"}}}})
    assert s.service_keys == ("teamviewer", "parameters", "database", "training")
    assert s.service("training").name("fr") == "Formation"
    assert s.service("training").name("nl") == "training"
