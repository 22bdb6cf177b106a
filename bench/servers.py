"""Databases and server processes of the benchmark: a fresh SQLite file or a fresh PostgreSQL
database (created on 127.0.0.1:5432 and dropped afterwards), CareDesk server processes
(`caredesk serve`) and the peers (bench/peers.py), all on loopback ports."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    APP_ID,
    APP_PASSWORD,
    BOT_TOKEN,
    CAREDESK,
    FIXED_NOW,
    ISSUER,
    LOOPBACK,
    ROOT,
    SIGNING_SECRET,
    VENV_PYTHON,
    cpu_seconds,
    free_port,
    rss_kib,
)

PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass
class Database:
    backend: str
    url: str
    name: str = ""
    path: Path | None = None

    async def drop(self) -> None:
        if self.backend == "postgresql":
            import asyncpg

            conn = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            finally:
                await conn.close()
        elif self.path is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)


async def create_database(backend: str, tag: str, workdir: Path) -> Database:
    if backend == "sqlite":
        path = workdir / f"bench-{tag}.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return Database("sqlite", f"sqlite+aiosqlite:///{path}", path=path)
    if backend == "postgresql":
        import asyncpg

        name = f"caredesk_bench_{tag}".lower().replace("-", "_")
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return Database("postgresql", f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name=name)
    raise ValueError(f"unknown backend {backend!r}")


def caredesk_env(database_url: str, base_url: str) -> dict[str, str]:
    """The environment of a CareDesk process talking to the benchmark's fakes only."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {
        **keep,
        "DATABASE_URL": database_url,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": base_url + "/api/",
        "MICROSOFT_APP_ID": APP_ID,
        "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
        "BOTFRAMEWORK_OPENID_METADATA_URL": base_url + "/openid",
        "BOTFRAMEWORK_TOKEN_ISSUER": ISSUER,
        "BOTFRAMEWORK_EMULATOR_OPENID_METADATA_URL": base_url + "/openid",
        "BOTFRAMEWORK_TOKEN_URL": base_url + "/token",
        "BOTFRAMEWORK_OAUTH_SCOPE": "https://api.botframework.com",
        "CAREDESK_FIXED_NOW": FIXED_NOW,
        # The access log (one INFO line per request) is left out: warnings and errors are kept.
        "CAREDESK_LOG_LEVEL": os.environ.get("BENCH_CAREDESK_LOG_LEVEL", "WARNING"),
    }


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> str:
    done = subprocess.run([str(CAREDESK), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"caredesk {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen
    log_path: Path
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def log_problems(self) -> dict[str, Any]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = text.splitlines()
        errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
        warnings = [line for line in lines if " WARNING " in line]
        return {"errors": len(errors), "tracebacks": text.count("Traceback (most recent call last)"),
                "warnings": len(warnings), "error_samples": errors[:5], "warning_samples": warnings[:5]}


def _spawn(name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path, cwd: Path) -> Proc:
    log_path = logdir / f"{name}.log"
    log = log_path.open("w")
    popen = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return Proc(name, port, popen, log_path)


async def wait_ready(procs: list[Proc], path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        for proc in procs:
            while True:
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}: "
                                       f"{proc.log_path.read_text(errors='replace')[-2000:]}")
                try:
                    async with session.get(proc.url + path, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            break
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} did not become ready in {START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.2)


async def start_caredesk(n: int, env: dict[str, str], logdir: Path, tag: str, workers: int | None = None) -> list[Proc]:
    """N `caredesk serve` processes; `workers` given: `--workers N` on the command line (as an
    operator starts it), else the environment's CAREDESK_WORKERS decides."""
    procs = []
    extra = ["--workers", str(workers)] if workers is not None else []
    for i in range(n):
        port = free_port()
        procs.append(_spawn(f"caredesk-{tag}-{i}",
                            [str(CAREDESK), "serve", "--host", LOOPBACK, "--port", str(port), *extra],
                            env, port, logdir, logdir))
    await wait_ready(procs, "/readyz")
    return procs


async def start_peer(kind: str, api_url: str, logdir: Path, database_url: str = "") -> Proc:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    extra = ["--database-url", database_url] if database_url else []
    proc = _spawn(f"peer-{kind}", [str(VENV_PYTHON), str(ROOT / "bench" / "peers.py"), kind, "--port", str(port),
                                   "--api-url", api_url, *extra], env, port, logdir, ROOT)
    await wait_ready([proc], "/healthz")
    return proc


async def stop(procs: list[Proc]) -> None:
    """SIGINT (a clean shutdown: background work finishes), then SIGKILL after a while."""
    for proc in procs:
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc in procs:
        while proc.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(timeout=5)
