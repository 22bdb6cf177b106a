"""Makes packages look uninstalled in this interpreter (a meta-path finder that refuses them), to
run a Teams transport's tests as on a machine where the other transport's SDK was never installed.

    python -m tests.teams.sdk_blocker botbuilder,botframework -- <pytest arguments>
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from typing import Any


class Uninstalled(importlib.abc.MetaPathFinder):
    def __init__(self, packages: Sequence[str]):
        self.packages = tuple(packages)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked for this test)", name=fullname)
        return None


def block(packages: Sequence[str]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]
    sys.meta_path.insert(0, Uninstalled(packages))


def main(argv: list[str]) -> int:
    packages, _, pytest_args = argv[0], argv[1], argv[2:]
    block(packages.split(","))
    for name in packages.split(","):
        try:
            __import__(name)
        except ModuleNotFoundError:
            continue
        print(f"{name} is still importable: the blocker does not work", file=sys.stderr)
        return 3
    import pytest

    return int(pytest.main(pytest_args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
