"""The layers of CareDesk and the direction of their dependencies (rules of thumb 1 and 2).

    bot.domain, bot.i18n  ←  bot.protocol  ←  bot.dialogs  ←  bot.app  ←  adapters (channels, server, CLI)
                                   ↑                            ↑
                                cards/                  bot.store ports ← bot.store SQL

Every import counts, also one inside a function: an import hidden in a function is still a
dependency, and hiding one is how cycles used to be kept alive. `cards/` renders the protocol's
replies and nothing else; the core imports no channel, transport or card code; no module takes
part in an import cycle.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("bot", "adapters", "cards")
TRANSPORT_LIBRARIES = ("aiohttp", "slack_bolt", "slack_sdk", "botbuilder", "botframework", "msal",
                       "microsoft_agents", "jwt", "yarl")
DATABASE_LIBRARIES = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite")

# Which first-party packages each layer may import (besides itself and the standard library).
STORE_PORTS = ("bot.store.port", "bot.store.ports")
LAYERS: dict[str, tuple[str, ...]] = {
    "bot": (),  # the package itself: empty
    "bot.i18n": (),
    "bot.domain": ("bot.i18n",),
    "bot.protocol": ("bot.domain", "bot.i18n"),
    "bot.dialogs": ("bot.domain", "bot.i18n", "bot.protocol"),
    "bot.store.port": ("bot.domain",),
    "bot.store.ports": ("bot.domain",),
    "bot.app": ("bot.domain", "bot.i18n", "bot.protocol", "bot.dialogs", *STORE_PORTS),
    "bot.store": ("bot.domain", "bot.store"),
    "cards": ("bot.protocol",),
    "adapters": ("bot", "cards", "adapters"),
}
# Third-party libraries a layer must not import: the core has no transport; the pure layers no database.
FORBIDDEN_LIBRARIES: dict[str, tuple[str, ...]] = {
    "bot.i18n": TRANSPORT_LIBRARIES + DATABASE_LIBRARIES,
    "bot.domain": TRANSPORT_LIBRARIES + DATABASE_LIBRARIES,
    "bot.protocol": TRANSPORT_LIBRARIES + DATABASE_LIBRARIES,
    "bot.dialogs": TRANSPORT_LIBRARIES + DATABASE_LIBRARIES,
    "bot.app": TRANSPORT_LIBRARIES + DATABASE_LIBRARIES,
    "bot.store": TRANSPORT_LIBRARIES,
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def first_party_modules(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for package in FIRST_PARTY:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's scripts are loaded by Alembic, not imported
            modules[module_name(path, root)] = path
    return modules


def imports_of(path: Path, name: str, known: Iterable[str]) -> set[str]:
    """Every module `path` imports, at any depth of its code; `from package import submodule`
    counts as an import of the submodule when it is one of `known`."""
    known = set(known)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & known
            found.update(submodules)
            if len(submodules) < len(node.names):  # some names are the package's own
                found.add(module)
    return found


def layer_of(module: str, layers: Iterable[str]) -> str | None:
    """The most specific layer a module belongs to."""
    matches = [layer for layer in layers if module == layer or module.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def within(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def layer_violations(root: Path = ROOT) -> list[str]:
    modules = first_party_modules(root)
    problems = []
    for name, path in modules.items():
        layer = layer_of(name, LAYERS)
        if layer is None:
            problems.append(f"{name} belongs to no layer")
            continue
        allowed = (layer, *LAYERS[layer])
        for imported in sorted(imports_of(path, name, modules)):
            top = imported.split(".")[0]
            if top in FIRST_PARTY and not within(imported, allowed):
                problems.append(f"{name} ({layer}) imports {imported}")
            if within(top, FORBIDDEN_LIBRARIES.get(layer, ())):
                problems.append(f"{name} ({layer}) imports {imported}")
    return problems


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = first_party_modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path, name, modules):
            # An import of a name inside a module is an edge to that module.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module), by Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# ---- the rules -------------------------------------------------------------------------------------


def test_every_import_points_down_the_layers():
    assert layer_violations() == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


# ---- the checker can fail ----------------------------------------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in FIRST_PARTY:
        (root / package).mkdir(exist_ok=True)


def test_the_checker_sees_imports_against_the_layers(tmp_path):
    write_tree(tmp_path, {
        "bot/__init__.py": "",
        "bot/domain/__init__.py": "",
        "bot/domain/rules.py": "def f():\n    from bot.app import runner\n",  # hidden in a function
        "bot/app/__init__.py": "",
        "bot/app/runner.py": "from slack_bolt import App\nfrom bot.store import sql\n",
        "bot/store/__init__.py": "",
        "bot/store/sql.py": "",
        "cards/__init__.py": "",
        "cards/slack.py": "from bot.domain import rules\n",
    })
    assert layer_violations(tmp_path) == [
        "bot.app.runner (bot.app) imports bot.store.sql",
        "bot.app.runner (bot.app) imports slack_bolt",
        "bot.domain.rules (bot.domain) imports bot.app.runner",
        "cards.slack (cards) imports bot.domain.rules",
    ]


def test_the_checker_sees_a_cycle_through_a_function_level_import(tmp_path):
    write_tree(tmp_path, {
        "adapters/__init__.py": "",
        "adapters/a.py": "from adapters.b import x\n",
        "adapters/b.py": "x = 1\ndef later():\n    from adapters.c import y\n",
        "adapters/c.py": "from adapters import a\ny = 2\n",
        "adapters/d.py": "from adapters.a import z\n",
    })
    assert cycles(import_graph(tmp_path)) == [["adapters.a", "adapters.b", "adapters.c"]]


def test_relative_imports_are_resolved(tmp_path):
    write_tree(tmp_path, {
        "bot/__init__.py": "",
        "bot/domain/__init__.py": "from . import rules\n",
        "bot/domain/rules.py": "from ..app import runner\n",
        "bot/app/__init__.py": "",
        "bot/app/runner.py": "",
    })
    assert "bot.domain.rules (bot.domain) imports bot.app.runner" in layer_violations(tmp_path)
