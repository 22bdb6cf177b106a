"""Each Teams transport is imported only when chosen: with every package of the other SDK
uninstalled (refused by a meta-path finder in a subprocess), CareDesk's Teams channel runs on
the one left and the whole Teams suite passes on it; choosing the missing one says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOTBUILDER = "botbuilder,botframework,msrest"
AGENTS = "microsoft_agents"


def _run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _suite_on(transport: str, blocked: str) -> subprocess.CompletedProcess[str]:
    return _run("-m", "tests.teams.sdk_blocker", blocked, "--", "-q", "-x", "-rs", "-p", "no:cacheprovider",
                "tests/teams", "--ignore", "tests/teams/test_teams_transports.py", "-k", transport)


@pytest.mark.slow
@pytest.mark.parametrize("transport,blocked", [("agents", BOTBUILDER), ("botbuilder", AGENTS)])
def test_the_teams_suite_passes_with_the_other_sdk_uninstalled(transport, blocked):
    first = blocked.split(",")[0]
    try:
        __import__({"agents": "microsoft_agents.hosting.core", "botbuilder": "botbuilder.core"}[transport])
    except ImportError:
        pytest.fail(f"the {transport} SDK itself is not installed here")
    result = _suite_on(transport, blocked)
    tail = (result.stdout + result.stderr)[-3000:]
    assert result.returncode == 0, tail
    assert " passed" in result.stdout and " error" not in result.stdout, tail
    assert "SDK is not installed" not in result.stdout, tail  # the transport under test ran, every test of it
    assert f"{first} is still importable" not in result.stderr


@pytest.mark.parametrize("transport,blocked,install", [
    ("botbuilder", BOTBUILDER, "caredesk[botbuilder]"),
    ("agents", AGENTS, "'caredesk'"),
])
def test_choosing_an_uninstalled_transport_says_what_to_install(transport, blocked, install):
    script = (
        "import sys\n"
        "from tests.teams.sdk_blocker import block\n"
        f"block({blocked.split(',')!r})\n"
        "from adapters.teams.app import make_transport\n"
        "from adapters.teams.config import TeamsConfig\n"
        "from bot.domain.config import ConfigError, Settings\n"
        f"config = TeamsConfig.from_settings(Settings(), {{'CAREDESK_TEAMS_TRANSPORT': {transport!r},"
        " 'MICROSOFT_APP_ID': 'app', 'MICROSOFT_APP_PASSWORD': 'secret'})\n"
        "try:\n"
        "    make_transport(config)\n"
        "except ConfigError as exc:\n"
        "    print(exc); sys.exit(0)\n"
        "sys.exit(5)\n"
    )
    result = _run("-c", script, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CAREDESK_TEAMS_TRANSPORT" in result.stdout and install.strip("'") in result.stdout
