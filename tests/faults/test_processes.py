"""Fault scenarios against real `caredesk serve` / `caredesk worker` processes (slow: skipped
unless CAREDESK_SLOW_TESTS=1). The scenarios live in bench/faults/scenarios.py, which
bench/faults/run.py also runs and summarises.

    CAREDESK_SLOW_TESTS=1 .venv/bin/python -m pytest tests/faults -m slow
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
