"""Fault scenarios against real `caredesk serve` / `caredesk worker` processes (slow: skipped
unless CAREDESK_SLOW_TESTS=1). The scenarios live in bench/faults/scenarios.py, which
bench/faults/run.py also runs and summarises.

    CAREDESK_SLOW_TESTS=1 .venv/bin/python -m pytest tests/faults -m slow
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.faults.conftest import ERROR_TEXTS, add_users
from tests.slack.conftest import LOTTE

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("caredesk_fault_scenarios", ROOT / "bench" / "faults" / "scenarios.py")
scenarios = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenarios)

pytestmark = pytest.mark.slow


async def test_sigkill_mid_dialog_sqlite_file(tmp_path):
    summary = await scenarios.sigkill_mid_dialog(f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}", tmp_path)
    assert summary["tickets"] == 1


@pytest.mark.postgres
async def test_sigkill_mid_dialog_postgresql(pg_url, tmp_path):
    summary = await scenarios.sigkill_mid_dialog(pg_url, tmp_path)
    assert summary["tickets"] == 1


async def test_sigkill_mid_delivery_sqlite_file(tmp_path):
    summary = await scenarios.sigkill_mid_delivery(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}", tmp_path)
    assert summary["duplicates"] == 0 and summary["delivered"] == summary["messages"]
    assert summary["reserved_by_the_dead_worker"] >= 1  # the kill really landed mid-delivery


@pytest.mark.postgres
async def test_two_server_processes_on_one_database(pg_url, tmp_path):
    summary = await scenarios.two_servers_one_conversation(pg_url, tmp_path)
    assert summary["tickets"] == 4 and summary["answers"] == summary["events_sent"] // 2


@pytest.mark.postgres
async def test_database_outage_under_a_server_process(pg_url, tmp_path):
    summary = await scenarios.database_outage(pg_url, tmp_path)
    assert summary["tickets"] == 4


# ---- `caredesk serve` with worker processes (CAREDESK_WORKERS) -----------------------------------------


class ServeWithWorkers(scenarios.Server):
    """A `caredesk serve` process started with CAREDESK_WORKERS=N: it acknowledges, its
    `python -m adapters.server.cli worker` children do the work."""

    def __init__(self, database_url, fake, log_dir, name, workers: int = 1, log_level: str = "WARNING") -> None:
        self.port = scenarios.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed by stop())
        env = {**scenarios.process_env(database_url, fake), "CAREDESK_WORKERS": str(workers),
               "CAREDESK_LOG_LEVEL": log_level}
        self.proc = subprocess.Popen([scenarios.CAREDESK, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [0] state (field 3), [1] ppid (field 4),
    [16] nice (field 19 of proc(5)); None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _alive(pid: int) -> bool:
    """Running (or stopped); a zombie nobody reaped yet (an orphan's new parent may be slow) is gone."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _is_worker(pid: int) -> bool:
    args = _cmdline(pid)
    return "adapters.server.cli" in args and "worker" in args


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[1] == str(pid) and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return sorted(found)


async def _worker_children(server: scenarios.Server, count: int = 1, timeout: float = 15.0) -> list[int]:
    """The server's `adapters.server.cli worker` children, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.proc.poll() is None, f"the server exited with {server.proc.returncode}"
        workers = [p for p in _children(server.proc.pid) if _is_worker(p)]
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        await asyncio.sleep(0.05)


async def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _kill_everything(server: scenarios.Server | None, pids: set[int]) -> None:
    """finally: no process of a test outlives it (the server's workers included, even stopped ones)."""
    if server is not None:
        if server.proc.poll() is None:
            pids.update(p for p in _children(server.proc.pid) if _is_worker(p))
            server.kill9()
        server.stop()  # closes the log
    for pid in pids:
        if _alive(pid) and _is_worker(pid):
            os.kill(pid, signal.SIGKILL)


async def _ack(session, server, text: str, user: str, event_id: str) -> tuple[int, float]:
    started = time.monotonic()
    status = await scenarios.send_dm(session, server, text, user, event_id)
    return status, time.monotonic() - started


@contextlib.asynccontextmanager
async def _serving_with_a_worker(pg_url, tmp_path, name: str, **options):
    """A ready `caredesk serve` with one worker process on a prepared database, its fake Slack,
    and the set of worker pids seen (add more to it); afterwards no process of it is left."""
    await scenarios.prepare(pg_url)
    fake = scenarios.SlowFakeSlack()
    await fake.start()
    server: ServeWithWorkers | None = None
    seen: set[int] = set()
    try:
        server = ServeWithWorkers(pg_url, fake, tmp_path, name, **options)
        await server.ready()
        seen.update(await _worker_children(server))
        yield server, fake, seen
    finally:
        _kill_everything(server, seen)
        await fake.close()


@pytest.mark.postgres
async def test_serve_with_a_worker_process_answers_and_the_worker_ends_with_the_server(pg_url, tmp_path):
    async with _serving_with_a_worker(pg_url, tmp_path, "serve-workers") as (server, fake, seen):
        async with aiohttp.ClientSession() as session:
            status, seconds = await _ack(session, server, "ticket", LOTTE, "EvWk1")
        assert status == 200
        assert seconds < 2.0, f"the ack took {seconds:.2f} s"
        posts = await scenarios.wait_posts(fake, LOTTE, 1)
        assert len(posts) == 1 and not any(e in posts[0] for e in ERROR_TEXTS), posts
        assert "what kind of ticket is it?" in posts[0].lower(), posts[0]

        workers = await _worker_children(server)
        seen.update(workers)
        assert len(workers) == 1, [(p, _cmdline(p)) for p in _children(server.proc.pid)]
        (worker_pid,) = workers
        args = _cmdline(worker_pid)
        assert args[args.index("--parent-pid") + 1] == str(server.proc.pid), args
        assert args[args.index("--nice") + 1] == "10", args
        assert args[args.index("--pressure-fd") + 1].isdigit(), args
        assert int(_stat(worker_pid)[16]) == 10, _stat(worker_pid)
        assert os.getpriority(os.PRIO_PROCESS, worker_pid) == 10
        assert os.getpriority(os.PRIO_PROCESS, server.proc.pid) == os.getpriority(os.PRIO_PROCESS, 0)

        server.kill9()
        started = time.monotonic()
        assert await _gone(worker_pid, 5.0), f"the worker {worker_pid} outlived its server: {_stat(worker_pid)}"
        assert time.monotonic() - started < 5.0


@pytest.mark.postgres
async def test_under_a_flood_the_worker_makes_room_for_the_acks_then_answers_everyone(pg_url, tmp_path):
    users = [f"UFLOOD{n:03d}" for n in range(120)]
    async with _serving_with_a_worker(pg_url, tmp_path, "serve-flood", log_level="INFO") as (server, fake, _):
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            acks = await asyncio.gather(*(_ack(session, server, "hello", u, f"EvFl{n}") for n, u in enumerate(users)))
        assert [status for status, _ in acks] == [200] * len(users)
        assert max(seconds for _, seconds in acks) < 3.0
        for user in users:  # nothing lost: everyone is answered, once the flood is over
            posts = await scenarios.wait_posts(fake, user, 1, timeout=60.0)
            assert not any(e in posts[0] for e in ERROR_TEXTS), posts
        log = server.log_path.read_text(errors="replace")
        busy = log.find("taking one item at a time")
        assert busy >= 0, log[-3000:]
        assert log.find("back to full speed", busy) > busy, log[-3000:]


@pytest.mark.postgres
async def test_a_request_acknowledged_before_a_crash_is_answered_by_the_next_worker(pg_url, tmp_path):
    successor: subprocess.Popen | None = None
    async with _serving_with_a_worker(pg_url, tmp_path, "serve-crash") as (server, fake, seen):
        try:
            workers = await _worker_children(server)
            seen.update(workers)
            assert len(workers) == 1, [(p, _cmdline(p)) for p in _children(server.proc.pid)]
            (worker_pid,) = workers
            os.kill(worker_pid, signal.SIGSTOP)  # nothing is worked on from now on
            deadline = time.monotonic() + 5
            while _stat(worker_pid)[0] != "T":
                assert time.monotonic() < deadline, _stat(worker_pid)
                await asyncio.sleep(0.02)

            async with aiohttp.ClientSession() as session:
                status, seconds = await _ack(session, server, "ticket", LOTTE, "EvCr1")
            assert status == 200
            assert seconds < 2.0, f"the ack took {seconds:.2f} s"
            await asyncio.sleep(1.0)  # an answer, if anything were working, would show up by now
            server.kill9()
            os.kill(worker_pid, signal.SIGKILL)
            assert await _gone(worker_pid, 5.0), _stat(worker_pid)
            assert fake.messages() == [], [c.params for c in fake.messages()]

            store = await scenarios.open_store(pg_url)
            try:
                items = await store.list_inbound()
                assert [(i.channel, i.status, i.attempts) for i in items] == [("slack", "pending", 0)], items

                successor = scenarios.worker(pg_url, fake, tmp_path, "worker-next", lease=30.0)
                posts = await scenarios.wait_posts(fake, LOTTE, 1, timeout=20.0)
                assert len(posts) == 1 and not any(e in posts[0] for e in ERROR_TEXTS), posts
                assert "what kind of ticket is it?" in posts[0].lower(), posts[0]

                deadline = time.monotonic() + 10
                while (items := await store.list_inbound())[0].status != "done":
                    assert time.monotonic() < deadline, items
                    await asyncio.sleep(0.1)
                assert [(i.id, i.status, i.attempts) for i in items] == [(items[0].id, "done", 1)], items
            finally:
                await store.close()

            successor.send_signal(signal.SIGTERM)
            assert successor.wait(15) == 0
            await asyncio.sleep(0.5)
            assert len(fake.posts_to(LOTTE)) == 1, fake.posts_to(LOTTE)  # answered once
        finally:
            if successor is not None and successor.poll() is None:
                successor.kill()
                successor.wait()


# ---- answers are as durable as the turns they come from ----------------------------------------------


@contextlib.asynccontextmanager
async def _one_server(tmp_path, name: str):
    """A ready `caredesk serve` (no worker processes) on a prepared SQLite file, its fake Slack,
    and a list to put the processes started after it in; afterwards none of them is left."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
    await scenarios.prepare(database_url)
    fake = scenarios.SlowFakeSlack()
    await fake.start()
    server = scenarios.Server(database_url, fake, tmp_path, name)
    after: list[subprocess.Popen] = []
    try:
        await server.ready()
        yield database_url, server, fake, after
    finally:
        _kill_everything(server, set())
        for proc in after:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        await fake.close()


async def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("end", ["kill9", "stop"])
async def test_answers_rate_limited_when_the_server_ends_are_posted_by_the_next_worker(tmp_path, end):
    """chat.postMessage answers 429 (Retry-After) to three people's answers, and the server is
    killed (SIGKILL) or stopped (SIGTERM) before Retry-After: a worker started afterwards posts
    every answer, once (before: the next worker saw "duplicate delivery" and they were lost)."""
    async with _one_server(tmp_path, f"serve-429-{end}") as (database_url, server, fake, after):
        users = add_users(fake, 3, prefix="WR")
        fake.fail("chat.postMessage", 429, times=3, headers={"Retry-After": "4"})
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(*(scenarios.send_dm(session, server, "contacts", user, f"Ev429{end}{i}")
                                              for i, user in enumerate(users)))
        assert statuses == [200, 200, 200]
        await _until(lambda: len(fake.of("chat.postMessage", ok_only=False)) >= 3, 20, "no answer was tried")
        getattr(server, end)()
        assert fake.messages() == []
        after.append(scenarios.worker(database_url, fake, tmp_path, f"worker-after-{end}", lease=30.0))
        for user in users:
            posts = await scenarios.wait_posts(fake, user, 1, timeout=40.0)
            assert "Service desk contacts" in posts[0], posts
        await asyncio.sleep(1.0)
        assert [len(fake.posts_to(user)) for user in users] == [1, 1, 1]


async def test_an_answer_killed_between_its_commit_and_its_post_is_posted_by_the_next_worker(tmp_path):
    """Slack takes long to accept the answer and the server is killed meanwhile (SIGKILL, after
    the turn was saved, before Slack took the post): the next worker, once the inbox lease ran
    out, finds the delivery processed and its answer owed, and posts it."""
    async with _one_server(tmp_path, "serve-mid-post") as (database_url, server, fake, after):
        fake.delays["chat.postMessage"] = 5.0
        async with aiohttp.ClientSession() as session:
            assert await scenarios.send_dm(session, server, "ticket", LOTTE, "EvMidPost1") == 200
        await _until(lambda: "chat.postMessage" in fake.started, 20, "the answer was never tried")
        server.kill9()
        assert fake.messages() == []
        fake.delays.clear()
        after.append(scenarios.worker(database_url, fake, tmp_path, "worker-after-mid-post", lease=30.0))
        posts = await scenarios.wait_posts(fake, LOTTE, 1, timeout=scenarios.LEASE_S + 20)
        assert "what kind of ticket is it?" in posts[0].lower(), posts
        await asyncio.sleep(1.0)
        assert len(fake.posts_to(LOTTE)) == 1
