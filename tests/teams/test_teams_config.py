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


# ---- the transport and the Agents SDK's own variables (issue 18) ----------------------------------------

SDK = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"


def test_the_agents_sdk_is_the_default_transport_and_botbuilder_can_be_chosen():
    assert TeamsConfig.from_settings(Settings(), {}).transport == "agents"
    assert TeamsConfig.from_settings(Settings(), {"CAREDESK_TEAMS_TRANSPORT": "BotBuilder"}).transport == "botbuilder"


def test_the_agents_sdk_variables_give_the_identity_when_microsoft_app_ones_are_absent():
    config = TeamsConfig.from_settings(Settings(), {SDK + "CLIENTID": "sdk-app", SDK + "CLIENTSECRET": "sdk-secret",
                                                    SDK + "TENANTID": "sdk-tenant", SDK + "AUTHTYPE": "clientsecret"})
    assert (config.app_id, config.app_password, config.tenant_id) == ("sdk-app", "sdk-secret", "sdk-tenant")
    assert (config.app_type, config.auth_type) == ("SingleTenant", "ClientSecret")
    assert config.login_url == "https://login.microsoftonline.com/sdk-tenant"
    assert "sdk-secret" not in repr(config)


def test_the_microsoft_app_variables_win_over_the_sdk_ones():
    config = TeamsConfig.from_settings(Settings(), {SDK + "CLIENTID": "sdk-app", SDK + "CLIENTSECRET": "sdk-secret",
                                                    "MICROSOFT_APP_ID": "app", "MICROSOFT_APP_PASSWORD": "secret"})
    assert (config.app_id, config.app_password) == ("app", "secret")


def test_a_user_assigned_managed_identity_is_one_setting_under_either_name():
    ours = TeamsConfig.from_settings(Settings(), {"MICROSOFT_APP_ID": "mi", "MICROSOFT_APP_TYPE": "UserAssignedMSI"})
    theirs = TeamsConfig.from_settings(Settings(), {SDK + "CLIENTID": "mi", SDK + "AUTHTYPE": "UserManagedIdentity"})
    assert (ours.app_type, ours.auth_type) == (theirs.app_type, theirs.auth_type) == ("UserAssignedMSI",
                                                                                      "UserManagedIdentity")


def test_a_certificate_is_read_for_the_agents_sdk():
    config = TeamsConfig.from_settings(Settings(), {SDK + "CLIENTID": "app", SDK + "AUTHTYPE": "Certificate",
                                                    SDK + "CERTPFXFILE": "/etc/caredesk/bot.pfx"})
    assert (config.auth_type, config.certificate_file) == ("Certificate", "/etc/caredesk/bot.pfx")


@pytest.mark.parametrize("env,key", [
    ({"CAREDESK_TEAMS_TRANSPORT": "bolt"}, "CAREDESK_TEAMS_TRANSPORT"),
    ({SDK + "AUTHTYPE": "Password"}, SDK + "AUTHTYPE"),
    ({SDK + "AUTHTYPE": "Certificate"}, SDK + "CERTPFXFILE"),
    ({SDK + "AUTHTYPE": "SystemManagedIdentity", "CAREDESK_TEAMS_TRANSPORT": "botbuilder"}, SDK + "AUTHTYPE"),
])
def test_a_bad_transport_setting_names_the_variable(env, key):
    with pytest.raises(ConfigError) as err:
        TeamsConfig.from_settings(Settings(), env)
    assert err.value.key == key


def test_the_agents_transport_uses_msal_for_a_certificate_or_a_managed_identity_and_the_endpoint_for_a_secret():
    pytest.importorskip("microsoft_agents.authentication.msal")
    from microsoft_agents.authentication.msal import MsalAuth

    from adapters.teams.agents_transport import TokenEndpointProvider, make_token_provider

    env = {"MICROSOFT_APP_ID": "app", "MICROSOFT_APP_TENANT_ID": "tenant-guid", "MICROSOFT_APP_TYPE": "SingleTenant"}
    secret = make_token_provider(TeamsConfig.from_settings(Settings(), {**env, "MICROSOFT_APP_PASSWORD": "s"}))
    assert isinstance(secret, TokenEndpointProvider)
    assert secret.token_url == "https://login.microsoftonline.com/tenant-guid/oauth2/v2.0/token"
    certificate = make_token_provider(TeamsConfig.from_settings(Settings(), {
        **env, SDK + "AUTHTYPE": "Certificate", SDK + "CERTPFXFILE": "/etc/caredesk/bot.pfx"}))
    assert isinstance(certificate, MsalAuth)
    settings = certificate.configuration
    assert (settings.CLIENT_ID, settings.TENANT_ID, settings.CERT_PFX_FILE) == ("app", "tenant-guid",
                                                                               "/etc/caredesk/bot.pfx")
    assert settings.AUTHORITY == "https://login.microsoftonline.com/tenant-guid"
    managed = make_token_provider(TeamsConfig.from_settings(Settings(), {
        "MICROSOFT_APP_ID": "mi", "MICROSOFT_APP_TYPE": "UserAssignedMSI"}))
    assert isinstance(managed, MsalAuth) and managed.configuration.AUTH_TYPE == "UserManagedIdentity"
