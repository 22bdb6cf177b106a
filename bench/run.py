"""CareDesk's benchmark: real `caredesk serve` processes under a load of signed Slack requests
and authenticated Teams activities, compared in the same run with a bare aiohttp handler and an
ack-only slack-bolt app; turns, human pace and a flood with people waiting, compared with the
durable peer (a Bolt app that stores each DM in PostgreSQL before its ack and answers it from a
worker); the quote engine over growing spans; memory with many conversations in progress.
Everything listens on 127.0.0.1; everything it starts it stops.

    .venv/bin/python bench/run.py --quick          # smoke run, about 2 minutes
    .venv/bin/python bench/run.py                  # the full run (about 10 minutes on 2 cores)
    .venv/bin/python bench/run.py --phases turns,human,flood   # CareDesk against the durable peer

Writes bench/results/<timestamp>.json and docs/images/performance.png. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import servers  # noqa: E402
from bench.common import (  # noqa: E402
    ROOT,
    PostgresBackendsCpu,
    all_latencies,
    cpu_seconds,
    machine_busy_seconds,
    percentile,
)
from bench.fakes import FakePlatforms, user_email  # noqa: E402
from bench.common import TEAM, TENANT  # noqa: E402


def load_directory(env: dict[str, str], workdir: Path) -> str:
    """The example directory, and the bench's Slack workspace and Teams tenant bound to the
    service desk: a profile e-mail counts only from a bound workspace (issue 17), and the bench's
    people (nobody of the directory) then keep theirs, as the dialogs expect."""
    loaded = servers.run_cli(env, "directory", "load", str(ROOT / "examples" / "directory.yaml"), cwd=workdir)
    servers.run_cli(env, "companies", "bind", "--service-desk", "--slack-team", TEAM, cwd=workdir)
    servers.run_cli(env, "companies", "bind", "--service-desk", "--teams-tenant", TENANT, cwd=workdir)
    return loaded
from bench.load import SlackDialogs, TeamsDialogs, saturate  # noqa: E402
from bench.report import memory_growth  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PLOT = ROOT / "docs" / "images" / "performance.png"
# After an ack-saturation round the work behind the acks goes on: it is waited for as long as
# answers keep coming (a slow machine takes minutes), and given up after this long without one.
DRAIN_STALL_S = 60.0
# The phases, in the order they run: the Slack and Teams dialog walk and the ack saturation
# rounds (with the bare and Bolt peers) per configuration; the comparison with the durable peer
# on PostgreSQL: turns, human pace, flood with people waiting; memory; the quote engine.
PHASES = ("walk", "saturation", "turns", "human", "flood", "memory", "quote")
DURABLE_PHASES = ("turns", "human", "flood")


@dataclass
class Plan:
    backends: list[str]
    processes: list[int]
    workers: str
    concurrency: int
    conversations: int
    teams_conversations: int
    teams_concurrency: int
    teams_transports: list[str]
    saturation_requests: int
    saturation_rounds: int
    saturation_seconds: float
    memory_checkpoints: list[int]
    phase_seconds: float
    quote_seconds: float
    phases: list[str]
    turns_customers: int
    turns_concurrency: int
    turns_rounds: int
    human_people: int
    human_think_s: float
    human_seconds: float
    flood_people: int
    flood_requests: int

    def workers_for(self, backend: str) -> int:
        if self.workers == "auto":
            return 0 if backend == "sqlite" else 1
        return int(self.workers)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Plan]:
    p = argparse.ArgumentParser(description="CareDesk load benchmark (loopback only; stops by itself).")
    p.add_argument("--quick", action="store_true", help="a small smoke run (about 2 minutes)")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    p.add_argument("--processes", default="1,3",
                   help="server process counts; counts above 1 run on PostgreSQL only (default 1,3)")
    p.add_argument("--workers", default="auto",
                   help="worker processes beside each server (`caredesk serve --workers`): a number, or auto "
                        "(default): the recommended set-up, 0 on SQLite (one process, one writer) and 1 on "
                        "PostgreSQL")
    p.add_argument("--concurrency", type=int, help="concurrent Slack conversations (default 200; quick 50)")
    p.add_argument("--conversations", type=int, help="Slack conversations per configuration (default 300; quick 60)")
    p.add_argument("--teams-conversations", type=int, help="Teams conversations per configuration (default 60; quick 10)")
    p.add_argument("--teams-transports", default="agents,botbuilder",
                   help="Teams transports (CAREDESK_TEAMS_TRANSPORT) of the Teams walk: the first serves the main "
                        "walk; with more than one, each also walks the Teams dialog on fresh server processes of "
                        "its own, in turn, for the comparison (default agents,botbuilder)")
    p.add_argument("--saturation-requests", type=int, help="requests per ack-saturation round (default 6000; quick 600)")
    p.add_argument("--saturation-rounds", type=int,
                   help="alternating rounds of CareDesk / Bolt / bare saturation per configuration; the median "
                        "of each counts (default 5; quick 2)")
    p.add_argument("--duration", type=float, help="upper bound in seconds of each load phase (default 240; quick 60)")
    p.add_argument("--memory-conversations", type=int,
                   help="conversations in progress for the memory test (default 10000; quick 1000; 0 to skip)")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"comma-separated phases to run (default all: {','.join(PHASES)}); e.g. turns,human,flood "
                        "for the comparison with the durable peer alone")
    p.add_argument("--turns-customers", type=int, help="turns phase: customers walking the DM dialog (default 200; quick 60)")
    p.add_argument("--turns-concurrency", type=int, help="turns phase: customers at a time (default 50; quick 20)")
    p.add_argument("--turns-rounds", type=int,
                   help="turns phase: alternating rounds CareDesk / durable peer; the median of each counts "
                        "(default 3; quick 1)")
    p.add_argument("--human-people", type=int, help="human pace phase: people writing (default 100; quick 30)")
    p.add_argument("--human-think", type=float, default=4.0,
                   help="human pace phase: seconds each person waits between an answer and the next message (default 4)")
    p.add_argument("--human-seconds", type=float, help="human pace phase: its length per system (default 120; quick 40)")
    p.add_argument("--flood-people", type=int, default=3,
                   help="flood phase: people walking the DM dialog during the flood (default 3)")
    p.add_argument("--flood-requests", type=int,
                   help="flood phase: requests of the flood (default: --saturation-requests)")
    p.add_argument("--skip-peers", action="store_true", help="do not run the bare aiohttp and Bolt peers")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    quick = args.quick
    memory = args.memory_conversations if args.memory_conversations is not None else (1000 if quick else 10000)
    checkpoints = [c for c in (0, 1000, 5000, 10000) if c <= memory]
    if memory and memory not in checkpoints:
        checkpoints.append(memory)
    plan = Plan(
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        processes=sorted({int(n) for n in args.processes.split(",") if n.strip()}),
        workers=args.workers,
        concurrency=args.concurrency or (50 if quick else 200),
        conversations=args.conversations or (60 if quick else 300),
        teams_conversations=args.teams_conversations if args.teams_conversations is not None else (10 if quick else 60),
        teams_concurrency=10 if quick else 30,
        teams_transports=[t.strip() for t in args.teams_transports.split(",") if t.strip()],
        saturation_requests=args.saturation_requests or (600 if quick else 6000),
        saturation_rounds=args.saturation_rounds or (2 if quick else 5),
        saturation_seconds=30.0 if quick else 60.0,
        memory_checkpoints=checkpoints if memory else [],
        phase_seconds=args.duration or (60.0 if quick else 240.0),
        quote_seconds=0.1 if quick else 0.3,
        phases=[x.strip() for x in args.phases.split(",") if x.strip()],
        turns_customers=args.turns_customers or (60 if quick else 200),
        turns_concurrency=args.turns_concurrency or (20 if quick else 50),
        turns_rounds=args.turns_rounds or (1 if quick else 3),
        human_people=args.human_people or (30 if quick else 100),
        human_think_s=args.human_think,
        human_seconds=args.human_seconds or (40.0 if quick else 120.0),
        flood_people=args.flood_people,
        flood_requests=0,
    )
    plan.flood_requests = args.flood_requests or plan.saturation_requests
    for phase in plan.phases:
        if phase not in PHASES:
            p.error(f"--phases: unknown phase {phase!r} (phases: {', '.join(PHASES)})")
    if plan.workers != "auto" and not plan.workers.isdigit():
        p.error("--workers: a number or auto")
    for b in plan.backends:
        if b not in ("sqlite", "postgresql"):
            p.error(f"--backends: unknown backend {b!r}")
    return args, plan


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# ---- machine -----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    try:
        pg = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"],
                            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg = "unknown"
    import aiohttp
    import slack_bolt
    import sqlalchemy

    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "python": platform.python_version(), "postgresql": pg, "kernel": platform.release(),
            "aiohttp": aiohttp.__version__, "slack_bolt": slack_bolt.version.__version__,
            "sqlalchemy": sqlalchemy.__version__, "loadavg_start": os.getloadavg()}


# ---- the database after a phase -------------------------------------------------------------------------


async def ticket_counts(url: str) -> dict[str, int]:
    from sqlalchemy import text

    from bot.store.sql import create_engine_for

    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT requester_email, count(*) FROM tickets GROUP BY requester_email"))).all()
    finally:
        await engine.dispose()
    return {str(email).lower(): int(count) for email, count in rows}


async def count_rows(url: str, table: str) -> int:
    from sqlalchemy import text

    from bot.store.sql import create_engine_for

    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    finally:
        await engine.dispose()


async def wait_drained(fakes: FakePlatforms, target: int, stall: float = DRAIN_STALL_S) -> float:
    """Wait until the fake Slack got `target` posts in all, as long as posts keep arriving; the
    seconds it took, or -1 once none came for `stall` seconds."""
    t0 = last_progress = time.monotonic()
    seen = fakes.posts.total
    while fakes.posts.total < target:
        now = time.monotonic()
        if fakes.posts.total != seen:
            seen, last_progress = fakes.posts.total, now
        elif now - last_progress > stall:
            return -1.0
        await asyncio.sleep(0.25)
    return time.monotonic() - t0


def throughput(rec, prefix: str) -> float:
    values = all_latencies(rec, prefix)
    return len(values) / rec.wall if rec.wall else 0.0


def pct(values: list[float]) -> dict[str, Any]:
    return {"count": len(values), "p50_ms": round(percentile(values, 50) * 1000, 2) if values else None,
            "p95_ms": round(percentile(values, 95) * 1000, 2) if values else None,
            "p99_ms": round(percentile(values, 99) * 1000, 2) if values else None,
            "max_ms": round(values[-1] * 1000, 2) if values else None}


def ack_kinds(rec) -> list[float]:
    """Every Slack acknowledgement (the HTTP answers), not the bot's later replies."""
    return sorted(v for kind, lat in rec.latencies.items()
                  if kind.startswith("slack.") and not kind.endswith(("_reply", "_modal")) for v in lat)


