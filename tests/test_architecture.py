"""The core stays channel-agnostic: bot/ imports no channel or transport code, and cards/ only
the core's protocol: its replies and typed ids (rules of thumb 1 and 2)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = ("adapters", "cards", "aiohttp", "slack_bolt", "slack_sdk", "botbuilder", "botframework", "msal")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def offending(folder: str, allowed, root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted((root / folder).rglob("*.py")):
        for name in imported_modules(path):
            if not allowed(name):
                problems.append(f"{path.relative_to(root)} imports {name}")
    return problems


def test_core_imports_no_channel_or_transport_code():
    assert offending("bot", lambda name: name.split(".")[0] not in FORBIDDEN_IN_CORE) == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    # The test above must be able to fail: point it at a folder with a forbidden import.
    bad = tmp_path / "bot"
    bad.mkdir()
    (bad / "x.py").write_text("from slack_bolt import App\nimport aiohttp.web\n")
    assert len(offending("bot", lambda name: name.split(".")[0] not in FORBIDDEN_IN_CORE, tmp_path)) == 2


def test_cards_import_only_the_protocol():
    import sys

    stdlib = set(sys.stdlib_module_names)
    assert offending(
        "cards", lambda name: name.split(".")[0] in stdlib or name.startswith("bot.protocol.") or name.startswith("cards")
    ) == []
