"""Markdown tables from a results file (what docs/performance.md shows):

    .venv/bin/python bench/report.py bench/results/<timestamp>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def memory_growth(samples: list[dict[str, Any]]) -> tuple[float, int | None] | None:
    """RSS growth (MiB) from the 1,000-conversation checkpoint to the last one, and bytes per
    dialog really opened in between (a phase that ran out of time opened fewer than planned);
    None without two such checkpoints."""
    after = [s for s in samples if s["conversations"] >= 1000]
    if len(after) < 2:
        return None
    first, last = after[0], after[-1]
    grew = last["rss_mib"] - first["rss_mib"]
    opened = last["in_progress_in_db"] - first["in_progress_in_db"]
    return round(grew, 1), (round(grew * 1024 * 1024 / opened) if opened > 0 else None)


def _walk_tables(configs: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    out.append("### Dialog walk: latency per kind of request\n")
    out.append("| config | kind | count | p50 ms | p95 ms | p99 ms | max ms | errors |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|")
    for c in configs:
        name = f"{c['backend']} ×{c['processes']}"
        for part in ("slack", "teams"):
            d = c["dialogs"].get(part)
            if not d:
                continue
            for kind, s in d["kinds"].items():
                out.append(f"| {name} | `{kind}` | {_n(s['count'])} | {_n(s['p50_ms'])} | {_n(s['p95_ms'])} | "
                           f"{_n(s['p99_ms'])} | {_n(s['max_ms'])} | {s['errors']} |")
        a = c["dialogs"]["slack"]["acks"]
        out.append(f"| {name} | **all Slack acks** | {_n(a['count'])} | {_n(a['p50_ms'])} | {_n(a['p95_ms'])} | "
                   f"**{_n(a['p99_ms'])}** | {_n(a['max_ms'])} | |")
    out.append("")
    out.append("### Dialog walk: throughput, completeness\n")
    out.append("| config | Slack conversations completed | Slack acks/s | dialog turns/s | tickets/s | Teams completed "
               "| Teams msgs/s | lost turns | tickets in DB / expected | missing / duplicate | DM posts received / expected "
               "| server CPU s | generator CPU s | server log errors |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for c in configs:
        d, s = c["dialogs"], c["dialogs"]["slack"]
        t = d.get("teams") or {}
        logs = sum(x["errors"] + x["tracebacks"] for x in c["server_logs"])
        out.append(f"| {c['backend']} ×{c['processes']} | {s['completed']}/{s['conversations']} | {_n(s['acks_per_s'])} | "
                   f"{_n(s['dialog_turns_per_s'])} | {_n(s['tickets_per_s'])} | "
                   f"{t.get('completed', '–')}/{t.get('conversations', '–')} | {_n(t.get('messages_per_s'))} | "
                   f"{s['lost_turns'] + t.get('lost_turns', 0)} | {d['tickets_in_db']}/{d['tickets_expected']} | "
                   f"{s['missing_tickets'] + t.get('missing_tickets', 0)}/{s['duplicate_tickets']} | "
                   f"{s['posts_received']}/{s['posts_expected']} | {_n(d['server_cpu_s'])} | {_n(d['generator_cpu_s'])} | {logs} |")
    out.append("")

    return out


def _saturation_tables(report: dict[str, Any], configs: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    out.append("### Ack saturation: CareDesk and its peers, same request mix\n")
    out.append("| target | acked / sent | acks/s | p50 ms | p95 ms | p99 ms | max ms | errors | drain s | sustained/s "
               "| answers received / expected | server CPU s |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    rows = [(f"CareDesk {c['backend']} ×{c['processes']}", c["saturation"]) for c in configs]
    peers = report.get("peers") or {}
    rows += [(label, peers[k]) for k, label in (("bolt", "slack-bolt ack-only"), ("bare", "bare aiohttp")) if k in peers]
    for label, s in rows:
        a = s["acks"]
        out.append(f"| {label} | {s['acked']}/{s['sent']} | **{_n(s['acks_per_s'])}** | {_n(a['p50_ms'])} | "
                   f"{_n(a['p95_ms'])} | {_n(a['p99_ms'])} | {_n(a['max_ms'])} | {s['errors']} | "
                   f"{_n(s.get('drain_s'))} | {_n(s.get('sustained_per_s'))} | "
                   f"{_n(s.get('answers_received'))}/{_n(s.get('answers_expected'))} | {_n(s.get('server_cpu_s'))} |")
    out.append("")
    if report.get("ratios"):
        out.append("Each configuration's rounds alternate CareDesk, the Bolt app and the bare handler; the median "
                   "round of each counts, and the ratio uses the peers measured in the same configuration.\n")
        out.append("| config | CareDesk acks/s (rounds) | Bolt acks/s (rounds) | bare acks/s | ÷ Bolt | ÷ bare aiohttp |")
        out.append("|---|--:|--:|--:|--:|--:|")
        by_name = {f"{c['backend']} x{c['processes']}": c for c in configs}
        for r in report["ratios"]:
            c = by_name.get(r["config"]) or {}
            mine = (c.get("saturation") or {}).get("rounds_acks_per_s") or []
            bolt = ((c.get("peers") or {}).get("bolt") or {}).get("rounds_acks_per_s") or []
            rounds = (lambda xs: f" ({', '.join(f'{x:,.0f}' for x in xs)})" if xs else "")
            out.append(f"| {r['config']} | {_n(r['caredesk_acks_per_s'])}{rounds(mine)} | "
                       f"{_n(r.get('bolt_acks_per_s'))}{rounds(bolt)} | {_n(r.get('bare_acks_per_s'))} | "
                       f"**{_n(r.get('vs_bolt'), 3)}** | {_n(r.get('vs_bare'), 3)} |")
        out.append("")
        cpu_rows = [r for r in report["ratios"] if r.get("bolt_cpu_over_caredesk")]
        if cpu_rows:
            out.append("CPU per ack: the machine's busy CPU during a round less the generator's own (the target's "
                       "processes, its database, the kernel's share), median of the rounds; it depends less on "
                       "the host's speed than the acks/s do.\n")
            out.append("| config | CareDesk CPU ms per ack | Bolt CPU ms per ack | Bolt's ÷ CareDesk's |")
            out.append("|---|--:|--:|--:|")
            for r in cpu_rows:
                out.append(f"| {r['config']} | {_n(r['caredesk_cpu_ms_per_ack'], 3)} | {_n(r['bolt_cpu_ms_per_ack'], 3)} | "
                           f"**{_n(r['bolt_cpu_over_caredesk'], 3)}** |")
            out.append("")

    return out


def _durable_tables(durable: dict[str, Any]) -> list[str]:
    """The turns, human pace and flood phases: CareDesk (`serve --workers 1`, PostgreSQL) and the
    durable peer, measured in the same run."""
    out: list[str] = []
    names = (("caredesk", "CareDesk"), ("durable", "durable peer"))
    turns = durable.get("turns")
    if turns:
        out.append("### Turns: customers walking the DM dialog, CareDesk and the durable peer\n")
        out.append("CPU per turn: the system's process with its worker children and the PostgreSQL backends of "
                   "its own database (from /proc), per DM answered; \"machine\": the machine's busy CPU less the "
                   "generator's own (counts other work on a shared host); transactions: its database's commits "
                   "and rollbacks (pg_stat_database), polls included.\n")
        out.append("| system | round | turns | s | turns/s | process CPU s | of which worker children | PostgreSQL CPU s "
                   "| CPU ms per turn | machine CPU ms per turn | transactions per turn | answer p50 ms | p99 ms "
                   "| ack max ms | lost |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key, label in names:
            for r in turns["rounds"].get(key, []):
                out.append(f"| {label} | {r['round'] + 1} | {_n(r['turns'])} | {_n(r['seconds'])} | "
                           f"{_n(r['turns_per_s'])} | {_n(r['process_cpu_s'], 2)} | "
                           f"{_n(r.get('worker_children_cpu_s'), 2)} | {_n(r['postgres_cpu_s'], 2)} | "
                           f"{_n(r['cpu_ms_per_turn'], 2)} | {_n(r['machine_cpu_ms_per_turn'], 2)} | "
                           f"{_n(r.get('transactions_per_turn'), 2)} | "
                           f"{_n(r['answer']['p50_ms'])} | {_n(r['answer']['p99_ms'])} | {_n(r['acks']['max_ms'])} | "
                           f"{r['lost_turns']} |")
        ratio = turns["ratios"]
        out.append("")
        out.append("| median of the rounds | CareDesk | durable peer | CareDesk ÷ peer | target |")
        out.append("|---|--:|--:|--:|---|")
        out.append(f"| turns/s | {_n(turns['caredesk']['turns_per_s'])} | {_n(turns['durable']['turns_per_s'])} | "
                   f"**{_n(ratio['turns_per_s'], 3)}** | ≥ 0.7 |")
        out.append(f"| CPU ms per turn | {_n(turns['caredesk']['cpu_ms_per_turn'], 2)} | "
                   f"{_n(turns['durable']['cpu_ms_per_turn'], 2)} | **{_n(ratio['cpu_ms_per_turn'], 3)}** | ≤ 1.5 |")
        out.append(f"| machine CPU ms per turn | {_n(turns['caredesk']['machine_cpu_ms_per_turn'], 2)} | "
                   f"{_n(turns['durable']['machine_cpu_ms_per_turn'], 2)} | {_n(ratio['machine_cpu_ms_per_turn'], 3)} | |")
        out.append("")
    human = durable.get("human")
    if human:
        out.append("### Human pace: people reading each answer before the next message\n")
        out.append("| system | people | think s | answers | answers/s | answer p50 ms | p95 ms | p99 ms | max ms "
                   "| ack p99 ms | ack max ms | CPU ms per answer | lost |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key, label in names:
            h = human.get(key)
            if h:
                a = h["answer"]
                out.append(f"| {label} | {h['people']} | {_n(h['think_s'])} | {_n(h['answers'])} | "
                           f"{_n(h['messages_per_s'])} | {_n(a['p50_ms'])} | {_n(a['p95_ms'])} | **{_n(a['p99_ms'])}** | "
                           f"{_n(a['max_ms'])} | {_n(h['acks']['p99_ms'])} | {_n(h['acks']['max_ms'])} | "
                           f"{_n(h['cpu_ms_per_answer'], 2)} | {h['lost_turns']} |")
        out.append("")
    flood = durable.get("flood")
    if flood:
        out.append("### Flood: people walking the DM dialog during an ack flood\n")
        out.append("| system | flood acked / sent | acks/s | flood ack max ms | people's answers | answer p50 ms "
                   "| max ms | over 10 s | not within the bound (120 s) | drain s | answers received / expected |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for key, label in names:
            f = flood.get(key)
            if f:
                a = f["answer"]
                out.append(f"| {label} | {f['flood']['acked']}/{f['flood']['sent']} | {_n(f['flood']['acks_per_s'])} | "
                           f"{_n(f['flood']['acks']['max_ms'])} | {_n(f['answers'])} | {_n(a['p50_ms'])} | "
                           f"**{_n(a['max_ms'])}** | {f['over_10s']} | {f['people_lost_turns']} | {_n(f['drain_s'])} | "
                           f"{_n(f['answers_received'])}/{_n(f['answers_expected'])} |")
        out.append("")
    return out


def tables(report: dict[str, Any]) -> str:
    out: list[str] = []
    m = report["machine"]
    phases = (report.get("plan") or {}).get("phases")
    kind = "quick" if report["quick"] else ("phases " + ", ".join(phases) if phases and len(phases) < 7 else "full")
    out.append(f"Run {report['started']} ({kind}), {report['seconds']:.0f} s. "
               f"Machine: {m['nproc']} × {m['cpu']}, {m['memory_gib']} GiB, Python {m['python']}, "
               f"PostgreSQL {m['postgresql']}, kernel {m['kernel']}, aiohttp {m['aiohttp']}, "
               f"slack-bolt {m['slack_bolt']}, SQLAlchemy {m['sqlalchemy']}; load average at start "
               f"{', '.join(f'{x:.2f}' for x in m['loadavg_start'])}, at end "
               f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_end', []))}.\n")

    walked = [c for c in report["configs"] if c.get("dialogs")]
    saturated = [c for c in report["configs"] if c.get("saturation")]
    if walked:
        out.extend(_walk_tables(walked))
    if saturated:
        out.extend(_saturation_tables(report, saturated))
    out.extend(_durable_tables(report.get("durable") or {}))

    mem = report.get("memory")
    if mem:
        out.append("### Memory: one server process, conversations in progress\n")
        out.append("| checkpoint (conversations to open) | dialogs in progress (DB) | server RSS MiB |")
        out.append("|--:|--:|--:|")
        for s in mem["samples"]:
            out.append(f"| {_n(s['conversations'])} | {_n(s['in_progress_in_db'])} | {_n(s['rss_mib'])} |")
        growth, per = memory_growth(mem.get("samples", [])) or (None, None)
        out.append(f"\nGrowth from the first 1,000 to the last checkpoint: {_n(growth)} MiB "
                   f"(≈ {_n(per)} bytes per dialog opened); {mem['seconds']} s, "
                   f"errors {mem['errors']}, lost turns {mem['lost_turns']}; answer to a DM p50 "
                   f"{_n(mem['turn_reply']['p50_ms'])} ms, p99 {_n(mem['turn_reply']['p99_ms'])} ms.\n")

    q = report.get("quote")
    if q:
        out.extend(_quote_table(q))

    out.append("### Targets\n")
    out.append("```json\n" + json.dumps(report["targets"], indent=2) + "\n```")
    return "\n".join(out)


def _quote_table(q: dict[str, Any]) -> list[str]:
    out: list[str] = []
    out.append("### Quote engine (`QuoteEngine.quote`, best of 3)\n")
    out.append("| span | days | lines | ms per quote | × 1 hour | µs per day |")
    out.append("|---|--:|--:|--:|--:|--:|")
    for r in q["rows"]:
        out.append(f"| {r['span']} | {_n(r['days'], 2)} | {r['lines']} | {r['per_call_ms']:.4f} | {r['vs_1_hour']} | "
                   f"{_n(r['us_per_day'])} |")
    out.append(f"\n1 year / 1 week = {q['year_over_week']}× (days: {q['days_ratio_year_over_week']}×; "
               f"minutes 1 year / 1 hour: {q['minutes_ratio_year_over_hour']}×).\n")
    return out


if __name__ == "__main__":
    print(tables(json.loads(Path(sys.argv[1]).read_text())))
