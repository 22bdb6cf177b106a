"""What a stranger may cost the server (adapters/server/limits.py): a head or a body trickled in
is cut off, idle connections make room for new ones under the connection cap, a body declared
too large is refused before it is read, and unverified requests never count towards the ack
pressure. Against a real server (`start_server`, as `caredesk serve` runs it) on a free loopback
port, with both channels mounted and short limits."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from adapters.server.clients import ClientAccessLogger
from adapters.server.limits import GATE_KEY, ConnectionGate, ConnectionLimits, start_server
from adapters.server.web import PRESSURE_KEY, build_app
from adapters.shared.pressure import AckPressure
from adapters.slack import mount as slack_mount
from adapters.teams import configure
from adapters.teams import mount as teams_mount
from bot.app.desk import Desk
from bot.domain.clock import ManualClock
from bot.domain.config import Settings
from bot.domain.directory import read_directory_file
from tests.hostile.conftest import ALL_TABLES, snapshot
from tests.hostile.test_http import dm_event_body
from tests.slack.conftest import NOW, ROOT, fast_retries, sign, slack_config
from tests.teams.conftest import ONE_TRANSPORT, teams_config

LIMITS = ConnectionLimits(max_connections=12, idle_timeout=1.0, body_timeout=1.0)
# Generous bounds for what must happen "at once" or "after the limit": liveness, not speed.
PROMPTLY = 10.0


@dataclass
class Served:
    desk: Desk
    host: str
    port: int
    gate: ConnectionGate
    pressure: AckPressure
    fake_slack: Any
    runner: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)


async def serve_both(store: Any, fake_slack: Any, fake_bf: Any, limits: ConnectionLimits = LIMITS,
                     trusted_proxies: frozenset[str] = frozenset(), host: str = "127.0.0.1") -> Served:
    await store.replace_directory(read_directory_file(ROOT / "examples" / "directory.yaml"))
    desk = Desk(Settings(), store, ManualClock(NOW))
    teams = configure(desk, config=teams_config(fake_bf))
    slack = slack_config(fake_slack)
    app = build_app(desk, channels=(lambda a: slack_mount(a, desk, config=slack, retry_handlers=fast_retries()),
                                    lambda a: teams_mount(a, teams)), limits=limits, trusted_proxies=trusted_proxies)
    # As `caredesk serve` runs it (its access log prints the client's address).
    runner, site = await start_server(app, host, 0, limits, access_log=logging.getLogger("caredesk.web"),
                                      access_log_class=ClientAccessLogger)
    return Served(desk, host, site.port, app[GATE_KEY], app[PRESSURE_KEY], fake_slack, runner)


@pytest_asyncio.fixture
async def served(hostile_store, fake_slack, fake_bf):
    server = await serve_both(hostile_store, fake_slack, fake_bf)
    try:
        yield server
    finally:
        await server.runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection; fails if it is still open."""
    received = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def trickle(writer: asyncio.StreamWriter, data: bytes, pause: float = 0.1) -> None:
    """One byte at a time, until the server closes the connection."""
    for byte in data:
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(pause)


def _signed_post(body: str, content_length: int | None = None) -> bytes:
    headers = {"Host": "x", "Content-Type": "application/json", **sign(body),
               "Content-Length": str(len(body.encode()) if content_length is None else content_length)}
    head = "POST /slack/events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body.encode()


@ONE_TRANSPORT
async def test_a_head_trickled_in_is_cut_off(served):
    reader, writer = await served.connect()
    request = _signed_post(dm_event_body())
    head = request[:request.index(b"\r\n\r\n")]
    sender = asyncio.create_task(trickle(writer, head))
    try:
        # Still sending its head when the idle timeout is up: closed, nothing answered.
        assert await closed_within(reader, LIMITS.idle_timeout + PROMPTLY) == b""
        assert not sender.done()
    finally:
        sender.cancel()
        writer.close()


