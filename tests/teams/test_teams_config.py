"""Teams' own settings: the file's `[teams]` table, the MICROSOFT_APP_* and BOTFRAMEWORK_*
variables, parsed and checked by the channel (adapters/teams/config.py), never by the core."""

from __future__ import annotations

import pytest

from adapters.teams.config import PUBLIC_OPENID_METADATA_URL, TeamsConfig
from bot.domain.config import ConfigError, Settings, settings_from_mapping


def test_the_password_comes_from_the_environment_and_never_shows():
    config = TeamsConfig.from_settings(Settings(), {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "s3cr3t"})
    assert (config.app_id, config.app_password, config.auth_enabled) == ("app", "s3cr3t", True)
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config)


def test_defaults_without_file_or_environment():
    config = TeamsConfig.from_settings(Settings(), {})
    assert (config.app_id, config.app_password, config.tenant_id, config.app_type) == (None, None, None, "MultiTenant")
    assert config.openid_metadata_url == PUBLIC_OPENID_METADATA_URL
    assert not config.auth_enabled


def test_the_file_gives_the_identity():
    settings = settings_from_mapping({"teams": {"app_id": "file-app", "app_tenant_id": "tenant", "app_type": "SingleTenant"}})
    config = TeamsConfig.from_settings(settings, {})
    assert (config.app_id, config.tenant_id, config.app_type) == ("file-app", "tenant", "SingleTenant")
    assert config.login_url == "https://login.microsoftonline.com/tenant"  # a single tenant's authority


def test_an_empty_app_id_in_the_file_means_none():
    config = TeamsConfig.from_settings(settings_from_mapping({"teams": {"app_id": "", "app_tenant_id": ""}}), {})
    assert (config.app_id, config.tenant_id) == (None, None)


def test_the_environment_beats_the_file():
    settings = settings_from_mapping({"teams": {"app_id": "file-app", "app_tenant_id": "file-tenant",
                                                "app_type": "MultiTenant"}})
    config = TeamsConfig.from_settings(settings, {"MICROSOFT_APP_ID": "env-app", "MICROSOFT_APP_TENANT_ID": "env-tenant",
                                                  "MICROSOFT_APP_TYPE": "UserAssignedMSI"})
    assert (config.app_id, config.tenant_id, config.app_type) == ("env-app", "env-tenant", "UserAssignedMSI")


def test_the_developer_mode_reaches_teams():
    config = TeamsConfig.from_settings(Settings(), {}, insecure_dev_mode=True)
    assert config.insecure_dev_mode


def test_an_unknown_key_in_teams_is_refused_by_teams_with_its_name():
    with pytest.raises(ConfigError) as err:
        TeamsConfig.from_settings(settings_from_mapping({"teams": {"tenant": "x"}}), {})
    assert err.value.key == "teams.tenant"
    assert "'teams.tenant'" in str(err.value) and "app_tenant_id" in str(err.value)


@pytest.mark.parametrize("key", ["app_password", "MICROSOFT_APP_PASSWORD"])
def test_the_password_in_teams_is_refused_with_the_variable_to_use(key):
    with pytest.raises(ConfigError) as err:
        TeamsConfig.from_settings(settings_from_mapping({"teams": {key: "s3cr3t"}}), {})
    assert err.value.key == f"teams.{key}"
    assert "MICROSOFT_APP_PASSWORD" in str(err.value) and "s3cr3t" not in str(err.value)


@pytest.mark.parametrize("data,env,key", [
    ({"teams": {"app_type": "Personal"}}, {}, "teams.app_type"),
    ({}, {"MICROSOFT_APP_TYPE": "Personal"}, "MICROSOFT_APP_TYPE"),
    ({"teams": {"app_id": 42}}, {}, "teams.app_id"),
    ({}, {"TEAMS_RESPONSE_DEADLINE_SECONDS": "soon"}, "TEAMS_RESPONSE_DEADLINE_SECONDS"),
    ({}, {"TEAMS_MEMBER_CACHE_SECONDS": "-1"}, "TEAMS_MEMBER_CACHE_SECONDS"),
])
def test_a_bad_value_names_the_key_or_variable(data, env, key):
    with pytest.raises(ConfigError) as err:
        TeamsConfig.from_settings(settings_from_mapping(data), env)
    assert err.value.key == key
