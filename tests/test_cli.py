"""The `caredesk` command as an operator and a newcomer use it: real processes, real databases."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_in_thread

ROOT = Path(__file__).resolve().parents[1]
CAREDESK = str(Path(sys.executable).parent / "caredesk")
DIRECTORY = str(ROOT / "examples" / "directory.yaml")
LOTTE = "lotte.peeters@brasseriedeklok.be"
CAMILLE = "camille.dubois@atelier-lumiere.be"
EMMA = "emma.wilson@atelier-lumiere.be"


def run(args, db_url, *, stdin: str | None = None, env_extra=None, timeout=60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREDESK_", "SLACK_", "MICROSOFT_"))}
    env.update({"DATABASE_URL": db_url, "CAREDESK_FIXED_NOW": "2026-11-26T10:00"}, **(env_extra or {}))
    return subprocess.run([CAREDESK, *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


async def _load_directory(url: str) -> None:
    from bot.domain.directory import read_directory_file
    from bot.store.sql import SqlStore

    store = SqlStore(url)
    try:
        await store.initialize()
        await store.replace_directory(read_directory_file(DIRECTORY))
    finally:
        await store.close()


@pytest.fixture
def db(store_url):
    """The database with examples/directory.yaml loaded, in this process: one `caredesk` process
    less per test (`caredesk directory load` itself: test_directory_load_says_what_it_loaded)."""
    run_in_thread(lambda: _load_directory(store_url))
    return store_url


def test_directory_load_says_what_it_loaded(store_url):
    result = run(["directory", "load", DIRECTORY], store_url)
    assert result.returncode == 0, result.stderr
    assert "2 companies, 5 contacts, 4 staff" in result.stdout
    shown = run(["companies", "show", "Atelier Lumière"], store_url)
    assert shown.returncode == 0 and "Atelier Lumière" in shown.stdout, shown.stderr


# ---- quotes --------------------------------------------------------------------------------------


def test_quote_json_contract(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    result = run(["quote", "--service", "teamviewer", "--start", "2026-11-26T16:00", "--end", "2026-11-26T18:30", "--json"], url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "service": "teamviewer",
        "currency": "EUR",
        "lines": [
            {"start": "2026-11-26T16:00:00+01:00", "end": "2026-11-26T17:00:00+01:00", "multiplier": "1.0",
             "hours": "1.00", "rate": "102.21", "amount": "102.21"},
            {"start": "2026-11-26T17:00:00+01:00", "end": "2026-11-26T18:30:00+01:00", "multiplier": "1.5",
             "hours": "1.50", "rate": "102.21", "amount": "229.97"},
        ],
        "total": "332.18",
    }


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--service", "nope", "--start", "2026-11-26T16:00", "--end", "2026-11-26T18:00"], "Unknown service"),
        (["--service", "database", "--start", "2026-11-26T18:00", "--end", "2026-11-26T16:00"], "after the start"),
        (["--service", "teamviewer", "--start", "2026-11-26T16:00", "--end", "2026-11-26T18:00", "--participants", "4"], "The rate card prices Assistance via TeamViewer"),
        (["--service", "teamviewer", "--start", "2026-03-29T02:30", "--end", "2026-03-29T04:00"], "02:30 does not exist"),
        (["--service", "teamviewer", "--start", "2026-10-25T02:30", "--end", "2026-10-25T04:00"], "2:30+01:00"),
        (["--service", "teamviewer", "--start", "yesterday", "--end", "2026-11-26T18:00"], "--start"),
        (["--service", "teamviewer", "--start", "2026-11-26T16:00", "--end", "2026-11-26T18:00", "--customer", "Nobody"], "Unknown customer"),
    ],
)
def test_quote_refusals_exit_2_with_one_line(tmp_path, args, fragment):
    result = run(["quote", *args, "--json"], f"sqlite+aiosqlite:///{tmp_path / 'q.db'}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_quote_with_customer_sla_and_utc_offset(db):
    result = run(["quote", "--service", "teamviewer", "--start", "2026-11-29T10:00+01:00", "--end", "2026-11-29T12:00+01:00",
                  "--customer", "brasserie de klok", "--json"], db)
    assert result.returncode == 0, result.stderr
    quote = json.loads(result.stdout)
    assert [ln["multiplier"] for ln in quote["lines"]] == ["1.5"]  # their SLA's Sunday rate
    assert quote["total"] == "306.63"


# ---- tickets -------------------------------------------------------------------------------------


def test_agent_registers_lists_and_shows_tickets(db):
    created = run(["tickets", "create", "--kind", "service_request", "--requester", "CAMILLE.Dubois@atelier-lumiere.be",
                   "--module", "Stock", "--description", "Phoned in: how to add a warehouse location?", "--urgency", "low",
                   "--intake", "phone", "--by", "thomas.leroy@caresolutions.be", "--json"], db)
    assert created.returncode == 0, created.stderr
    ticket = json.loads(created.stdout)
    assert ticket["number"] == "CS-2026-00001"
    assert (ticket["kind"], ticket["status"], ticket["requester"], ticket["company"]) == (
        "service_request", "new", CAMILLE, "Atelier Lumière")
    second = run(["tickets", "create", "--kind", "change_request", "--requester", LOTTE, "--module", "Reports",
                  "--description", "Add the VAT column to the monthly report", "--intake", "mail",
                  "--by", "sofie.janssens@caresolutions.be", "--json"], db)
    assert json.loads(second.stdout)["number"] == "CS-2026-00002"
    assert json.loads(second.stdout)["status"] == "submitted"
    listed = json.loads(run(["tickets", "list", "--json"], db).stdout)
    assert [t["number"] for t in listed] == ["CS-2026-00002", "CS-2026-00001"]
    shown = json.loads(run(["tickets", "show", "cs-2026-00001", "--json"], db).stdout)
    assert shown["description"] == "Phoned in: how to add a warehouse location?"
    assert run(["tickets", "show", "CS-2026-09999"], db).returncode == 2


GOOD = ["--module", "Invoicing", "--description", "Printing an invoice fails with error 42 since the update",
        "--reproduce", "Open an invoice and press Print", "--diagnostics", "Restarted the PC, same error"]
SOFIE = ["--intake", "mail", "--by", "sofie.janssens@caresolutions.be"]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--kind", "incident", "--requester", "nobody@example.com", *GOOD, *SOFIE], "nobody@example.com"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--module", "  ", *SOFIE], "--module"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--module", "X", *SOFIE], "--module: Please name the module"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--description", "?", *SOFIE], "--description"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--description", "sdkfjh qwpoe asdasd lkjhg", *SOFIE],
         "random keys"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--reproduce", "x", *SOFIE], "--reproduce"),
        (["--kind", "incident", "--requester", LOTTE, "--module", "ERP", "--description",
          "Printing an invoice fails with error 42 since the update", *SOFIE], "--reproduce"),
        (["--kind", "complaint", "--requester", LOTTE, *GOOD, *SOFIE], "--kind"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--urgency", "asap", *SOFIE], "--urgency"),
        (["--kind", "incident", "--requester", LOTTE, "--module", "X", *SOFIE], "--description"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--intake", "fax", "--by",
          "sofie.janssens@caresolutions.be"], "--intake: Unknown intake 'fax'"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--intake", "chat", "--by",
          "sofie.janssens@caresolutions.be"], "--intake"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--intake", "phone", "--by", CAMILLE],
         "--by: camille.dubois@atelier-lumiere.be is not a member of the service desk"),
        (["--kind", "incident", "--requester", LOTTE, *GOOD, "--intake", "phone"], "--by"),
    ],
)
def test_bad_ticket_registration_writes_nothing(db, args, fragment):
    result = run(["tickets", "create", *args], db)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert json.loads(run(["tickets", "list", "--json"], db).stdout) == []


# ---- the console, scripted in three languages ---------------------------------------------------

SCRIPTS = {
    # language: (person, lines, expected kind, fields typed)
    "en": (EMMA, ["new ticket", "1", "1", "+32 2 555 00 11", "Label printer in the warehouse",
                  "The label printer prints blank labels since the driver update on Monday",
                  "Print any shipping label from the Orders screen", "Printed a test page from Windows: it is blank too",
                  "3", "1"], "incident"),
    "fr": (CAMILLE, ["nouveau ticket", "2", "1", "Module de facturation",
                     "Comment puis-je exporter les factures du mois en PDF pour notre comptable ?", "1", "1"],
           "service_request"),
    "nl": (LOTTE, ["nieuw ticket", "3", "1", "Rapportering",
                   "Graag een extra kolom met het btw-nummer van de klant in het maandrapport", "2", "1"],
           "change_request"),
}


@pytest.mark.parametrize("lang", ["en", "fr", "nl"])
def test_scripted_console_conversation_opens_a_ticket(db, lang):
    email, lines, kind = SCRIPTS[lang]
    chat = run(["chat", "--as", email, "--lang", lang], db, stdin="\n".join(lines) + "\n")
    assert chat.returncode == 0, chat.stderr
    assert "CS-2026-00001" in chat.stdout
    shown = json.loads(run(["tickets", "show", "CS-2026-00001", "--json"], db).stdout)
    assert shown["kind"] == kind and shown["requester"] == email and shown["channel"] == "console"
    if lang == "en":
        assert shown["requester_phone"] == "+32 2 555 00 11"
        assert (shown["module"], shown["reproduce"], shown["diagnostics"], shown["urgency"]) == (
            "Label printer in the warehouse", "Print any shipping label from the Orders screen",
            "Printed a test page from Windows: it is blank too", "high")
        assert shown["description"] == lines[5]
    elif lang == "fr":
        assert "Votre ticket a été créé" in chat.stdout
        assert (shown["module"], shown["description"], shown["urgency"]) == ("Module de facturation", lines[4], "low")
    else:
        assert "Uw ticket is aangemaakt" in chat.stdout
        assert (shown["module"], shown["description"], shown["urgency"]) == ("Rapportering", lines[4], "normal")


def test_invalid_answers_are_asked_again_and_cancel_leaves_nothing(db):
    chat = run(["chat", "--as", "someone.new@example.org"], db, stdin="\n".join([
        "ticket", "1", "Sam New", "sam at example", "someone.new@example.org", "123", "0470 11 22 33",
        "ERP", "broken", "cancel"]) + "\n")
    assert chat.returncode == 0
    assert chat.stdout.count("does not look like an e-mail") == 1
    assert chat.stdout.count("does not look like a phone number") == 1
    assert "more detail" in chat.stdout
    assert "Nothing was created" in chat.stdout
    assert json.loads(run(["tickets", "list", "--json"], db).stdout) == []


def test_chat_killed_mid_dialog_resumes_at_the_same_question(db):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREDESK_")}
    env.update({"DATABASE_URL": db, "CAREDESK_FIXED_NOW": "2026-11-26T10:00"})
    proc = subprocess.Popen([CAREDESK, "chat", "--as", LOTTE, "--lang", "en"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    for line in ("ticket", "1", "1", "Invoicing module"):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
    # Wait until the fourth answer was processed (the description question is printed), then kill.
    seen = ""
    deadline = time.monotonic() + 30
    while "describe it clearly" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    assert "describe it clearly" in seen
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    again = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="")
    assert "We were here" in again.stdout and "describe it clearly" in again.stdout


# ---- server and configuration --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_health_checks(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREDESK_")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    proc = subprocess.Popen([CAREDESK, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = (r.status, json.loads(r.read()))
                break
            except OSError:
                time.sleep(0.2)
        assert body == (200, {"status": "ok"})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read())["database"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_invalid_configuration_names_the_key_and_stops(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[multipliers]\nsunday = "double"\n')
    result = run(["tickets", "list"], f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", env_extra={"CAREDESK_CONFIG": str(config)})
    assert result.returncode == 2 and "multipliers.sunday" in result.stderr


@pytest.mark.parametrize("table,key", [("[slack]\napi_ulr = 'http://127.0.0.1:9/api/'", "slack.api_ulr"),
                                       ("[teams]\ntenant = 'x'", "teams.tenant"),
                                       ("[slack]\nbot_token = 'xoxb-s3cr3t'", "slack.bot_token"),
                                       ("[server]\nport = 70000", "server.port"),
                                       ("[server]\nhots = '0.0.0.0'", "server.hots")])
def test_a_wrong_key_in_an_adapters_section_stops_every_command(tmp_path, table, key):
    config = tmp_path / "bad.toml"
    config.write_text(table + "\n")
    result = run(["tickets", "list"], f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", env_extra={"CAREDESK_CONFIG": str(config)})
    assert result.returncode == 2 and f"'{key}'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "s3cr3t" not in result.stderr


def test_a_bad_teams_variable_stops_the_command(tmp_path):
    result = run(["tickets", "list"], f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                 env_extra={"MICROSOFT_APP_TYPE": "Personal"})
    assert result.returncode == 2 and "MICROSOFT_APP_TYPE" in result.stderr


def test_insecure_mode_refuses_a_public_address(tmp_path):
    result = run(["serve", "--host", "0.0.0.0", "--port", str(free_port())], f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                 env_extra={"CAREDESK_INSECURE_DEV_MODE": "true"})
    assert result.returncode != 0 and "loopback" in result.stderr


# ---- agents and managers from the command line ------------------------------------------------------


def test_billing_report_escalations_and_outbox(db):
    created = run(["tickets", "create", "--kind", "incident", "--requester", LOTTE, "--module", "ERP",
                   "--description", "Printing an invoice fails with error 42", "--reproduce", "Open an invoice, press Print",
                   "--diagnostics", "Restarted the PC, same error", "--intake", "phone",
                   "--by", "sofie.janssens@caresolutions.be", "--json"], db,
                  env_extra={"CAREDESK_FIXED_NOW": "2026-11-02T09:00"})  # opened before the time logged
    number = json.loads(created.stdout)["number"]
    agent = "sofie.janssens@caresolutions.be"
    chat = run(["chat", "--as", agent, "--lang", "en"], db, stdin="\n".join([
        f"logtime {number} 1h30 teamviewer at 2026-11-20 16:00",   # Friday: office hours then evening (SLA 125 %)
        f"logtime {number} 2h database at 2026-11-11 10:00",       # a Belgian public holiday (SLA 150 %)
    ]) + "\n")
    assert chat.returncode == 0 and chat.stdout.count("Time logged") == 2, chat.stdout
    report = json.loads(run(["billing", "report", "--month", "2026-11", "--format", "json"], db).stdout)
    # 102.21 + 0.5 h x 102.21 x 1.25 = 63.88 ; 2 h x 82.18 x 1.5 = 246.54
    assert report["total"] == "412.63"
    [customer] = report["customers"]
    assert customer["customer"] == "Brasserie De Klok" and customer["total"] == "412.63"
    csv_out = run(["billing", "report", "--month", "2026-11", "--format", "csv"], db).stdout.splitlines()
    # Data rows only (the totals are apart: tests/test_billing_export.py).
    assert csv_out[0].startswith("customer,ticket,entry") and len(csv_out) == 4 and "total" not in csv_out[-1]
    assert json.loads(run(["billing", "report", "--month", "2026-10", "--format", "json"], db).stdout)["total"] == "0.00"
    other = json.loads(run(["billing", "report", "--month", "2026-11", "--customer", "Atelier Lumière", "--format",
                            "json"], db).stdout)
    assert other["total"] == "0.00"
    text = run(["billing", "report", "--month", "2026-11"], db).stdout
    # Local times with the zone named (16:00 in Brussels, not 15:00 UTC).
    assert "times in Europe/Brussels" in text and "2026-11-20 16:00" in text and "15:00" not in text
    assert run(["billing", "report", "--month", "11/2026"], db).returncode == 2
    unknown = run(["billing", "report", "--month", "2026-11", "--customer", "Nobody"], db)
    assert unknown.returncode == 2 and "known customers: Atelier Lumière, Brasserie De Klok" in unknown.stderr

    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db,
               stdin="\n".join(["escalate", number, "2", "The fix did not work.", "1"]) + "\n")
    assert "has been recorded" in chat.stdout
    [escalation] = json.loads(run(["escalations", "list", "--json"], db).stdout)
    assert (escalation["ticket"], escalation["level"], escalation["status"]) == (number, 1, "open")
    assert "level 1" in run(["escalations", "list"], db).stdout

    # No Slack or Teams configured: the worker cannot push to anyone; the ping to Naida (in the
    # directory) is kept for her next visit instead of dead-lettered.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAREDESK_", "SLACK_", "MICROSOFT_"))}
    env.update({"DATABASE_URL": db, "CAREDESK_FIXED_NOW": "2026-11-26T10:00"})
    worker = subprocess.Popen([CAREDESK, "worker", "--interval", "0.2"], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        kept: list = []
        while time.monotonic() < deadline and not kept:
            time.sleep(0.5)
            kept = [m for m in json.loads(run(["outbox", "list", "--json"], db).stdout)
                    if m["recipient"].lower() == "naida.jelacic@caresolutions.be" and m["status"] == "sent"]
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    assert kept and kept[0]["last_error"] == "kept for the next visit"
    assert json.loads(run(["outbox", "list", "--failed", "--json"], db).stdout) == []
    assert run(["outbox", "retry"], db).stdout.strip() == "0 message(s) re-queued"
    # Naida sees the ping the next time she talks to CareDesk, once.
    chat = run(["chat", "--as", "naida.jelacic@caresolutions.be", "--lang", "en"], db, stdin="help\nhelp\n")
    assert chat.stdout.count("While you were away:") == 1 and number in chat.stdout


def test_inbox_list_shows_what_waits_and_what_was_given_up(db):
    import asyncio
    from datetime import datetime, timedelta, timezone

    from bot.store.ports import NewInboxItem
    from bot.store.sql import SqlStore

    now = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

    async def seed() -> None:
        store = SqlStore(db)
        try:
            await store.enqueue_inbound([
                NewInboxItem("slack", "message", f"slack:T1:{user}", {"n": user}, f"event:{user}")
                for user in ("U1", "U2", "U3")], now)
            first, second, _ = await store.list_inbound()
            for item in await store.claim_inbound(now, timedelta(minutes=1), limit=2):
                if item.id == first.id:
                    await store.finish_inbound(item.id, now, attempt=item.attempts)
                else:
                    await store.fail_inbound(item.id, "RuntimeError: boom", attempt=item.attempts)
        finally:
            await store.close()

    asyncio.run(seed())
    waiting = json.loads(run(["inbox", "list", "--json"], db).stdout)
    assert [(i["conversation"], i["status"]) for i in waiting] == [("slack:T1:U3", "pending")]
    failed = json.loads(run(["inbox", "list", "--failed", "--json"], db).stdout)
    assert [(i["conversation"], i["attempts"], i["last_error"]) for i in failed] == [
        ("slack:T1:U2", 1, "RuntimeError: boom")]
    assert [i["status"] for i in json.loads(run(["inbox", "list", "--all", "--json"], db).stdout)] == [
        "done", "failed", "pending"]
    text = run(["inbox", "list", "--failed"], db).stdout
    assert "slack/message" in text and "last error: RuntimeError: boom" in text
    assert run(["inbox", "list", "--failed", "--all"], db).returncode == 2


# ---- the on-call rota (issue 15) ------------------------------------------------------------------


def test_oncall_show_prints_who_is_on_duty(db):
    christmas = run(["oncall", "show", "--at", "2026-12-24T22:00"], db)
    assert christmas.returncode == 0, christmas.stderr
    assert "on duty: Sofie Janssens <sofie.janssens@caresolutions.be> +32 3 800 5 811" in christmas.stdout
    assert "backup:  Thomas Leroy" in christmas.stdout and "until:   2026-12-28 09:00" in christmas.stdout
    thursday = json.loads(run(["oncall", "show", "--at", "2026-12-03T23:00", "--json"], db).stdout)
    assert thursday == {"at": "2026-12-03T23:00:00+01:00", "on_duty": "thomas.leroy@caresolutions.be",
                        "backup": "sofie.janssens@caresolutions.be", "until": "2026-12-04T09:00:00+01:00"}
    office = run(["oncall", "show"], db)  # CAREDESK_FIXED_NOW: Thursday 10:00, office hours
    assert "nobody on duty" in office.stdout
    bad = run(["oncall", "show", "--at", "Christmas"], db)
    assert bad.returncode == 2 and "--at" in bad.stderr


def test_a_bad_rota_is_refused_and_the_directory_is_kept(db, tmp_path):
    broken = tmp_path / "directory.yaml"
    text = Path(DIRECTORY).read_text(encoding="utf-8")
    broken.write_text(text.replace("person: sofie.janssens@caresolutions.be", "person: lotte.peeters@brasseriedeklok.be",
                                   1), encoding="utf-8")
    result = run(["directory", "load", str(broken)], db)
    assert result.returncode == 2
    assert "oncall.weekly[0].person: lotte.peeters@brasseriedeklok.be is not an agent or manager" in result.stderr
    assert "Sofie Janssens" in run(["oncall", "show", "--at", "2026-11-30T20:00"], db).stdout


def test_quote_text_in_dutch_shows_durations_rates_and_the_zone(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    result = run(["quote", "--service", "teamviewer", "--start", "2026-11-26T16:00", "--end", "2026-11-26T18:30",
                  "--lang", "nl"], url)
    assert result.returncode == 0, result.stderr
    assert "€\xa0102,21/u" in result.stdout and "Europe/Brussels" in result.stdout
    assert "1 u 30 × €\xa0102,21/u × 150 %" in result.stdout and "Totaal" in result.stdout


# ---- the console as people use it (issue 15 §5, §6) ----------------------------------------------


def test_console_menu_numbers_and_escape_sequences(db):
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="\n".join([
        "1", "cancel", "Open a ticket", "2", "1", "Invoicing\x1b[31m module\x1b[0m",
        "How can I export the \x1b]0;owned\x07monthly invoices to PDF for our accountant?", "1", "1"]) + "\n")
    assert chat.returncode == 0, chat.stderr
    assert "\x1b" not in chat.stdout and "\x07" not in chat.stdout
    assert "Sorry, I did not understand" not in chat.stdout
    assert chat.stdout.count("What kind of ticket is it?") == 2
    shown = json.loads(run(["tickets", "show", "CS-2026-00001", "--json"], db).stdout)
    assert shown["module"] == "Invoicing module" and shown["kind"] == "service_request"
    assert shown["description"] == "How can I export the monthly invoices to PDF for our accountant?"


def test_console_inside_a_dialog_menu_words_say_how_to_leave(db):
    chat = run(["chat", "--as", LOTTE, "--lang", "fr"], db, stdin="ticket\ndevis\n/help\n")
    assert chat.returncode == 0, chat.stderr
    assert "annuler" in chat.stdout and "Veuillez choisir" not in chat.stdout


def test_console_closed_output_pipe_ends_quietly_and_keeps_the_answer(db):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREDESK_")}
    env.update({"DATABASE_URL": db, "CAREDESK_FIXED_NOW": "2026-11-26T10:00"})
    proc = subprocess.Popen([CAREDESK, "chat", "--as", LOTTE, "--lang", "en"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    proc.stdin.write("ticket\n")
    proc.stdin.flush()
    seen = ""
    deadline = time.monotonic() + 30
    while "What kind of ticket" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    proc.stdout.close()  # the reader goes away (`caredesk chat | head`)
    proc.stdin.write("1\n")
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    errors = proc.stderr.read()
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    again = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="")
    assert "We were here" in again.stdout and "Are these details correct" in again.stdout


# ---- workspaces and tenants bound to companies (issue 17) ------------------------------------------


def test_companies_bind_show_unbind_and_bad_input(db):
    bound = run(["companies", "bind", "--company", "atelier LUMIÈRE", "--slack-team", "T0LUMIERE"], db)
    assert bound.returncode == 0 and "Slack workspace T0LUMIERE bound to Atelier Lumière" in bound.stdout
    again = run(["companies", "bind", "--company", "Atelier Lumière", "--slack-team", "T0LUMIERE"], db)
    assert "bound to Atelier Lumière already" in again.stdout
    run(["companies", "bind", "--service-desk", "--teams-tenant", "0f1e2d3c-caresolutions"], db)
    shown = json.loads(run(["companies", "show", "Atelier Lumière", "--json"], db).stdout)
    assert {(b["channel"], b["id"]) for b in shown["bindings"]} >= {("slack", "T0LUMIERE"), ("msteams", "tenant-1")}
    desk = run(["companies", "show", "service-desk"], db).stdout
    assert "Microsoft 365 tenant 0f1e2d3c-caresolutions" in desk
    # Kept when the directory file (which does not name it) is loaded again.
    run(["directory", "load", DIRECTORY], db)
    assert "T0LUMIERE" in run(["companies", "show", "Atelier Lumière"], db).stdout
    assert "no longer bound" in run(["companies", "unbind", "--company", "Atelier Lumière", "--slack-team", "T0LUMIERE"], db).stdout
    assert "T0LUMIERE" not in run(["companies", "show", "Atelier Lumière"], db).stdout
    for args, message in ((["--company", "Nobody Inc", "--slack-team", "T0X"], "no company 'Nobody Inc'"),
                          (["--service-desk", "--slack-team", "our workspace"], "not a Slack team id")):
        refused = run(["companies", "bind", *args], db)
        assert refused.returncode == 2 and message in refused.stderr
    assert run(["companies", "pending"], db).stdout.strip() == "no installed workspace is waiting to be bound"