# ---- one configuration: a backend and a number of processes -----------------------------------------------


async def compare_teams_transports(plan: Plan, fakes: FakePlatforms, env: dict[str, str], nproc: int,
                                   workdir: Path, tag: str, prefix: str) -> dict[str, Any]:
    """The Teams dialog walked on each transport, in turn, each on fresh server processes of its
    own (same database, same fakes, same load): messages per second and latencies side by side,
    and the slower's shortfall against the faster (issue 18: at most 20 %)."""
    by_transport: dict[str, Any] = {}
    for transport in plan.teams_transports:
        procs = await servers.start_caredesk(nproc, {**env, "CAREDESK_TEAMS_TRANSPORT": transport}, workdir,
                                             f"{tag}-{transport}")
        try:
            cpu0 = sum(p.cpu() for p in procs)
            log(f"   Teams on {transport}: {plan.teams_conversations} conversations, {plan.teams_concurrency} at a time")
            walk = TeamsDialogs(fakes, [p.url for p in procs], prefix=f"{prefix}{transport[:2]}")
            out = await walk.run(plan.teams_conversations, plan.teams_concurrency, plan.phase_seconds)
            cpu1 = sum(p.cpu() for p in procs)
        finally:
            await servers.stop(procs)
        messages = len(all_latencies(out.rec, "teams."))
        by_transport[transport] = {
            **out.rec.summary(out.rec.wall), "completed": out.completed, "lost_turns": out.lost_turns,
            "messages_per_s": round(throughput(out.rec, "teams."), 1),
            "server_cpu_ms_per_message": round((cpu1 - cpu0) * 1000 / messages, 2) if messages else None,
        }
        log(f"   Teams on {transport}: {by_transport[transport]['messages_per_s']} messages/s, "
            f"{out.completed} completed, {out.lost_turns} lost")
    rates = {t: r["messages_per_s"] for t, r in by_transport.items() if r["messages_per_s"]}
    shortfall = round(1 - min(rates.values()) / max(rates.values()), 3) if len(rates) > 1 else None
    return {"by_transport": by_transport, "slower_by": shortfall,
            "within_20_percent": shortfall is not None and shortfall <= 0.20}