@ONE_TRANSPORT
async def test_a_body_trickled_in_is_cut_off_and_changes_nothing(served, caplog):
    before = await snapshot(served.desk.store)
    reader, writer = await served.connect()
    request = _signed_post(dm_event_body())
    split = request.index(b"\r\n\r\n") + 4
    writer.write(request[:split])
    sender = asyncio.create_task(trickle(writer, request[split:]))
    try:
        await closed_within(reader, LIMITS.body_timeout + PROMPTLY)
        assert not sender.done()
    finally:
        sender.cancel()
        writer.close()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert any("body took longer" in r.getMessage() for r in caplog.records)
    assert await snapshot(served.desk.store, ALL_TABLES) == before
    assert served.pressure.in_flight == 0


@ONE_TRANSPORT
async def test_idle_connections_make_room_for_healthz_and_signed_requests(served):
    idle = [await served.connect() for _ in range(3 * LIMITS.max_connections)]
    try:
        await asyncio.sleep(0.1)
        assert len(served.gate.open) <= LIMITS.max_connections
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPTLY)) as http:
            async with http.get(served.url + "/healthz") as response:
                assert response.status == 200
            body = dm_event_body("help", "EvIDLE1")
            async with http.post(served.url + "/slack/events", data=body.encode(),
                                 headers={"Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200
        # The oldest idle connections were closed to make room (the first ones opened).
        assert await closed_within(idle[0][0], PROMPTLY) == b""
        assert served.gate.evicted >= 2 * LIMITS.max_connections
    finally:
        for _, writer in idle:
            writer.close()


@ONE_TRANSPORT
async def test_when_every_connection_has_a_request_in_hand_a_new_one_gets_a_503(served):
    # Each holds a request whose body is still coming (in hand until the body timeout).
    busy = []
    for i in range(LIMITS.max_connections):
        reader, writer = await served.connect()
        request = _signed_post(dm_event_body("help", f"EvBUSY{i}"))
        writer.write(request[:request.index(b"\r\n\r\n") + 4])
        busy.append((reader, writer))
    try:
        for _ in range(100):
            if len(served.gate.busy) == LIMITS.max_connections:
                break
            await asyncio.sleep(0.02)
        assert len(served.gate.busy) == LIMITS.max_connections
        reader, writer = await served.connect()
        answer = await closed_within(reader, PROMPTLY)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "busy"
    finally:
        for _, writer in busy:
            writer.close()


@ONE_TRANSPORT
async def test_a_body_declared_too_large_is_refused_before_it_is_read(served):
    reader, writer = await served.connect()
    # 50 MB announced, 10 bytes sent: the answer comes at once, without waiting for the rest.
    writer.write(_signed_post("0123456789", content_length=50 * 1024 * 1024)[:-0 or None])
    answer = await closed_within(reader, PROMPTLY)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"payload_too_large" in answer


@pytest.mark.parametrize("path", ["/slack/events", "/api/messages"])
async def test_unverified_requests_never_count_towards_the_ack_pressure(served, path):
    changes: list[bool] = []
    served.pressure.high = 1  # one verified request in hand would make it busy
    served.pressure.subscribe(changes.append)
    # Strangers: bodies that never finish arriving, and complete unsigned requests.
    held = []
    for _ in range(8):
        reader, writer = await served.connect()
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 1000\r\n\r\n{{".encode())
        held.append(writer)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROMPTLY)) as http:
        for i in range(5):
            async with http.post(served.url + path, data=dm_event_body("help", f"EvUNSIGNED{i}").encode(),
                                 headers={"Content-Type": "application/json"}) as response:
                assert response.status == 401
        await asyncio.sleep(0.2)
        assert changes == [] and served.pressure.in_flight == 0
        if path == "/slack/events":
            # A verified one does count (so the test can fail).
            body = dm_event_body("help", "EvSIGNED1")
            async with http.post(served.url + path, data=body.encode(),
                                 headers={"Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200
            assert changes[:1] == [True]
    for writer in held:
        writer.close()
