"""The Teams app package: manifest and localization files valid against the official schemas,
icons of the right size, the committed files current, and the zip with the ids filled in."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from adapters.teams import build_package
from adapters.teams.channel import COMMANDS, command_titles
from adapters.teams.package import MANIFEST_VERSION, package_files
from tests.teams.conftest import platform_file, regex_validator

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "manifest" / "teams"
APP_ID = "6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def schema(name: str) -> dict:
    return json.loads(platform_file("teams", "manifest-schema", name).read_text(encoding="utf-8"))


def errors(validator, document) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IDAT":
            idat += body
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color_type) == (8, 6)  # 8-bit RGBA
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    rows = [raw[i * stride + 1:(i + 1) * stride] for i in range(height)]
    assert all(raw[i * stride] == 0 for i in range(height))
    return width, height, rows


def test_manifest_is_valid_against_the_teams_schema():
    manifest = json.loads((FOLDER / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["manifestVersion"] == MANIFEST_VERSION
    validator = regex_validator(schema(f"MicrosoftTeams.schema.v{MANIFEST_VERSION}.json"))
    assert errors(validator, manifest) == []
    bot = manifest["bots"][0]
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert [c["title"] for c in bot["commandLists"][0]["commands"]] == list(COMMANDS)
    broken = {**manifest, "id": "not-a-guid"}
    assert errors(validator, broken), "the validator must be able to fail"


def test_manifest_is_also_valid_against_the_1_29_schema_checked_with_regex():
    # 1.29 uses \\p{L}, which Python's re rejects: the regex-based validator handles it.
    manifest = json.loads((FOLDER / "manifest.json").read_text(encoding="utf-8"))
    manifest = {**manifest, "manifestVersion": "1.29",
                "$schema": manifest["$schema"].replace(MANIFEST_VERSION, "1.29")}
    assert errors(regex_validator(schema("MicrosoftTeams.schema.v1.29.json")), manifest) == []


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_localization_files(lang):
    manifest = json.loads((FOLDER / "manifest.json").read_text(encoding="utf-8"))
    files = {entry["languageTag"]: entry["file"] for entry in manifest["localizationInfo"]["additionalLanguages"]}
    strings = json.loads((FOLDER / files[lang]).read_text(encoding="utf-8"))
    assert errors(regex_validator(schema("MicrosoftTeams.Localization.schema.json")), strings) == []
    titles = [strings[f"bots[0].commandLists[0].commands[{i}].title"] for i in range(len(COMMANDS))]
    # Each translated title is recognised as its command by the bot.
    assert [command_titles()[t] for t in titles] == list(COMMANDS)
    assert strings["description.short"] != manifest["description"]["short"]


def test_committed_files_are_current():
    for name, data in package_files().items():
        assert (FOLDER / name).read_bytes() == data, f"manifest/teams/{name} is stale: run manifest/teams/generate.py"


def test_icons():
    width, height, rows = read_png((FOLDER / "color.png").read_bytes())
    assert (width, height) == (192, 192)
    assert all(row[i + 3] == 255 for row in rows for i in range(0, len(row), 4))  # full colour, opaque
    width, height, rows = read_png((FOLDER / "outline.png").read_bytes())
    assert (width, height) == (32, 32)
    pixels = [tuple(row[i:i + 4]) for row in rows for i in range(0, len(row), 4)]
    assert set(pixels) == {(255, 255, 255, 255), (0, 0, 0, 0)}  # white on transparent
    assert pixels[0] == (0, 0, 0, 0)


def test_build_package(tmp_path):
    out = build_package(APP_ID, tmp_path / "dist" / "caredesk-teams.zip", version="1.2.3")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "fr.json", "manifest.json", "nl.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID and manifest["version"] == "1.2.3"
    validator = regex_validator(schema(f"MicrosoftTeams.schema.v{MANIFEST_VERSION}.json"))
    assert errors(validator, manifest) == []
    with pytest.raises(ValueError, match="GUID"):
        build_package("my-bot", tmp_path / "x.zip")
