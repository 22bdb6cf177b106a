"""`caredesk privacy export|erase|audit` as a data-protection officer runs them: real processes on a
database filled by real conversations (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import JSON, MetaData, String, select

from bot.store.sql import create_engine_for
from tests.test_cli import DIRECTORY, LOTTE, db, run  # noqa: F401 (the db fixture)

LOTTE_NAME = "Lotte Peeters"
LOTTE_PHONE = "+32 3 555 12 34"
AGENT = "sofie.janssens@caresolutions.be"


def _texts_naming(url: str, *needles: str) -> list[tuple[str, str, str]]:
    """Every text or JSON value of every table of the database that names one of `needles`."""

    def read(conn):
        metadata = MetaData()
        metadata.reflect(conn)
        found = []
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, JSON))]
            for row in conn.execute(select(*columns)).all() if columns else ():
                for column, value in zip(columns, row):
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    if value is not None and any(n.lower() in text.lower() for n in needles):
                        found.append((table.name, column.name, text[:80]))
        return found

    async def scan():
        engine = create_engine_for(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(scan())


def test_export_then_erase_a_customer_keeps_billing_and_leaves_no_trace(db):
    # Lotte opens a ticket in a conversation, an agent logs time on it, she escalates it and
    # leaves a quote half-way (a dialog state).
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db, stdin="\n".join([
        "ticket", "1", "1", "Invoicing module", f"Printing fails, call {LOTTE_NAME} at {LOTTE_PHONE}",
        "Open an invoice and press Print", "Restarted, same on another PC", "2", "1"]) + "\n")
    assert "CS-2026-00001" in chat.stdout, chat.stdout
    assert run(["chat", "--as", AGENT, "--lang", "en"], db,
               stdin="logtime CS-2026-00001 1h30 teamviewer at 2026-11-20 16:00 confirm\n")  # before it was opened.returncode == 0
    chat = run(["chat", "--as", LOTTE, "--lang", "en"], db,
               stdin="\n".join(["escalate", "CS-2026-00001", "2", "Still broken.", "1", "quote"]) + "\n")
    assert "has been recorded" in chat.stdout
    billing_before = json.loads(run(["billing", "report", "--month", "2026-11", "--format", "json"], db).stdout)
    assert billing_before["total"] != "0.00"

    export = run(["privacy", "export", LOTTE.upper(), "--json"], db)
    assert export.returncode == 0, export.stderr
    held = json.loads(export.stdout)
    assert held["names"] == [LOTTE_NAME] and held["phones"] == [LOTTE_PHONE]
    assert [t["number"] for t in held["tables"]["tickets"]] == ["CS-2026-00001"]
    assert [c["email"] for c in held["tables"]["contacts"]] == [LOTTE]
    assert held["tables"]["dialog_states"] and held["tables"]["escalations"] and held["tables"]["time_entries"]
    text = run(["privacy", "export", LOTTE], db).stdout
    assert f"Personal data held about {LOTTE}" in text and "tickets (1)" in text

    # Refusals: exit 2, one line, nothing changed.
    for args in (["privacy", "erase", LOTTE], ["privacy", "erase", "nobody@example.com", "--yes"],
                 ["privacy", "export", "nobody@example.com"], ["privacy", "erase", "not-an-email", "--yes"]):
        refused = run(args, db)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, (args, refused.stderr)
    assert _texts_naming(db, LOTTE, LOTTE_NAME, LOTTE_PHONE)

    erased = run(["privacy", "erase", LOTTE, "--yes", "--by", "dpo@caresolutions.be"], db)
    assert erased.returncode == 0, erased.stderr
    assert "erased: now erased-" in erased.stdout

    assert _texts_naming(db, LOTTE, LOTTE_NAME, LOTTE_PHONE) == []
    assert json.loads(run(["billing", "report", "--month", "2026-11", "--format", "json"], db).stdout)["total"] == \
        billing_before["total"]
    ticket = json.loads(run(["tickets", "show", "CS-2026-00001", "--json"], db).stdout)
    assert ticket["requester"].startswith("erased-") and ticket["description"].startswith("Printing fails, call Erased")
    assert run(["privacy", "export", LOTTE], db).returncode == 2
    [audit] = json.loads(run(["privacy", "audit", "--json"], db).stdout)
    assert audit["erased_by"] == "dpo@caresolutions.be" and audit["pseudonym"] == ticket["requester"]
    # Other people are untouched.
    assert run(["privacy", "export", AGENT], db).returncode == 0
