"""The limits of a real `caredesk serve` process (slow tier, about half a minute): a thousand
idle connections with a low limit on open files, and oversize bodies sent again and again. Both
on free loopback ports, both bounded; they run with the rest of the hostile suite (and in CI)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.hostile.test_limits import closed_within
from tests.slack.conftest import BOT_TOKEN, ROOT, SIGNING_SECRET, sign

CAREDESK = str(ROOT / ".venv" / "bin" / "caredesk")
# The server's limit on open files (soft and hard): room for the cap, two backlogs (see
# adapters/server/web.make_room_for) and the rest, far from a thousand.
OPEN_FILES = 512
MAX_CONNECTIONS = 100
PROMPTLY = 10.0

pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _few_open_files() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


class Serve:
    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "caredesk.toml"
        config.write_text(f"[server]\nmax_connections = {MAX_CONNECTIONS}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "MICROSOFT_", "CAREDESK_"))}
        env.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'caredesk.db'}", CAREDESK_CONFIG=str(config),
                   SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                   SLACK_API_URL="http://127.0.0.1:9/api/", CAREDESK_LOG_LEVEL="WARNING")
        self.log_path = tmp_path / "serve.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([CAREDESK, "serve", "--host", "127.0.0.1", "--port", str(self.port)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp_path,
                                     preexec_fn=_few_open_files)

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log_path.read_text()
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("caredesk serve did not start")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
async def serve(tmp_path):
    server = Serve(tmp_path)
    try:
        await server.ready()
        yield server
    finally:
        server.stop()


async def _url_verification(http: aiohttp.ClientSession, url: str) -> None:
    body = json.dumps({"type": "url_verification", "token": "x", "challenge": "still-here"})
    async with http.post(url + "/slack/events", data=body.encode(),
                         headers={"Content-Type": "application/json", **sign(body)}) as response:
        assert response.status == 200
        assert (await response.json())["challenge"] == "still-here"


async def test_a_thousand_idle_connections_with_few_open_files(serve):
    """Before the cap: every accept() past the limit on open files failed, asyncio logged it
    thousands of times a second, and /healthz timed out."""
    idle = []
    try:
        for _ in range(1000):
            idle.append(await asyncio.open_connection("127.0.0.1", serve.port))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPTLY)) as http:
            for _ in range(3):
                async with http.get(serve.url + "/healthz") as response:
                    assert response.status == 200
                await _url_verification(http, serve.url)
    finally:
        for _, writer in idle:
            writer.close()
    log = serve.log_path.read_text()
    assert "out of system resource" not in log
    assert "closing the idle ones to make room" in log
    assert log.count("\n") < 20, log[-3000:]


async def _oversize(port: int, chunked: bool, size: int = 50 * 1024 * 1024) -> bytes:
    """One 50 MB POST, sent until the server answers or closes; what it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    writer.write(f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n"
                 .encode())
    piece = b"x" * (1024 * 1024)
    if chunked:
        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    try:
        for _ in range(size // (1024 * 1024)):
            writer.write(piece)
            await writer.drain()
    except ConnectionError:
        pass
    try:
        return await closed_within(reader, PROMPTLY)
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def test_oversize_bodies_again_and_again_do_not_grow_the_process(serve):
    """Before: every refused 50 MB POST was read up to 1 MiB and then, for ten seconds, thrown
    away as it came: RSS grew with each (115 MB -> 1.1 GB after 1,300)."""
    for chunked in (False, True):  # warm up: the allocator's first arenas
        for _ in range(20):
            await _oversize(serve.port, chunked)
    before = serve.rss_kib()
    answers = []
    for i in range(200):
        answers.append(await _oversize(serve.port, chunked=bool(i % 2)))
    grown_mib = (serve.rss_kib() - before) / 1024
    assert grown_mib < 32, f"RSS grew {grown_mib:.0f} MiB after 200 refused 50 MB bodies"
    # A 413, or nothing: the server closed while the client was still sending, and the reset
    # its writes then caused took the answer with it. Never anything else.
    assert all(a == b"" or a.startswith(b"HTTP/1.1 413 ") for a in answers), [a[:40] for a in answers]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPTLY)) as http:
        await _url_verification(http, serve.url)
