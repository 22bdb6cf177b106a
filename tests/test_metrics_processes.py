"""/metrics from real processes: `serve --workers 1` adds the worker process's counts to the
server's scrape (multiprocess mode), and a server listening publicly serves /metrics only on
its own `[metrics] port`."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.test_cli import CAREDESK, DIRECTORY, LOTTE, ROOT, free_port, run


def _env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CAREDESK_", "SLACK_", "MICROSOFT_", "PROMETHEUS_", "OTEL_"))}
    env.update({"DATABASE_URL": db_url, "CAREDESK_FIXED_NOW": "2026-11-26T10:00"})
    return env


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            _get(f"http://127.0.0.1:{port}/healthz")
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_servers_scrape_adds_up_its_worker_processes(tmp_path):
    db = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    assert run(["directory", "load", DIRECTORY], db).returncode == 0
    number = json.loads(run(["tickets", "create", "--kind", "incident", "--requester", LOTTE, "--module", "ERP",
                             "--description", "Printing an invoice fails with error 42",
                             "--reproduce", "Open an invoice and press Print", "--diagnostics", "Restarted, same on another PC", "--intake", "phone", "--by", "sofie.janssens@caresolutions.be", "--json"], db).stdout)["number"]
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db,
               stdin="\n".join(["escalate", number, "2", "The fix did not work.", "1"]) + "\n")
    assert "has been recorded" in chat.stdout
    port = free_port()
    # No Slack or Teams configured: the worker process (not the server) keeps the ticket's number
    # for Lotte and the ping for Naida for their next visit ("While you were away").
    proc = subprocess.Popen([CAREDESK, "serve", "--port", str(port), "--workers", "1"], env=_env(db), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(port, proc)
        kept_key = ("caredesk_kept_for_next_visit_total", ())
        samples: dict = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and samples.get(kept_key) != 2.0:
            time.sleep(0.5)
            status, text = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            samples = _samples(text)
        assert samples.get(kept_key) == 2.0, sorted(k for k in samples if "kept" in k[0])
        assert samples[("caredesk_dead_letters_total", (("queue", "outbox"),))] == 0.0
        assert samples[("caredesk_queue_items", (("queue", "outbox"), ("status", "sent")))] == 2.0
        assert samples[("caredesk_escalations", (("status", "open"),))] == 1.0
        assert samples[("caredesk_database_up", ())] == 1.0
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, output


def test_a_public_server_serves_metrics_only_on_its_own_port(tmp_path):
    port, metrics_port = free_port(), free_port()
    config = tmp_path / "caredesk.toml"
    config.write_text(f"[metrics]\nport = {metrics_port}\n")
    env = _env(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    proc = subprocess.Popen([CAREDESK, "--config", str(config), "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(port, proc)
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 404
        status, text = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and "caredesk_queue_items" in text
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    # Without a port of its own, a public server says why /metrics is missing.
    config.write_text("")
    proc = subprocess.Popen([CAREDESK, "--config", str(config), "serve", "--host", "0.0.0.0", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(port, proc)
        assert _get(f"http://127.0.0.1:{port}/metrics")[0] == 404
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "[metrics] port" in output
