"""The server's ack pressure and how its worker processes hear it: Slack's requests in hand are
counted (not the other routes'), and each change goes down a pipe to every worker process
`serve --workers` starts, which follows it (`caredesk worker --pressure-fd`)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.server.cli import _hear_pressure
from adapters.shared.pressure import AckPressure, counted
from adapters.server.web import WorkerProcesses


async def test_the_requests_in_hand_of_a_counted_route_are_counted_and_no_others() -> None:
    pressure = AckPressure(high=20, hold=60)
    release = asyncio.Event()
    inside = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal inside
        inside += 1
        await release.wait()
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/slack/events", counted(pressure, slow))
    app.router.add_get("/healthz", slow)
    app.router.add_get("/quick", health)
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        async def post() -> int:
            async with http.post(server.make_url("/slack/events"), data=b"{}") as r:
                return r.status

        async def get(path: str) -> int:
            async with http.get(server.make_url(path)) as r:
                return r.status

        checks = [asyncio.create_task(get("/healthz")) for _ in range(25)]
        for _ in range(200):
            if inside == 25:
                break
            await asyncio.sleep(0.01)
        assert inside == 25 and pressure.in_flight == 0 and not pressure.busy  # not a counted route
        posts = [asyncio.create_task(post()) for _ in range(25)]
        for _ in range(200):
            if inside == 50:
                break
            await asyncio.sleep(0.01)
        assert pressure.in_flight == 25 and pressure.busy
        release.set()
        assert await asyncio.gather(*posts, *checks) == [200] * 50
        assert await get("/quick") == 200
    assert pressure.in_flight == 0  # answered: out of hand, whatever happened


async def test_a_worker_process_follows_its_servers_pressure_through_the_pipe() -> None:
    pressure = AckPressure(high=1, hold=60)
    read_end, write_end = os.pipe()
    _hear_pressure(read_end, pressure)
    try:
        os.write(write_end, b"1")
        await asyncio.sleep(0.05)
        assert pressure.busy
        os.write(write_end, b"1010")  # several changes read at once: the last one counts
        await asyncio.sleep(0.05)
        assert not pressure.busy
        os.write(write_end, b"1")
        await asyncio.sleep(0.05)
        assert pressure.busy
    finally:
        os.close(write_end)  # the server is gone
    await asyncio.sleep(0.05)
    assert not pressure.busy  # no server, no pressure
    assert not asyncio.get_running_loop().remove_reader(read_end)  # it stopped listening by itself


class EchoWorkers(WorkerProcesses):
    """Worker processes that only copy what they hear on their pressure pipe to a file each."""

    def __init__(self, count: int, pressure: AckPressure, out: Path) -> None:
        super().__init__(count, None, pressure)
        self.out = out
        self.spawned = 0

    def _command(self, pressure_fd: int | None) -> list[str]:
        self.spawned += 1
        script = ("import os, sys\n"
                  "fd, path = int(sys.argv[1]), sys.argv[2]\n"
                  "while True:\n"
                  "    data = os.read(fd, 64)\n"
                  "    if not data:\n"
                  "        break\n"
                  "    with open(path, 'ab') as f:\n"
                  "        f.write(data)\n")
        return [sys.executable, "-c", script, str(pressure_fd), str(self.out / f"heard-{self.spawned}")]


async def _heard(path: Path, expected: bytes) -> bytes:
    for _ in range(300):
        if path.exists() and path.read_bytes() == expected:
            break
        await asyncio.sleep(0.01)
    return path.read_bytes() if path.exists() else b""


async def test_every_worker_process_hears_each_change_and_a_new_one_hears_the_pressure_at_once(tmp_path: Path) -> None:
    pressure = AckPressure(high=1, hold=60)
    workers = EchoWorkers(2, pressure, tmp_path)
    await workers.start()
    try:
        pressure.set(True)
        pressure.set(True)  # no change, nothing sent
        pressure.set(False)
        for n in (1, 2):
            assert await _heard(tmp_path / f"heard-{n}", b"10") == b"10"
        pressure.set(True)
        workers.processes[0].kill()  # one dies while the server is busy: its successor hears so
        await workers.processes[0].wait()
        for _ in range(300):
            if workers.spawned == 3:
                break
            await asyncio.sleep(0.01)
        assert workers.spawned == 3
        assert await _heard(tmp_path / "heard-3", b"1") == b"1"
        pressure.set(False)
        assert await _heard(tmp_path / "heard-3", b"10") == b"10"
        assert await _heard(tmp_path / "heard-2", b"1010") == b"1010"
    finally:
        await workers.stop(grace=5)
    assert workers._pipes == {}  # every write end closed


# ---- the pressure itself ------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_pressure_starts_at_the_mark_and_ends_a_hold_after_the_last_time_it_was_reached() -> None:
    clock = FakeTime()
    pressure = AckPressure(high=3, hold=0.05, clock=clock)
    changes: list[bool] = []
    pressure.subscribe(changes.append)
    for _ in range(2):
        pressure.enter()
    assert not pressure.busy and changes == []
    pressure.enter()  # the third request in hand at once
    assert pressure.busy and changes == [True]
    for _ in range(3):
        pressure.leave()
    assert pressure.in_flight == 0 and pressure.busy  # a group commit empties it: not over yet
    clock.now += 0.03
    for _ in range(3):
        pressure.enter()  # the next burst reaches the mark again within the hold
    for _ in range(3):
        pressure.leave()
    clock.now += 0.04
    await asyncio.sleep(0.08)  # the first check comes; the mark was reached 0.04 s ago: not yet
    assert pressure.busy and changes == [True]
    clock.now += 0.02
    await asyncio.sleep(0.08)
    assert not pressure.busy and changes == [True, False]
    pressure.enter()
    assert not pressure.busy  # one request is no pressure


async def test_pressure_listeners_hear_changes_only_and_a_failing_one_harms_nothing() -> None:
    pressure = AckPressure(high=1, hold=10)
    heard: list[bool] = []

    def broken(busy: bool) -> None:
        raise RuntimeError("listener down")

    pressure.subscribe(broken)
    pressure.subscribe(heard.append)
    pressure.enter()
    pressure.enter()
    pressure.set(True)
    pressure.set(False)
    pressure.set(False)
    assert heard == [True, False]
    assert pressure.in_flight == 2


@pytest.mark.parametrize("kwargs", [{"high": 0}, {"hold": 0}, {"hold": -1.0}])
def test_pressure_needs_a_mark_and_a_hold(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="mark"):
        AckPressure(**kwargs)
