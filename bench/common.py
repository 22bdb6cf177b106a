"""Shared pieces of the benchmark: constants, Slack request signing, payload builders, latency
statistics and small process helpers. Standard library + aiohttp only."""

from __future__ import annotations

import itertools

import hashlib
import hmac
import json
import math
import socket
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
CAREDESK = ROOT / ".venv" / "bin" / "caredesk"

# Secrets of the benchmark's own fakes (never real ones).
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-bench-token"
TEAM = "TBENCH"
BOT_USER = "UBENCHBOT"
APP_ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
APP_PASSWORD = "bench-client-secret"
ISSUER = "https://api.botframework.com"
KID = "bench-key-1"
TENANT = "tenant-bench"
# Office hours on a Thursday: the dialog is the same whenever the benchmark runs.
FIXED_NOW = "2026-11-26T10:00"
LOOPBACK = "127.0.0.1"

# The whole guided new-ticket dialog of a person who is not in the directory (contact details
# come from Slack/Teams, company is asked): 10 messages, the last one creates the ticket.
DIALOG = (
    "ticket",
    "1",  # incident
    "1",  # contact details correct
    "Bench Brewery {n}",  # company
    "Invoicing module",
    "Printing an invoice fails with error 42 since the update of this morning",
    "Open an invoice and press Print",
    "Restarted the PC, same on another PC",
    "2",  # urgency normal
    "1",  # create the ticket
)
# Teams: "ticket" alone is the manifest command that opens the form card, so the guided dialog
# is started with free text; Teams gives no phone number, so the dialog asks for it: 11 messages.
TEAMS_DIALOG = ("new ticket", "1", "1", "+32 3 555 00 00") + DIALOG[3:]

