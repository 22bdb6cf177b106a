"""Regenerate the Teams app files in this folder (manifest with a placeholder app id, fr/nl
localization files from the catalogs, and the two PNG icons drawn with zlib + struct).

    .venv/bin/python manifest/teams/generate.py

`caredesk teams-package --app-id ID --out caredesk-teams.zip` (adapters.teams.build_package)
builds the zip to upload, with the real ids filled in.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from adapters.teams.package import write_manifest_folder

if __name__ == "__main__":
    for path in write_manifest_folder(HERE):
        print(path.relative_to(HERE.parents[1]))
