"""The benchmark's plot (matplotlib, Agg backend): ack latency percentiles per configuration,
ack throughput of CareDesk and its peers, resident memory with conversations in progress, and
the quote engine's time per span."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    m = report["machine"]
    fig.suptitle(f"CareDesk benchmark {report['started']} — {m['nproc']} × {m['cpu']}, Python {m['python']}, "
                 f"PostgreSQL {m['postgresql']}", fontsize=10)

    # 1. Slack ack latency (dialog walk) per configuration, and Teams answers.
    ax = axes[0][0]
    configs = report["configs"]
    labels = [f"{c['backend']}\nx{c['processes']}" for c in configs]
    width = 0.25
    for k, (key, colour) in enumerate((("p50_ms", "#4c9f70"), ("p95_ms", "#e0a030"), ("p99_ms", "#c0392b"))):
        values = [c["dialogs"]["slack"]["acks"][key] or 0 for c in configs]
        ax.bar([i + (k - 1) * width for i in range(len(configs))], values, width, label=key.replace("_ms", ""),
               color=colour)
    ax.axhline(100, color="black", linestyle="--", linewidth=1)
    ax.text(-0.45, 103, "target p99 100 ms", fontsize=8)
    ax.set_xticks(range(len(configs)), labels)
    ax.set_ylabel("ms")
    ax.set_title(f"Slack acks while {report['plan']['concurrency']} conversations walk the ticket dialog", fontsize=10)
    ax.legend(fontsize=8)

    # 2. Ack throughput under saturation: CareDesk configs and the peers.
    ax = axes[0][1]
    names, values, colours = [], [], []
    for c in configs:
        names.append(f"CareDesk\n{c['backend'][:6]} x{c['processes']}")
        values.append(c["saturation"]["acks_per_s"])
        colours.append("#2e6da4")
    peers = report.get("peers") or {}
    for kind, label, colour in (("bolt", "Bolt\nack-only", "#8e44ad"), ("bare", "bare\naiohttp", "#7f8c8d")):
        if kind in peers and peers[kind].get("acks_per_s"):
            names.append(label)
            values.append(peers[kind]["acks_per_s"])
            colours.append(colour)
    ax.bar(range(len(values)), values, color=colours)
    bolt = (peers.get("bolt") or {}).get("acks_per_s")
    if bolt:
        ax.axhline(0.8 * bolt, color="black", linestyle="--", linewidth=1)
        ax.text(-0.45, 0.8 * bolt * 1.02, "80 % of Bolt", fontsize=8)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(values)), names, fontsize=8)
    ax.set_ylabel("acknowledged requests / s")
    ax.set_title(f"Ack throughput, same request mix, {report['plan']['concurrency']} senders back to back",
                 fontsize=10)

    # 3. Memory with conversations in progress.
    ax = axes[1][0]
    memory = report.get("memory") or {}
    samples = memory.get("samples") or []
    if samples:
        # As counted in the database: a phase that ran out of time opened fewer than it sent.
        ax.plot([s["in_progress_in_db"] for s in samples], [s["rss_mib"] for s in samples], marker="o")
        for s in samples:
            ax.annotate(f"{s['rss_mib']:.0f}", (s["in_progress_in_db"], s["rss_mib"]), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
        ax.set_ylim(bottom=0)
    ax.set_xlabel("conversations in progress (dialog state in the database)")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_title("Resident memory of one server process (SQLite)", fontsize=10)

    # 4. Quote engine.
    ax = axes[1][1]
    rows = report["quote"]["rows"]
    days = [max(r["days"], 1 / 24) for r in rows]
    ax.loglog(days, [r["per_call_ms"] for r in rows], marker="o", label="QuoteEngine.quote")
    for r, d in zip(rows, days):
        ax.annotate(f"{r['span']}\n{r['per_call_ms']:.2f} ms", (d, r["per_call_ms"]), textcoords="offset points",
                    xytext=(4, -14), fontsize=7)
    ax.set_xlabel("span (days, log)")
    ax.set_ylabel("time per quote (ms, log)")
    ax.set_title("Quote engine: time grows with days, not minutes", fontsize=10)

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