async def run_config(plan: Plan, fakes: FakePlatforms, backend: str, nproc: int, workdir: Path, stamp: str,
                     peer_procs: dict[str, servers.Proc]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    tag = f"{backend[:2]}{nproc}-{stamp}"
    name = f"{backend} x{nproc}"
    log(f"== {name}: fresh database, directory, {nproc} server process(es)")
    db = await servers.create_database(backend, tag.replace("-", "_"), workdir)
    workers = plan.workers_for(backend)
    result: dict[str, Any] = {"backend": backend, "processes": nproc, "workers_per_process": workers}
    procs: list[servers.Proc] = []
    form_view = None
    try:
        env = {**servers.caredesk_env(db.url, fakes.base_url), "CAREDESK_WORKERS": str(workers)}
        if plan.teams_transports:
            env["CAREDESK_TEAMS_TRANSPORT"] = plan.teams_transports[0]
            result["teams_transport"] = plan.teams_transports[0]
        servers.run_cli(env, "db", "upgrade", cwd=workdir)
        result["directory"] = load_directory(env, workdir)
        procs = await servers.start_caredesk(nproc, env, workdir, tag)
        urls = [p.url for p in procs]
        if "walk" in plan.phases:
            posts0, responses0 = fakes.posts.total, fakes.responses.total
            cpu0 = sum(p.cpu() for p in procs)
            me0 = cpu_seconds(os.getpid())

            # Slack: whole dialogs, then Teams: whole dialogs.
            log(f"   Slack: {plan.conversations} conversations, {plan.concurrency} at a time")
            slack = SlackDialogs(fakes, urls, prefix=f"{backend[0].upper()}{nproc}")
            out = await slack.run(plan.conversations, plan.concurrency, plan.phase_seconds)
            log(f"   Slack done in {out.rec.wall:.1f} s: {out.completed} completed, {out.rec.summary()['errors']} errors "
                f"{dict(out.rec.errors)}, {out.lost_turns} lost; error samples: {out.rec.error_samples[:3]}")
            teams_out = None
            if plan.teams_conversations:
                log(f"   Teams: {plan.teams_conversations} conversations, {plan.teams_concurrency} at a time")
                teams = TeamsDialogs(fakes, urls, prefix=f"{backend[0]}{nproc}")
                teams_out = await teams.run(plan.teams_conversations, plan.teams_concurrency, plan.phase_seconds)
                log(f"   Teams done in {teams_out.rec.wall:.1f} s: {teams_out.completed} completed")
            cpu1 = sum(p.cpu() for p in procs)
            me1 = cpu_seconds(os.getpid())

            # No lost turn: every answer arrived (checked while walking), and the database holds
            # exactly the tickets of the completed conversations, each once.
            expected_posts = out.completed * SlackDialogs.POSTS_PER_CONVERSATION
            counts = await ticket_counts(db.url)
            slack_missing = sum(1 for u in out.users if counts.get(user_email(u), 0) < SlackDialogs.TICKETS_PER_CONVERSATION)
            slack_dupes = sum(1 for u in out.users if counts.get(user_email(u), 0) > SlackDialogs.TICKETS_PER_CONVERSATION)
            teams_missing = sum(1 for u in (teams_out.users if teams_out else []) if counts.get(user_email(u), 0) != 1)
            expected_tickets = out.completed * 2 + (teams_out.completed if teams_out else 0)
            started_tickets = sum(counts.values())
            walk = {
                "slack": {**out.rec.summary(out.rec.wall), "conversations": plan.conversations, "completed": out.completed,
                          "lost_turns": out.lost_turns, "lost_samples": out.lost_samples,
                          "acks": pct(ack_kinds(out.rec)),
                          "acks_per_s": round(len(ack_kinds(out.rec)) / out.rec.wall, 1) if out.rec.wall else 0,
                          "dialog_turns_per_s": round(len(out.rec.latencies.get("slack.dm_turn_reply", [])) / out.rec.wall, 1)
                          if out.rec.wall else 0,
                          "tickets_per_s": round(out.completed * 2 / out.rec.wall, 1) if out.rec.wall else 0,
                          "posts_expected": expected_posts, "posts_received": fakes.posts.total - posts0,
                          "response_url_posts": fakes.responses.total - responses0,
                          "missing_tickets": slack_missing, "duplicate_tickets": slack_dupes},
                "tickets_in_db": started_tickets, "tickets_expected": expected_tickets,
                "server_cpu_s": round(cpu1 - cpu0, 2), "generator_cpu_s": round(me1 - me0, 2),
            }
            if teams_out is not None:
                walk["teams"] = {**teams_out.rec.summary(teams_out.rec.wall), "conversations": plan.teams_conversations,
                                 "completed": teams_out.completed, "lost_turns": teams_out.lost_turns,
                                 "lost_samples": teams_out.lost_samples, "missing_tickets": teams_missing,
                                 "messages_per_s": round(throughput(teams_out.rec, "teams.") , 1)}
            result["dialogs"] = walk
            if plan.teams_conversations and len(plan.teams_transports) > 1:
                result["teams_transports"] = await compare_teams_transports(plan, fakes, env, nproc, workdir, tag,
                                                                            f"{backend[0]}{nproc}")
        # A form view as CareDesk opens it, for the saturation runs (also of the peers).
        form_view = await capture_form(fakes, urls)

        if "saturation" in plan.phases:
            # Ack saturation: the request mix back to back, then wait for the work to finish; then the
            # same mix to the ack-only Bolt app and the bare handler, in the same minutes. Several
            # rounds, alternating, and the median of each: the machine is shared and noisy.
            rounds: list[dict[str, Any]] = []
            peer_rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in peer_procs}
            for r in range(plan.saturation_rounds):
                log(f"   ack saturation, round {r + 1}/{plan.saturation_rounds}: {plan.saturation_requests} requests, "
                    f"{plan.concurrency} senders")
                posts_before = fakes.posts.total
                cpu0 = sum(p.cpu() for p in procs)
                sat = await saturate(urls, plan.saturation_requests, plan.concurrency, f"{backend[0]}{nproc}r{r}",
                                     form_view, fakes.response_url, plan.saturation_seconds)
                expected = sat.by_kind.get("slack.dm_event", 0) + sat.by_kind.get("slack.view_submission", 0)
                drained = await wait_drained(fakes, posts_before + expected)
                cpu1 = sum(p.cpu() for p in procs)
                received = fakes.posts.total - posts_before
                rounds.append({
                    **sat.rec.summary(sat.seconds), "sent": sat.sent, "acked": sat.acked,
                    "seconds": round(sat.seconds, 2), "acks_per_s": round(sat.acks_per_s, 1),
                    "acks": pct(ack_kinds(sat.rec)), "by_kind": sat.by_kind,
                    "answers_expected": expected, "answers_received": received,
                    "lost_turns": max(0, expected - received),
                    "drain_s": round(drained, 2), "sustained_per_s": round(sat.acked / (sat.seconds + max(drained, 0)), 1),
                    "server_cpu_s": round(cpu1 - cpu0, 2), "cpu_ms_per_ack": sat.cpu_ms_per_ack,
                })
                log(f"   CareDesk: {sat.acks_per_s:.0f} acks/s ({sat.cpu_ms_per_ack} CPU ms per ack), drained in "
                    f"{drained:.1f} s, {expected - received} answers missing")
                for kind, peer in peer_procs.items():
                    peer_rounds[kind].append(await saturate_peer(plan, fakes, form_view, kind, peer, f"{backend[0]}{nproc}r{r}"))
            result["saturation"] = _median_round(rounds)
            # Errors and lost turns of every round count, not only the median one's.
            result["saturation"].update(
                errors=sum(x["errors"] for x in rounds), lost_turns=sum(x["lost_turns"] for x in rounds),
                answers_expected=sum(x["answers_expected"] for x in rounds),
                answers_received=sum(x["answers_received"] for x in rounds),
                acks={**result["saturation"]["acks"], "max_ms": max(x["acks"]["max_ms"] or 0 for x in rounds)},
                rounds_acks_per_s=[x["acks_per_s"] for x in rounds],
                median_cpu_ms_per_ack=_median_cpu_per_ack(rounds))
            result["peers"] = {kind: {**_median_round(rs), "rounds_acks_per_s": [x["acks_per_s"] for x in rs],
                                      "median_cpu_ms_per_ack": _median_cpu_per_ack(rs)}
                               for kind, rs in peer_rounds.items() if rs}
        result["rss_kib_end"] = [p.rss_kib() for p in procs]
    finally:
        await servers.stop(procs)
        result["server_logs"] = [p.log_problems() for p in procs]
        await db.drop()
    return result, form_view