# What the modal submission fills in (block_id = field name).
FORM_VALUES = {
    "kind": "service_request",
    "name": "Bench Person",
    "phone": "+32 3 555 00 00",
    "company": "Bench Brewery",
    "module": "Stock module",
    "description": "Please add a second warehouse to our stock module configuration",
    "urgency": "low",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Live child processes (a server's `--workers`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def cpu_seconds(pid: int, with_children: bool = True) -> float:
    """User + system CPU time of a process so far, with its live child processes' (workers)."""
    import os

    pids = [pid] + (children(pid) if with_children else [])
    ticks = 0
    for p in pids:
        try:
            fields = _stat(p)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PostgresBackendsCpu:
    """CPU time of the PostgreSQL backends serving one database, from /proc: the processes
    titled `postgres: [CLUSTER: ]USER DATABASE ...`. Only that database's, so that other users of the same
    PostgreSQL (tests on a shared host) do not count; PostgreSQL's shared background processes
    (WAL writer, checkpointer) are left out for the same reason. A backend's CPU is lost when
    it exits, so `sample()` is called often (`run()`) and the last value seen of each backend
    counts; backends that already existed count from their value at the start."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.start: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self._kind: dict[int, bool] = {}  # pid -> one of this database's backends

    def _ours(self, pid: int) -> bool:
        known = self._kind.get(pid)
        if known is None:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                return False
            # "postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE" (Debian sets cluster_name)
            parts = title.split()
            known = bool(parts) and parts[0] == "postgres:" and self.database in parts[1:5]
            self._kind[pid] = known
        return known

    def _ticks(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if not self._ours(pid):
                continue
            try:
                fields = _stat(pid)
            except OSError:
                continue
            out[pid] = int(fields[11]) + int(fields[12])
        return out

    def begin(self) -> None:
        self.start = self._ticks()
        self.last = dict(self.start)

    def sample(self) -> None:
        self.last.update(self._ticks())

    def seconds(self) -> float:
        import os

        ticks = sum(value - self.start.get(pid, 0) for pid, value in self.last.items())
        return ticks / os.sysconf("SC_CLK_TCK")

    async def run(self, every: float = 0.5) -> None:
        """Sample until cancelled."""
        import asyncio

        while True:
            await asyncio.sleep(every)
            self.sample()


# ---- Slack requests --------------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far, all cores together (/proc/stat)."""
    import os

    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def slack_headers(body: str, content_type: str, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 of `v0:timestamp:body`."""
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def dm_event(user: str, text: str, event_id: str) -> str:
    """A `message.im` event_callback as Slack sends it."""
    now = time.time()
    return json.dumps({
        "token": "one-long-verification-token",
        "team_id": TEAM,
        "api_app_id": "ABENCH",
        "event": {"type": "message", "channel": f"D{user}", "user": user, "text": text,
                  "ts": f"{now:.6f}", "event_ts": f"{now:.6f}", "channel_type": "im"},
        "type": "event_callback",
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True, "is_enterprise_install": False}],
        "event_id": event_id,
        "event_time": int(now),
    })


def slash_command(user: str, command: str, text: str, response_url: str, trigger_id: str) -> str:
    return urllib.parse.urlencode({
        "token": "verification_token", "team_id": TEAM, "team_domain": "bench", "channel_id": "CBENCH",
        "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command, "text": text,
        "api_app_id": "ABENCH", "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": trigger_id,
    })


_TRIGGERS = itertools.count(1)


def view_submission(user: str, view: Mapping[str, Any], values: Mapping[str, str]) -> str:
    """A modal's submission: the view as it was opened, with the state of each input."""
    state: dict[str, Any] = {}
    for block in view.get("blocks", ()):
        if block.get("type") != "input":
            continue
        element = block["element"]
        value = values.get(block["block_id"])
        entry: dict[str, Any] = {"type": element["type"]}
        if element["type"] == "static_select":
            entry["selected_option"] = (
                next((o for o in element.get("options", ()) if o["value"] == value), None) if value else None)
        else:
            entry["value"] = value
        state[block["block_id"]] = {element["action_id"]: entry}
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and metadata.startswith("{"):
        # Each person submits the modal opened for them: it carries who they are (as the
        # benchmark's fake users.info describes them).
        person = json.loads(metadata)
        if person.get("id") != user:
            person.update(id=user, name=f"Bench {user}", email=f"{user.lower().replace(':', '-')}@bench.example",
                          locale="en-US", phone="+32 3 555 00 00")
            view = {**view, "private_metadata": json.dumps(person)}
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "bench"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "ABENCH",
        "token": "verification_token",
        # Slack's trigger ids are unique per interaction (two submissions never share a body,
        # hence a signature): the server ignores a repeated signed body as a replay.
        "trigger_id": f"{user}.submit.{next(_TRIGGERS)}",
        "view": {**{k: v for k, v in view.items() if k not in ("state",)}, "team_id": TEAM, "type": "modal",
                 "state": {"values": state}, "app_id": "ABENCH", "bot_id": "BBENCH",
                 "previous_view_id": None, "root_view_id": view.get("id"), "external_id": "",
                 "app_installed_team_id": TEAM},
        "response_urls": [],
    }
    return "payload=" + urllib.parse.quote(json.dumps(payload))


# ---- statistics ------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


@dataclass
class Recorder:
    """Latencies (seconds) and errors by kind of request."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    first: float | None = None
    last: float | None = None
    wall: float = 0.0

    def ok(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        now = time.perf_counter()
        self.first = now - seconds if self.first is None else min(self.first, now - seconds)
        self.last = now if self.last is None else max(self.last, now)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {what}")

    def summary(self, wall_seconds: float | None = None) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for kind in sorted(set(self.latencies) | set(self.errors)):
            values = sorted(self.latencies.get(kind, []))
            kinds[kind] = {
                "count": len(values),
                "errors": self.errors.get(kind, 0),
                "p50_ms": round(percentile(values, 50) * 1000, 2) if values else None,
                "p95_ms": round(percentile(values, 95) * 1000, 2) if values else None,
                "p99_ms": round(percentile(values, 99) * 1000, 2) if values else None,
                "max_ms": round(values[-1] * 1000, 2) if values else None,
            }
        return {"kinds": kinds, "errors": sum(self.errors.values()), "error_samples": self.error_samples,
                "wall_s": round(wall_seconds, 3) if wall_seconds is not None else None}


def all_latencies(recorder: Recorder, prefix: str) -> list[float]:
    values: list[float] = []
    for kind, lat in recorder.latencies.items():
        if kind.startswith(prefix):
            values.extend(lat)
    return sorted(values)
