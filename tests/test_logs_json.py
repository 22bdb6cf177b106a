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
