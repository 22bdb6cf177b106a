"""The Teams app package: manifest (schema 1.17), icons and fr/nl localization files, zipped.

`build_package(app_id, out)` writes the zip to upload in Teams (Apps → Manage your apps →
Upload an app) or the Developer Portal. The committed files in manifest/teams/ are this
module's output (`python manifest/teams/generate.py` regenerates them; a test
checks they are current): the manifest and localization texts come from the catalogs
(bot/i18n/locales, section [teams]), the icons from a small PNG writer (zlib + struct).
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from adapters.teams.channel import COMMANDS
from bot.i18n import translate

MANIFEST_VERSION = "1.17"
MANIFEST_SCHEMA = f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
LOCALIZATION_SCHEMA = (
    f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.Localization.schema.json"
)
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_LANGUAGE = "en"
ADDITIONAL_LANGUAGES = ("fr", "nl")
BOT_SCOPES = ("personal", "team", "groupChat")
ACCENT = (0x1F, 0x6F, 0xB2)
COLOR_ICON, OUTLINE_ICON = "color.png", "outline.png"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
DEFAULT_WEBSITE = "https://www.caresolutions.be"


# ---- manifest ---------------------------------------------------------------------------------------


def manifest(app_id: str = PLACEHOLDER_ID, *, bot_id: str | None = None, version: str = "1.0.0",
             website_url: str = DEFAULT_WEBSITE, privacy_url: str | None = None,
             terms_url: str | None = None, developer_name: str = "Care Solutions") -> dict[str, Any]:
    t = lambda key: translate(DEFAULT_LANGUAGE, key)
    for name, value in (("app_id", app_id), ("bot_id", bot_id or app_id)):
        if not GUID.match(value):
            raise ValueError(f"{name} must be a GUID (the Azure Bot's Microsoft App ID), got {value!r}")
    if not SEMVER.match(version):
        raise ValueError(f"version must be MAJOR.MINOR.PATCH, got {version!r}")
    return {
        "$schema": MANIFEST_SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {
            "name": developer_name,
            "websiteUrl": website_url,
            "privacyUrl": privacy_url or website_url.rstrip("/") + "/privacy",
            "termsOfUseUrl": terms_url or website_url.rstrip("/") + "/terms",
        },
        "name": {"short": t("teams.app.short_name"), "full": t("teams.app.full_name")},
        "description": {"short": t("teams.app.short_description"), "full": t("teams.app.full_description")},
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": "#%02X%02X%02X" % ACCENT,
        "bots": [{
            "botId": bot_id or app_id,
            "scopes": list(BOT_SCOPES),
            "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [{
                "scopes": list(BOT_SCOPES),
                "commands": [
                    {"title": t(f"teams.command.{c}.title"), "description": t(f"teams.command.{c}.description")}
                    for c in COMMANDS
                ],
            }],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
        "localizationInfo": {
            "defaultLanguageTag": DEFAULT_LANGUAGE,
            "additionalLanguages": [{"languageTag": lang, "file": f"{lang}.json"} for lang in ADDITIONAL_LANGUAGES],
        },
    }


def localization(lang: str) -> dict[str, Any]:
    t = lambda key: translate(lang, key)
    strings: dict[str, Any] = {
        "$schema": LOCALIZATION_SCHEMA,
        "name.short": t("teams.app.short_name"),
        "name.full": t("teams.app.full_name"),
        "description.short": t("teams.app.short_description"),
        "description.full": t("teams.app.full_description"),
    }
    for index, command in enumerate(COMMANDS):
        strings[f"bots[0].commandLists[0].commands[{index}].title"] = t(f"teams.command.{command}.title")
        strings[f"bots[0].commandLists[0].commands[{index}].description"] = t(f"teams.command.{command}.description")
    return strings


# ---- icons (PNG, standard library only) -----------------------------------------------------------------


def png(width: int, height: int, pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """An 8-bit RGBA PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(v for pixel in row for v in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _bubble(x: float, y: float, size: float) -> bool:
    """A speech bubble (rounded rectangle with a tail) in a size×size square."""
    s = size
    left, right, top, bottom, radius = 0.16 * s, 0.84 * s, 0.2 * s, 0.68 * s, 0.12 * s
    cx = min(max(x, left + radius), right - radius)
    cy = min(max(y, top + radius), bottom - radius)
    if left <= x <= right and top <= y <= bottom and (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2:
        return True
    # The tail: a triangle under the bubble's left half.
    tx0, tx1, ty0, ty1 = 0.3 * s, 0.48 * s, bottom, 0.84 * s
    if ty0 <= y <= ty1:
        progress = (y - ty0) / (ty1 - ty0)
        return tx0 <= x <= tx1 - (tx1 - tx0) * progress
    return False


def _dot(x: float, y: float, size: float) -> bool:
    return any((x - cx * size) ** 2 + (y - 0.44 * size) ** 2 <= (0.055 * size) ** 2 for cx in (0.34, 0.5, 0.66))


def color_icon(size: int = 192) -> bytes:
    """Full colour: a white speech bubble with three dots on the accent colour."""
    accent = (*ACCENT, 255)
    white = (255, 255, 255, 255)
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            x, y = px + 0.5, py + 0.5
            row.append(accent if _dot(x, y, size) or not _bubble(x, y, size) else white)
        rows.append(row)
    return png(size, size, rows)


def outline_icon(size: int = 32) -> bytes:
    """Outline: the same bubble in white on a transparent background (Teams' rule)."""
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            x, y = px + 0.5, py + 0.5
            row.append((255, 255, 255, 255) if _bubble(x, y, size) and not _dot(x, y, size) else (0, 0, 0, 0))
        rows.append(row)
    return png(size, size, rows)


# ---- files and zip ----------------------------------------------------------------------------------------


def package_files(app_id: str = PLACEHOLDER_ID, **manifest_options: Any) -> dict[str, bytes]:
    def dump(data: dict[str, Any]) -> bytes:
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    files = {"manifest.json": dump(manifest(app_id, **manifest_options))}
    files.update({f"{lang}.json": dump(localization(lang)) for lang in ADDITIONAL_LANGUAGES})
    files[COLOR_ICON] = color_icon()
    files[OUTLINE_ICON] = outline_icon()
    return files


def build_package(app_id: str, out: Path, *, bot_id: str | None = None, version: str = "1.0.0",
                  website_url: str = DEFAULT_WEBSITE, privacy_url: str | None = None,
                  terms_url: str | None = None) -> Path:
    """Write the Teams app package (zip) for this bot registration; return its path.

    `app_id` is the Azure Bot's Microsoft App ID (also used as the Teams app id unless the
    registration uses another bot id). Raises ValueError for an id that is not a GUID.
    """
    files = package_files(app_id, bot_id=bot_id, version=version, website_url=website_url,
                          privacy_url=privacy_url, terms_url=terms_url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            # Files at the root of the zip, no folders: what Teams expects.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return out


def write_manifest_folder(folder: Path) -> list[Path]:
    """(Re)write the committed manifest/teams/ files (placeholder app id)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in package_files().items():
        (folder / name).write_bytes(data)
        written.append(folder / name)
    return written

