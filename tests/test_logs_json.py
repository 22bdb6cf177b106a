"""CAREDESK_LOG_FORMAT=json: one JSON object a line, with the channel, conversation and ticket
where known, and never what the person wrote."""

from __future__ import annotations

import json

from tests.test_cli import LOTTE, db, run  # noqa: F401 (the db fixture)

SECRET_WORDS = "Printing fails with error 4242 on the blue printer"


def test_json_log_lines_name_the_ticket_and_never_the_text(db):
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="\n".join([
        "ticket", "1", "1", "Invoicing module", SECRET_WORDS, "Open an invoice and press Print",
        "Restarted, same on another PC", "2", "1"]) + "\n",
        env_extra={"CAREDESK_LOG_FORMAT": "json", "CAREDESK_LOG_LEVEL": "INFO"})
    assert chat.returncode == 0, chat.stderr
    assert "CS-2026-00001" in chat.stdout
    lines = [json.loads(line) for line in chat.stderr.splitlines() if line.strip()]
    assert lines, "INFO lines were written"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [created] = [line for line in lines if line.get("ticket") == "CS-2026-00001"]
    assert created["level"] == "INFO" and created["channel"] == "console"
    assert created["conversation"] == f"console:{LOTTE}"
    assert SECRET_WORDS not in chat.stderr and "blue printer" not in chat.stderr


def test_text_logs_stay_the_default(db):
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="help\n", env_extra={"CAREDESK_LOG_LEVEL": "INFO"})
    assert chat.returncode == 0
    assert all(not line.startswith("{") for line in chat.stderr.splitlines())


def test_a_servers_json_access_lines_carry_the_request_id(tmp_path):
    import subprocess
    import urllib.request

    from tests.test_cli import CAREDESK, ROOT, free_port
    from tests.test_metrics_processes import _env, _wait_up

    port = free_port()
    env = {**_env(f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"), "CAREDESK_LOG_FORMAT": "json"}
    proc = subprocess.Popen([CAREDESK, "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(port, proc)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"X-Request-Id": "req-4711"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line.get("request_id") == "req-4711" and "GET /healthz" in line["message"] for line in lines), lines