async def capture_form(fakes: FakePlatforms, urls: list[str]) -> dict[str, Any]:
    """Open the /ticket modal once and keep the form CareDesk put in it."""
    from bench.common import slash_command, slack_headers
    from bench.load import TURN_TIMEOUT_S, session

    user = "UFORMPROBE"
    before = fakes.view_updates.counts[user]
    body = slash_command(user, "/ticket", "", fakes.response_url(user, 1), f"{user}.1.bench")
    async with session(1) as http:
        async with http.post(urls[0] + "/slack/events", data=body.encode(),
                             headers=slack_headers(body, "application/x-www-form-urlencoded")) as r:
            await r.read()
    if not await fakes.view_updates.wait(user, before + 1, TURN_TIMEOUT_S) or user not in fakes.forms:
        raise RuntimeError("CareDesk did not open the new-ticket modal")
    return fakes.forms.pop(user)


# ---- peers -------------------------------------------------------------------------------------------------


async def start_peers(plan: Plan, fakes: FakePlatforms, workdir: Path) -> dict[str, servers.Proc]:
    peers: dict[str, servers.Proc] = {}
    for kind in ("bolt", "bare"):
        peers[kind] = await servers.start_peer(kind, fakes.slack_api_url, workdir)
    return peers


async def saturate_peer(plan: Plan, fakes: FakePlatforms, form_view: dict[str, Any], kind: str, proc: servers.Proc,
                        tag: str) -> dict[str, Any]:
    cpu0 = proc.cpu()
    sat = await saturate([proc.url], plan.saturation_requests, plan.concurrency, f"p{kind[:2]}{tag}", form_view,
                         fakes.response_url, plan.saturation_seconds)
    log(f"   {kind}: {sat.acks_per_s:.0f} acks/s ({sat.cpu_ms_per_ack} CPU ms per ack)")
    return {**sat.rec.summary(sat.seconds), "sent": sat.sent, "acked": sat.acked,
            "seconds": round(sat.seconds, 2), "acks_per_s": round(sat.acks_per_s, 1),
            "acks": pct(ack_kinds(sat.rec)), "by_kind": sat.by_kind, "server_cpu_s": round(proc.cpu() - cpu0, 2),
            "cpu_ms_per_ack": sat.cpu_ms_per_ack}


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median ack rate (the lower middle one of an even count)."""
    ordered = sorted(rounds, key=lambda x: x["acks_per_s"])
    return dict(ordered[(len(ordered) - 1) // 2])


def _median_cpu_per_ack(rounds: list[dict[str, Any]]) -> float | None:
    """The median over the rounds of the CPU the machine spent per ack, the generator's left out."""
    values = sorted(x["cpu_ms_per_ack"] for x in rounds if x.get("cpu_ms_per_ack") is not None)
    return values[(len(values) - 1) // 2] if values else None


def merged_peers(report: dict[str, Any]) -> dict[str, Any]:
    """Each peer over the whole run: its median round among every configuration's rounds."""
    out: dict[str, Any] = {}
    for kind in ("bolt", "bare"):
        rounds = []
        for config in report["configs"]:
            peer = (config.get("peers") or {}).get(kind)
            if peer:
                rounds.append(peer)
        if rounds:
            out[kind] = {**_median_round(rounds),
                         "rounds_acks_per_s": [a for r in rounds for a in r.get("rounds_acks_per_s", [])]}
    return out


# ---- the durable peer: turns, human pace, flood with people waiting (PostgreSQL) ----------------------------

# During the flood each of the waiting people's answers is waited for this long at most: the
# target is 10 s, and a longer bound tells by how much it is missed (an answer queued behind a
# 6,000-request flood's backlog came after 60-70 s on a shared 2-core host).
FLOOD_ANSWER_WAIT_S = 120.0
# The flood's head start: the people write while its backlog builds, not before it.
FLOOD_HEAD_START_S = 1.0
# After the turns phase's last answer: the work a turn leaves behind (CareDesk's outbox, a new
# ticket's notifications) still counts towards the CPU of the turns.
TURNS_SETTLE_S = 1.0
# PostgreSQL publishes a busy backend's counts (pg_stat_database) at most once a second, and an
# idle one's within 10 s: the transactions of a round are read this long after it.
PG_STATS_DELAY_S = 11.0


@dataclass
class System:
    """CareDesk or the durable peer in the comparison, each on its own fresh PostgreSQL database."""

    name: str  # "caredesk" or "durable"
    proc: servers.Proc
    db: servers.Database
    posts_per_submission: int  # chat.postMessage answering one view_submission of the saturation mix

    @property
    def url(self) -> str:
        return self.proc.url


class CpuMeter:
    """The CPU a system spent over a phase: its process with its worker children (/proc) and the
    PostgreSQL backends of its own database (/proc, sampled every 0.5 s; PostgreSQL's shared
    background processes are left out). Beside it, for reference, the machine's busy CPU less
    the generator's own, which also counts whatever else runs on a shared host."""

    def __init__(self, system: System, count_transactions: bool = False) -> None:
        self.system = system
        self.count_transactions = count_transactions
        self.pg = PostgresBackendsCpu(system.db.name)
        self.process_s = self.postgres_s = self.machine_s = self.main_process_s = 0.0
        self.transactions: int | None = None

    async def __aenter__(self) -> Self:
        self._xacts0 = await database_transactions(self.system.db) if self.count_transactions else None
        self.pg.begin()
        self._sampler = asyncio.create_task(self.pg.run())
        self._proc0 = self.system.proc.cpu()
        self._main0 = cpu_seconds(self.system.proc.pid, with_children=False)
        self._busy0, self._me0 = machine_busy_seconds(), cpu_seconds(os.getpid(), with_children=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sampler
        self.pg.sample()
        self.process_s = self.system.proc.cpu() - self._proc0
        self.main_process_s = cpu_seconds(self.system.proc.pid, with_children=False) - self._main0
        self.postgres_s = self.pg.seconds()
        self.machine_s = max(0.0, (machine_busy_seconds() - self._busy0)
                             - (cpu_seconds(os.getpid(), with_children=False) - self._me0))
        if self._xacts0 is not None:
            await asyncio.sleep(PG_STATS_DELAY_S)  # after the CPU's reading: it does not count there
            xacts1 = await database_transactions(self.system.db)
            if xacts1 is not None:
                self.transactions = xacts1 - self._xacts0

    def per(self, count: int, unit: str) -> dict[str, Any]:
        cpu = self.process_s + self.postgres_s
        return {"process_cpu_s": round(self.process_s, 2), "postgres_cpu_s": round(self.postgres_s, 2),
                # the process itself (the server: acks, and with --workers 0 the work) and its
                # worker children (the work behind the acks)
                "main_process_cpu_s": round(self.main_process_s, 2),
                "worker_children_cpu_s": round(self.process_s - self.main_process_s, 2),
                "cpu_s": round(cpu, 2), "machine_cpu_s": round(self.machine_s, 2),
                f"cpu_ms_per_{unit}": round(cpu / count * 1000, 3) if count else None,
                f"machine_cpu_ms_per_{unit}": round(self.machine_s / count * 1000, 3) if count else None,
                "transactions": self.transactions,
                f"transactions_per_{unit}": round(self.transactions / count, 2)
                if count and self.transactions is not None else None}


async def database_transactions(db: servers.Database) -> int | None:
    """Transactions committed and rolled back in a database so far (pg_stat_database; polls of
    an inbox that find nothing count too: they are work the design does per turn)."""
    import asyncpg

    try:
        conn = await asyncpg.connect(servers.PG_ADMIN_DSN)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value = await conn.fetchval("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
                                    db.name)
        return int(value) if value is not None else None
    finally:
        await conn.close()


async def pg_scalar(db: servers.Database, sql: str) -> Any:
    """One value from a system's database, through asyncpg (not CareDesk's store: the benchmark
    only relies on the database's tables, whatever the code that writes them)."""
    import asyncpg

    conn = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def turns_round(plan: Plan, fakes: FakePlatforms, system: System, r: int) -> dict[str, Any]:
    """`turns_customers` customers walk the 10-DM ticket dialog, `turns_concurrency` at a time,
    each message sent once the previous answer arrived."""
    prefix = f"T{system.name[0].upper()}{r}"
    walker = SlackDialogs(fakes, [system.url], prefix=prefix, extras=False)
    async with CpuMeter(system, count_transactions=True) as meter:
        out = await walker.run(plan.turns_customers, plan.turns_concurrency, plan.phase_seconds)
        await asyncio.sleep(TURNS_SETTLE_S)
    answers = sorted(out.rec.latencies.get("slack.dm_turn_reply", []))
    wall = out.rec.wall
    result = {"round": r, "customers": plan.turns_customers, "completed": out.completed, "turns": len(answers),
              "seconds": round(wall, 2), "turns_per_s": round(len(answers) / wall, 2) if wall else 0.0,
              **meter.per(len(answers), "turn"), "answer": pct(answers), "acks": pct(ack_kinds(out.rec)),
              "errors": out.rec.summary()["errors"], "error_samples": out.rec.error_samples[:5],
              "lost_turns": out.lost_turns, "lost_samples": out.lost_samples[:5]}
    if system.name == "caredesk":
        # Every completed dialog is one ticket of that customer (the turns were done, not only answered).
        result["tickets"] = int(await pg_scalar(
            system.db, f"SELECT count(*) FROM tickets WHERE requester_email LIKE 'u{prefix.lower()}_____@%'") or 0)
    else:
        result["events_not_done"] = int(await pg_scalar(
            system.db, "SELECT count(*) FROM inbox_events WHERE done_at IS NULL") or 0)
    log(f"   turns {system.name} round {r + 1}: {result['turns']} turns in {wall:.1f} s = {result['turns_per_s']} "
        f"turns/s, {result['cpu_ms_per_turn']} CPU ms per turn (process {result['main_process_cpu_s']} s + workers "
        f"{result['worker_children_cpu_s']} s + PostgreSQL {result['postgres_cpu_s']} s; "
        f"{result['transactions_per_turn']} transactions per turn), answer p50 {result['answer']['p50_ms']} ms, "
        f"{out.lost_turns} lost")
    return result


async def human_pace(plan: Plan, fakes: FakePlatforms, system: System) -> dict[str, Any]:
    """`human_people` people, each reading an answer for `human_think_s` before the next
    message; each walks the DM dialog, then another one as a new person, until the phase ends."""
    walker = SlackDialogs(fakes, [system.url], prefix=f"H{system.name[0].upper()}", extras=False,
                          think_s=plan.human_think_s, ramp=plan.human_think_s)
    walker.stop_at = time.monotonic() + plan.human_seconds
    async with CpuMeter(system) as meter:
        # The count only bounds the loop: the phase's time ends it.
        out = await walker.run(plan.human_people * 100, plan.human_people, plan.human_seconds)
    answers = sorted(out.rec.latencies.get("slack.dm_turn_reply", []))
    wall = out.rec.wall
    result = {"people": plan.human_people, "think_s": plan.human_think_s, "seconds": round(wall, 2),
              "answers": len(answers), "messages_per_s": round(len(answers) / wall, 2) if wall else 0.0,
              "dialogs_completed": out.completed, "answer": pct(answers), "acks": pct(ack_kinds(out.rec)),
              **meter.per(len(answers), "answer"),
              "errors": out.rec.summary()["errors"], "error_samples": out.rec.error_samples[:5],
              "lost_turns": out.lost_turns, "lost_samples": out.lost_samples[:5]}
    log(f"   human pace {system.name}: {len(answers)} answers ({result['messages_per_s']}/s), answer p50 "
        f"{result['answer']['p50_ms']} p99 {result['answer']['p99_ms']} max {result['answer']['max_ms']} ms, "
        f"ack max {result['acks']['max_ms']} ms, {out.lost_turns} lost")
    return result


async def flood_with_people(plan: Plan, fakes: FakePlatforms, system: System,
                            form_view: dict[str, Any]) -> dict[str, Any]:
    """A saturation round's flood (`flood_requests` requests of the usual mix from `concurrency`
    senders, back to back); a second after it starts, `flood_people` people walk the DM dialog,
    each message once the previous answer arrived: the time of each of their answers."""
    posts0 = fakes.posts.total
    people = SlackDialogs(fakes, [system.url], prefix=f"W{system.name[0].upper()}", extras=False,
                          turn_timeout=FLOOD_ANSWER_WAIT_S, ramp=0.0)
    people.answers_by_user = {}
    # The people write for at most the phase's length; each answer is waited for a bounded time.
    people.stop_at = time.monotonic() + FLOOD_HEAD_START_S + plan.phase_seconds
    async with CpuMeter(system):
        flood = asyncio.create_task(saturate([system.url], plan.flood_requests, plan.concurrency,
                                             f"f{system.name[0]}", form_view, fakes.response_url,
                                             plan.saturation_seconds))
        await asyncio.sleep(FLOOD_HEAD_START_S)
        walk = await people.run(plan.flood_people, plan.flood_people, plan.phase_seconds)
        sat = await flood
    expected = (sat.by_kind.get("slack.dm_event", 0)
                + sat.by_kind.get("slack.view_submission", 0) * system.posts_per_submission)
    people_sent = len(walk.rec.latencies.get("slack.dm_event", []))
    drained = await wait_drained(fakes, posts0 + expected + people_sent)
    received = fakes.posts.total - posts0
    answers = sorted(walk.rec.latencies.get("slack.dm_turn_reply", []))
    result = {
        "people": plan.flood_people, "answers": len(answers), "answers_s_by_person": people.answers_by_user,
        "answer": pct(answers), "over_10s": sum(1 for a in answers if a > 10.0),
        "people_completed": walk.completed, "people_lost_turns": walk.lost_turns,
        "people_lost_samples": walk.lost_samples[:5], "people_errors": walk.rec.summary()["errors"],
        "people_acks": pct(ack_kinds(walk.rec)),
        "flood": {**sat.rec.summary(sat.seconds), "sent": sat.sent, "acked": sat.acked,
                  "seconds": round(sat.seconds, 2), "acks_per_s": round(sat.acks_per_s, 1),
                  "acks": pct(ack_kinds(sat.rec)), "by_kind": sat.by_kind},
        "answers_expected": expected + people_sent, "answers_received": received,
        "lost_turns": max(0, expected + people_sent - received), "drain_s": round(drained, 2),
    }
    log(f"   flood {system.name}: {sat.acks_per_s:.0f} acks/s (max {result['flood']['acks']['max_ms']} ms); people's "
        f"answers p50 {result['answer']['p50_ms']} max {result['answer']['max_ms']} ms, {result['over_10s']} over 10 s, "
        f"{walk.lost_turns} not within {FLOOD_ANSWER_WAIT_S:.0f} s; drained in {drained:.1f} s")
    return result


def _median(values: list[float]) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    return ordered[(len(ordered) - 1) // 2] if ordered else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


async def run_versus_durable(plan: Plan, fakes: FakePlatforms, workdir: Path, stamp: str,
                             form_view: dict[str, Any] | None) -> dict[str, Any]:
    """CareDesk (`caredesk serve --workers 1`, PostgreSQL) and the durable peer (its own
    PostgreSQL database), both running throughout, measured one after the other in each phase."""
    result: dict[str, Any] = {"backend": "postgresql", "caredesk_command": "caredesk serve --workers 1"}
    dbs = [await servers.create_database("postgresql", f"vs_cd_{stamp}", workdir),
           await servers.create_database("postgresql", f"vs_peer_{stamp}", workdir)]
    systems: list[System] = []
    try:
        env = servers.caredesk_env(dbs[0].url, fakes.base_url)
        servers.run_cli(env, "db", "upgrade", cwd=workdir)
        load_directory(env, workdir)
        caredesk = (await servers.start_caredesk(1, env, workdir, f"vs-{stamp}", workers=1))[0]
        systems.append(System("caredesk", caredesk, dbs[0], posts_per_submission=1))
        peer = await servers.start_peer("durable", fakes.slack_api_url, workdir, dbs[1].url)
        # The durable peer only acks view submissions: no DM follows them.
        systems.append(System("durable", peer, dbs[1], posts_per_submission=0))

        if "turns" in plan.phases:
            log(f"== turns: {plan.turns_customers} customers walking the DM dialog, {plan.turns_concurrency} at a "
                f"time, {plan.turns_rounds} alternating round(s)")
            rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
            for r in range(plan.turns_rounds):
                for system in systems:
                    rounds[system.name].append(await turns_round(plan, fakes, system, r))
            turns: dict[str, Any] = {"rounds": rounds}
            for name, rs in rounds.items():
                turns[name] = {"turns_per_s": _median([x["turns_per_s"] for x in rs]),
                               "cpu_ms_per_turn": _median([x["cpu_ms_per_turn"] for x in rs]),
                               "machine_cpu_ms_per_turn": _median([x["machine_cpu_ms_per_turn"] for x in rs]),
                               "answer_p50_ms": _median([x["answer"]["p50_ms"] for x in rs]),
                               "answer_p99_ms": _median([x["answer"]["p99_ms"] for x in rs])}
            cd, du = turns["caredesk"], turns["durable"]
            turns["ratios"] = {
                "turns_per_s": _ratio(cd["turns_per_s"], du["turns_per_s"]),
                "cpu_ms_per_turn": _ratio(cd["cpu_ms_per_turn"], du["cpu_ms_per_turn"]),
                "machine_cpu_ms_per_turn": _ratio(cd["machine_cpu_ms_per_turn"], du["machine_cpu_ms_per_turn"]),
                "per_round_turns_per_s": [_ratio(a["turns_per_s"], b["turns_per_s"])
                                          for a, b in zip(rounds["caredesk"], rounds["durable"])],
                "per_round_cpu_ms_per_turn": [_ratio(a["cpu_ms_per_turn"], b["cpu_ms_per_turn"])
                                              for a, b in zip(rounds["caredesk"], rounds["durable"])]}
            result["turns"] = turns
            log(f"   turns: CareDesk ÷ durable peer: turns/s {turns['ratios']['turns_per_s']}, CPU per turn "
                f"{turns['ratios']['cpu_ms_per_turn']}")

        if "human" in plan.phases:
            log(f"== human pace: {plan.human_people} people, {plan.human_think_s:g} s between an answer and the next "
                f"message, {plan.human_seconds:g} s per system")
            result["human"] = {s.name: await human_pace(plan, fakes, s) for s in systems}

        if "flood" in plan.phases:
            log(f"== flood: {plan.flood_requests} requests from {plan.concurrency} senders; {plan.flood_people} "
                f"people walk the DM dialog meanwhile")
            view = form_view or await capture_form(fakes, [caredesk.url])
            result["flood"] = {s.name: await flood_with_people(plan, fakes, s, view) for s in systems}
    finally:
        await servers.stop([s.proc for s in systems])
        result["server_logs"] = {s.name: s.proc.log_problems() for s in systems}
        for db in dbs:
            await db.drop()
    return result


# ---- memory -----------------------------------------------------------------------------------------------


async def run_memory(plan: Plan, fakes: FakePlatforms, workdir: Path, stamp: str) -> dict[str, Any]:
    """10,000 conversations in progress on one server process (SQLite): each sent 2 DMs
    ("ticket", "1"), so its dialog is open and waiting; RSS sampled at checkpoints."""
    db = await servers.create_database("sqlite", f"mem_{stamp}", workdir)
    procs: list[servers.Proc] = []
    result: dict[str, Any] = {"backend": "sqlite", "processes": 1, "messages_per_conversation": 2, "samples": []}
    try:
        env = servers.caredesk_env(db.url, fakes.base_url)
        servers.run_cli(env, "db", "upgrade", cwd=workdir)
        load_directory(env, workdir)
        procs = await servers.start_caredesk(1, env, workdir, f"mem-{stamp}")
        proc = procs[0]
        walker = SlackDialogs(fakes, [proc.url], prefix="M", dialog=("ticket", "1"), extras=False)
        done = 0
        t0 = time.perf_counter()
        for checkpoint in plan.memory_checkpoints:
            if checkpoint > done:
                log(f"   memory: conversations {done}..{checkpoint}")
                await walker.run(checkpoint - done, plan.concurrency, plan.phase_seconds, start=done)
                done = checkpoint
            await asyncio.sleep(1.0)
            in_progress = await count_rows(db.url, "dialog_states")
            result["samples"].append({"conversations": checkpoint, "in_progress_in_db": in_progress,
                                      "rss_mib": round(proc.rss_kib() / 1024, 1)})
            log(f"   memory: {in_progress} dialogs in progress, RSS {proc.rss_kib() / 1024:.1f} MiB")
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["completed"] = walker.out.completed
        result["lost_turns"] = walker.out.lost_turns
        result["errors"] = walker.out.rec.summary()["errors"]
        result["turn_reply"] = pct(sorted(walker.out.rec.latencies.get("slack.dm_turn_reply", [])))
        result["acks"] = pct(ack_kinds(walker.out.rec))
        growth = memory_growth(result["samples"])
        if growth is not None:
            result["growth_mib"], result["bytes_per_conversation"] = growth
    finally:
        await servers.stop(procs)
        result["server_logs"] = [p.log_problems() for p in procs]
        await db.drop()
    return result


# ---- the run ----------------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace, plan: Plan) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"started": stamp, "quick": args.quick, "plan": plan.__dict__, "machine": machine(),
                              "configs": []}
    t_start = time.perf_counter()
    fakes = FakePlatforms()
    await fakes.start()
    log(f"fake Slack Web API and Bot Framework on {fakes.base_url}")
    form_view = None
    phases = set(plan.phases)
    with tempfile.TemporaryDirectory(prefix="caredesk-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if phases & {"walk", "saturation"}:
                matrix = [(b, n) for b in plan.backends for n in plan.processes if n == 1 or b == "postgresql"]
                with_peers = "saturation" in phases and not args.skip_peers
                peer_procs = await start_peers(plan, fakes, workdir) if with_peers else {}
                try:
                    for backend, nproc in matrix:
                        config, view = await run_config(plan, fakes, backend, nproc, workdir, stamp, peer_procs)
                        report["configs"].append(config)
                        form_view = form_view or view
                finally:
                    await servers.stop(list(peer_procs.values()))
                if peer_procs:
                    report["peers"] = merged_peers(report)
                    for kind, proc in peer_procs.items():
                        report["peers"].setdefault(kind, {})["server_logs"] = proc.log_problems()
                    report["ratios"] = ratios(report)
            if phases & set(DURABLE_PHASES):
                report["durable"] = await run_versus_durable(plan, fakes, workdir, stamp, form_view)
            if "memory" in phases and plan.memory_checkpoints:
                log("== memory: conversations in progress on one process")
                report["memory"] = await run_memory(plan, fakes, workdir, stamp)
        finally:
            report["fakes"] = fakes.summary()
            await fakes.close()
    if "quote" in phases:
        log("== quote engine")
        from bench.quote_bench import run as quote_run

        report["quote"] = quote_run(plan.quote_seconds)
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    report["targets"] = targets(report)
    suffix = "-quick" if args.quick else ("" if phases == set(PHASES) else "-" + "-".join(plan.phases))
    path = RESULTS / f"{stamp}{suffix}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    # The plot shows the walk, the saturation, the memory and the quote engine: a run of only
    # some phases leaves docs/images/performance.png as it is.
    if not args.no_plot and {"walk", "saturation", "memory", "quote"} <= phases:
        from bench.plot import plot

        plot(report, PLOT)
        log(f"plot written to {PLOT.relative_to(ROOT)}")
    print_summary(report)
    log(f"results written to {path.relative_to(ROOT)} ({report['seconds']:.0f} s in all)")
    return path


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """CareDesk's ack rate over each peer's, both measured in the same configuration's rounds."""
    rows = []
    for config in report["configs"]:
        peers = config.get("peers") or report.get("peers") or {}
        sat = config.get("saturation") or {}
        row = {"config": f"{config['backend']} x{config['processes']}", "caredesk_acks_per_s": sat.get("acks_per_s")}
        for kind in ("bolt", "bare"):
            peer = peers.get(kind) or {}
            if peer.get("acks_per_s"):
                row[f"{kind}_acks_per_s"] = peer["acks_per_s"]
                row[f"vs_{kind}"] = round(sat.get("acks_per_s", 0) / peer["acks_per_s"], 3)
        bolt_cpu = (peers.get("bolt") or {}).get("median_cpu_ms_per_ack")
        if sat.get("median_cpu_ms_per_ack") and bolt_cpu:
            # Whatever the host's speed: Bolt's CPU per ack over CareDesk's (above 1: CareDesk
            # costs the machine less per ack than the ack-only Bolt app).
            row.update(caredesk_cpu_ms_per_ack=sat["median_cpu_ms_per_ack"], bolt_cpu_ms_per_ack=bolt_cpu,
                       bolt_cpu_over_caredesk=round(bolt_cpu / sat["median_cpu_ms_per_ack"], 3))
        rows.append(row)
    return rows


def _durable_caredesk_ack_max(durable: dict[str, Any]) -> float | None:
    """CareDesk's slowest ack in the turns, human pace and flood phases."""
    values = [r["acks"]["max_ms"] for r in (durable.get("turns") or {}).get("rounds", {}).get("caredesk", [])]
    human = (durable.get("human") or {}).get("caredesk")
    flood = (durable.get("flood") or {}).get("caredesk")
    if human:
        values.append(human["acks"]["max_ms"])
    if flood:
        values += [flood["flood"]["acks"]["max_ms"], flood["people_acks"]["max_ms"]]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _durable_caredesk_faults(durable: dict[str, Any]) -> tuple[int, int, int]:
    """CareDesk's errors, lost turns and unfinished dialogs in the turns, human pace and flood phases."""
    errors = lost = incomplete = 0
    for r in (durable.get("turns") or {}).get("rounds", {}).get("caredesk", []):
        errors += r["errors"]
        lost += r["lost_turns"] + max(0, r["completed"] - r.get("tickets", r["completed"]))
        incomplete += r["customers"] - r["completed"]
    human = (durable.get("human") or {}).get("caredesk")
    if human:
        errors += human["errors"]
        lost += human["lost_turns"]
    flood = (durable.get("flood") or {}).get("caredesk")
    if flood:
        # A waiting person's answer later than the bound is the flood target's miss; it is lost
        # only if it never came (the drain counts every answer).
        errors += flood["people_errors"] + flood["flood"]["errors"]
        lost += flood["lost_turns"]
    return errors, lost, incomplete


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, read off the numbers of this run (those of the phases that ran)."""
    out: dict[str, Any] = {}
    walked = [c for c in report["configs"] if c.get("dialogs")]
    saturated = [c for c in report["configs"] if c.get("saturation")]
    durable = report.get("durable") or {}
    one = [c for c in walked if c["processes"] == 1]
    worst_max = max((c["dialogs"]["slack"]["acks"]["max_ms"] or 0 for c in walked), default=None)
    sat_max = max((c["saturation"]["acks"]["max_ms"] or 0 for c in saturated), default=None)
    durable_max = _durable_caredesk_ack_max(durable)
    maxes = [x for x in (worst_max, sat_max, durable_max) if x is not None]
    out["slack_acks_under_3s_always"] = {"max_ack_ms_dialogs": worst_max, "max_ack_ms_saturation": sat_max,
                                         "max_ack_ms_turns_human_flood": durable_max,
                                         "met": bool(maxes) and max(maxes) < 3000}
    if one:
        out["p99_under_100ms_one_process"] = {
            f"{c['backend']} x1": {"p99_ms": c["dialogs"]["slack"]["acks"]["p99_ms"],
                                   "met": (c["dialogs"]["slack"]["acks"]["p99_ms"] or 1e9) < 100} for c in one}
    if report.get("ratios"):
        out["acks_80pct_of_bolt"] = {r["config"]: {"ratio": r.get("vs_bolt"), "met": (r.get("vs_bolt") or 0) >= 0.8}
                                     for r in report.get("ratios", [])}
    turns = durable.get("turns")
    if turns:
        ratio = turns["ratios"]["cpu_ms_per_turn"]
        out["turns_cpu_per_turn_at_most_1_5x_durable"] = {
            "caredesk_cpu_ms_per_turn": turns["caredesk"]["cpu_ms_per_turn"],
            "durable_cpu_ms_per_turn": turns["durable"]["cpu_ms_per_turn"], "ratio": ratio,
            "met": ratio is not None and ratio <= 1.5}
        ratio = turns["ratios"]["turns_per_s"]
        out["turns_per_s_at_least_0_7x_durable"] = {
            "caredesk_turns_per_s": turns["caredesk"]["turns_per_s"],
            "durable_turns_per_s": turns["durable"]["turns_per_s"], "ratio": ratio,
            "met": ratio is not None and ratio >= 0.7}
    human = (durable.get("human") or {}).get("caredesk")
    if human:
        out["human_pace_answer_p99_under_500ms"] = {
            "p99_ms": human["answer"]["p99_ms"], "max_ms": human["answer"]["max_ms"], "answers": human["answers"],
            "lost_turns": human["lost_turns"],
            "met": human["answers"] > 0 and human["lost_turns"] == 0 and (human["answer"]["p99_ms"] or 1e9) < 500}
    flood = (durable.get("flood") or {}).get("caredesk")
    if flood:
        out["flood_every_answer_within_10s"] = {
            "answers": flood["answers"], "max_ms": flood["answer"]["max_ms"], "over_10s": flood["over_10s"],
            f"not_within_{FLOOD_ANSWER_WAIT_S:.0f}s": flood["people_lost_turns"],
            "met": flood["answers"] > 0 and flood["over_10s"] == 0 and flood["people_lost_turns"] == 0}
    errors = sum(c["dialogs"]["slack"]["errors"] + c["dialogs"].get("teams", {}).get("errors", 0) for c in walked)
    errors += sum(c["saturation"]["errors"] for c in saturated)
    lost = sum(c["dialogs"]["slack"]["lost_turns"] + c["dialogs"].get("teams", {}).get("lost_turns", 0)
               + c["dialogs"]["slack"]["missing_tickets"] + c["dialogs"]["slack"]["duplicate_tickets"]
               + c["dialogs"].get("teams", {}).get("missing_tickets", 0) for c in walked)
    lost += sum(c["saturation"]["lost_turns"] for c in saturated)
    incomplete = sum(c["dialogs"]["slack"]["conversations"] - c["dialogs"]["slack"]["completed"] for c in walked)
    server_errors = sum(log["errors"] + log["tracebacks"] for c in report["configs"] for log in c["server_logs"])
    d_errors, d_lost, d_incomplete = _durable_caredesk_faults(durable)
    errors, lost, incomplete = errors + d_errors, lost + d_lost, incomplete + d_incomplete
    caredesk_log = (durable.get("server_logs") or {}).get("caredesk")
    if caredesk_log:
        server_errors += caredesk_log["errors"] + caredesk_log["tracebacks"]
    memory = report.get("memory") or {}
    errors += memory.get("errors", 0)
    lost += memory.get("lost_turns", 0)
    out["no_error_or_lost_turn"] = {"errors": errors, "lost_turns": lost, "incomplete_conversations": incomplete,
                                    "server_log_errors": server_errors,
                                    "met": errors == 0 and lost == 0 and incomplete == 0 and server_errors == 0}
    return out


def print_summary(report: dict[str, Any]) -> None:
    print()
    if any(c.get("dialogs") for c in report["configs"]):
        print(f"{'configuration':<16}{'kind':<28}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'err':>5}")
    for c in report["configs"]:
        if not c.get("dialogs"):
            continue
        name = f"{c['backend']} x{c['processes']}"
        for part in ("slack", "teams"):
            d = c["dialogs"].get(part)
            if not d:
                continue
            for kind, s in d["kinds"].items():
                print(f"{name:<16}{kind:<28}{s['count']:>7}{_f(s['p50_ms'])}{_f(s['p95_ms'])}{_f(s['p99_ms'])}"
                      f"{_f(s['max_ms'])}{s['errors']:>5}")
        for transport, t in ((c.get("teams_transports") or {}).get("by_transport") or {}).items():
            print(f"{name:<16}{'teams on ' + transport:<28}{t['messages_per_s']:>7} messages/s, "
                  f"{t['server_cpu_ms_per_message']} server CPU ms/message, completed {t['completed']}")
        if c.get("teams_transports"):
            print(f"{name:<16}{'=> Teams transports':<28} slower by {c['teams_transports']['slower_by']} "
                  f"(within 20 %: {c['teams_transports']['within_20_percent']})")
        d = c["dialogs"]["slack"]
        print(f"{name:<16}{'=> all Slack acks':<28}{d['acks']['count']:>7}{_f(d['acks']['p50_ms'])}"
              f"{_f(d['acks']['p95_ms'])}{_f(d['acks']['p99_ms'])}{_f(d['acks']['max_ms'])}")
        print(f"{name:<16}completed {d['completed']}/{d['conversations']}, lost turns {d['lost_turns']}, "
              f"tickets {c['dialogs']['tickets_in_db']}/{c['dialogs']['tickets_expected']}, "
              f"{d['dialog_turns_per_s']} dialog turns/s")
    print()
    for r in report.get("ratios", []):
        print(f"ack saturation {r['config']:<16} CareDesk {r['caredesk_acks_per_s']:>8} acks/s | Bolt "
              f"{r.get('bolt_acks_per_s')} ({r.get('vs_bolt')}) | bare {r.get('bare_acks_per_s')} ({r.get('vs_bare')})"
              f" | CPU ms/ack CareDesk {r.get('caredesk_cpu_ms_per_ack')}, Bolt {r.get('bolt_cpu_ms_per_ack')}")
    durable = report.get("durable") or {}
    turns = durable.get("turns")
    if turns:
        for name in ("caredesk", "durable"):
            t = turns[name]
            print(f"turns {name:<10} {t['turns_per_s']} turns/s, {t['cpu_ms_per_turn']} CPU ms per turn (process + "
                  f"its PostgreSQL backends; machine less generator {t['machine_cpu_ms_per_turn']}), answer p50 "
                  f"{t['answer_p50_ms']} ms (medians of {len(turns['rounds'][name])} round(s))")
        print(f"turns CareDesk ÷ durable peer: turns/s {turns['ratios']['turns_per_s']} (target ≥ 0.7), CPU per turn "
              f"{turns['ratios']['cpu_ms_per_turn']} (target ≤ 1.5); per round {turns['ratios']['per_round_turns_per_s']}"
              f", {turns['ratios']['per_round_cpu_ms_per_turn']}")
    for name, h in (durable.get("human") or {}).items():
        a = h["answer"]
        print(f"human pace {name:<10} {h['answers']} answers, p50 {a['p50_ms']} p95 {a['p95_ms']} p99 {a['p99_ms']} "
              f"max {a['max_ms']} ms; ack max {h['acks']['max_ms']} ms; lost {h['lost_turns']}")
    for name, f in (durable.get("flood") or {}).items():
        a = f["answer"]
        print(f"flood {name:<10} {f['flood']['acks_per_s']} acks/s; people's answers {f['answers']}: p50 {a['p50_ms']} "
              f"max {a['max_ms']} ms, {f['over_10s']} over 10 s, {f['people_lost_turns']} not within "
              f"{FLOOD_ANSWER_WAIT_S:.0f} s; drain {f['drain_s']} s")
    if report.get("memory"):
        print("memory:", ", ".join(f"{s['conversations']}: {s['rss_mib']} MiB" for s in report["memory"]["samples"]))
    q = report.get("quote")
    if q:
        print("quote:", ", ".join(f"{r['span']} {r['per_call_ms']} ms" for r in q["rows"]))
    print("targets:", json.dumps({k: v.get("met") if isinstance(v, dict) and "met" in v else v
                                  for k, v in report["targets"].items()}, default=str))


def _f(value: Any) -> str:
    return f"{value:>9.1f}" if isinstance(value, (int, float)) else f"{'-':>9}"


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_args(argv)
    asyncio.run(main_async(args, plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
