"""Run CareDesk's fault scenarios end to end against real processes and print a summary.

    .venv/bin/python bench/faults/run.py                 # every scenario (PostgreSQL ones need it)
    .venv/bin/python bench/faults/run.py --only kill-dialog kill-delivery
    CAREDESK_TEST_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test .venv/bin/python bench/faults/run.py

Scenarios (see docs/faults.md):
  kill-dialog     kill -9 `caredesk serve` between turns and mid-turn; the next process resumes
                  the conversation at the same question; one ticket          (SQLite file)
  kill-delivery   kill -9 `caredesk worker` mid-delivery (slow fake Slack); another worker
                  delivers after the lease; nothing lost, nothing twice      (SQLite file)
  two-servers     two `caredesk serve` processes on one database, every event to both; every
                  answer once, one ticket per conversation                   (PostgreSQL)
  db-outage       the database refuses connections and its backends are terminated mid-load,
                  then comes back; Slack's retries complete everything once  (PostgreSQL)

PostgreSQL scenarios create (and drop) their own throwaway database on CAREDESK_TEST_PG_URL; the
PostgreSQL server itself is never stopped. Exit code 0 when every scenario held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import scenarios

SQLITE = ("kill-dialog", "kill-delivery")
POSTGRES = ("two-servers", "db-outage")


def pg_database() -> str:
    import secrets

    from bot.store.sql import upgrade_async
    from tests.conftest import _pg_admin, _sqlalchemy_url, pg_base_url, run_in_thread

    name = f"caredesk_faults_{secrets.token_hex(5)}"
    run_in_thread(lambda: _pg_admin(f'CREATE DATABASE "{name}"'))
    url = _sqlalchemy_url(pg_base_url(), name)
    run_in_thread(lambda: upgrade_async(url))
    return url


def drop(url: str) -> None:
    from tests.conftest import drop_pg_database, run_in_thread
    from tests.faults.conftest import pg_admin

    run_in_thread(lambda: pg_admin(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true'))
    drop_pg_database(url)


async def run_one(name: str, work: Path) -> dict:
    if name == "kill-dialog":
        return await scenarios.sigkill_mid_dialog(f"sqlite+aiosqlite:///{work / 'kill-dialog.db'}", work)
    if name == "kill-delivery":
        return await scenarios.sigkill_mid_delivery(f"sqlite+aiosqlite:///{work / 'kill-delivery.db'}", work)
    url = await asyncio.to_thread(pg_database)
    try:
        if name == "two-servers":
            return await scenarios.two_servers_one_conversation(url, work)
        return await scenarios.database_outage(url, work)
    finally:
        await asyncio.to_thread(drop, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SQLITE + POSTGRES, help="run only these scenarios")
    parser.add_argument("--logs", help="keep the processes' logs in this folder (default: a temporary one)")
    args = parser.parse_args()
    names = args.only or list(SQLITE + POSTGRES)
    work = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="caredesk-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in names:
        started = time.monotonic()
        try:
            summary = asyncio.run(run_one(name, work))
            status = "OK"
        except Exception as exc:  # report and go on with the next scenario
            failed += 1
            status = "FAILED"
            summary = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        print(f"{status:6} {name:14} {time.monotonic() - started:5.1f}s  {json.dumps(summary, ensure_ascii=False)}")
    print(f"\n{len(names) - failed}/{len(names)} scenarios held; process logs in {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
