"""Billing exports a bookkeeper can use (issue 16), made by the real `caredesk` command on SQLite
and PostgreSQL and read back as a spreadsheet would: the CSV by the csv module in its dialect
(plain, or excel-be with semicolons, decimal commas and a BOM), the workbook by openpyxl, with
its total formulas worked out over the cells they name. Every way gives the report's totals."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from tests.test_cli import CAMILLE, LOTTE, db, run  # noqa: F401 (db: the fixture)

SOFIE = "sofie.janssens@caresolutions.be"
THOMAS = "thomas.leroy@caresolutions.be"


@pytest.fixture
def billed(db):
    """Two customers, three tickets' worth of time: office hours, an evening (SLA 125 %), a
    Belgian holiday, a Saturday; two agents; a note with an accent and a separator in it."""
    numbers = []
    for requester, module in ((LOTTE, "ERP"), (LOTTE, "POS"), (CAMILLE, "Caisse")):
        created = run(["tickets", "create", "--kind", "incident", "--requester", requester, "--module", module,
                       "--description", "Printing fails with error 42 since the update",
                       "--reproduce", "Open an invoice and press Print", "--diagnostics", "Restarted, same on another PC", "--intake", "phone", "--by", "sofie.janssens@caresolutions.be", "--json"], db,
                      env_extra={"CAREDESK_FIXED_NOW": "2026-11-02T09:00"})  # opened before the time logged
        numbers.append(json.loads(created.stdout)["number"])
    a, b, c = numbers
    for agent, lines in ((SOFIE, [f"logtime {a} 1h30 teamviewer at 2026-11-20 16:00 café; rappel",
                                  f"logtime {b} 2h database at 2026-11-11 10:00"]),
                         (THOMAS, [f"logtime {a} 20m parameters at 2026-11-23 09:00",
                                   f"logtime {c} 45m development at 2026-11-21 10:00"])):
        chat = run(["chat", "--as", agent, "--lang", "en"], db, stdin="\n".join(lines) + "\n")
        assert chat.stdout.count("Time logged") == len(lines), chat.stdout
    report = json.loads(run(["billing", "report", "--month", "2026-11", "--format", "json"], db).stdout)
    return db, report


def _totals(report) -> dict[tuple[str, str, str], Decimal]:
    out = {("total", "", ""): Decimal(report["total"])}
    for customer in report["customers"]:
        out[("customer", customer["customer"], "")] = Decimal(customer["total"])
        for ticket in customer["tickets"]:
            out[("ticket", customer["customer"], ticket["ticket"])] = Decimal(ticket["total"])
    return out


def _check_report(db, report, tmp_path):
    # 102.21 + 63.88 (evening 125 %) + 27.39 (20 min parameters) ; 246.54 (holiday 150 %) ; 125.24 (Saturday 150 %)
    assert report["total"] == "565.26"
    starts = [line["start"] for c in report["customers"] for t in c["tickets"] for e in t["entries"] for line in e["lines"]]
    assert "2026-11-20T16:00:00+01:00" in starts and all(s.endswith("+01:00") for s in starts)


def _check_plain_csv(db, report, tmp_path):
    """Data rows only, one column per field; the totals apart."""
    out = run(["billing", "report", "--month", "2026-11", "--format", "csv"], db).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["customer", "ticket", "entry", "agent", "service", "date", "start", "end", "hours",
                             "multiplier", "basis", "rate", "amount", "currency", "note"]
    assert all(r["entry"].isdigit() for r in rows)  # no total rows among the data
    # Why each line's surcharge applies, one word per row (issue 15 §1): these tickets had no
    # accepted emergency, so the period of the rate card.
    assert {(r["date"], r["multiplier"], r["basis"]) for r in rows} == {
        ("2026-11-20", "1.0", "office_hours"), ("2026-11-20", "1.25", "outside_office_hours"),
        ("2026-11-11", "1.5", "public_holiday"), ("2026-11-23", "1.0", "office_hours"),
        ("2026-11-21", "1.5", "saturday")}
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(report["total"])
    evening = [r for r in rows if r["multiplier"] == "1.25"]
    assert [(r["start"], r["end"], r["note"]) for r in evening] == [
        ("2026-11-20T17:00:00+01:00", "2026-11-20T17:30:00+01:00", "café; rappel")]
    totals = list(csv.DictReader(io.StringIO(
        run(["billing", "report", "--month", "2026-11", "--format", "csv-totals"], db).stdout)))
    assert {(t["level"], t["customer"], t["ticket"]): Decimal(t["amount"]) for t in totals} == _totals(report)


def _check_excel_be_csv(db, report, tmp_path):
    """Files that open as a Belgian Excel reads them."""
    path = tmp_path / "billing-2026-11.csv"
    done = run(["billing", "report", "--month", "2026-11", "--format", "csv", "--dialect", "excel-be",
                "--out", str(path)], db)
    assert done.returncode == 0, done.stderr
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # UTF-8 with BOM
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert {r["customer"] for r in rows} == {"Brasserie De Klok", "Atelier Lumière"}
    assert all("," in r["amount"] and "." not in r["amount"] for r in rows)  # decimal comma

    def number(text: str) -> Decimal:
        return Decimal(text.replace(",", "."))

    assert sum(number(r["amount"]) for r in rows) == Decimal(report["total"])
    assert any(r["note"] == "café; rappel" for r in rows)  # the separator inside a field is quoted
    totals_file = tmp_path / "billing-2026-11.totals.csv"
    totals = list(csv.DictReader(io.StringIO(totals_file.read_bytes().decode("utf-8-sig"), newline=""), delimiter=";"))
    assert {(t["level"], t["customer"], t["ticket"]): number(t["amount"]) for t in totals} == _totals(report)
    # Hours add up too: 1.5 + 2 + 1/3 (0.33) + 0.75.
    assert number(totals[-1]["hours"]) == sum(number(r["hours"]) for r in rows)


_SUM = re.compile(r"=SUM\((\w+)!([A-Z]+)(\d+):([A-Z]+)(\d+)\)")


def _evaluate(book, formula: str) -> Decimal:
    """A spreadsheet's SUM over the cells the formula names (the only formula the export writes)."""
    match = _SUM.fullmatch(formula)
    assert match, formula
    sheet, col, first, col2, last = match.groups()
    assert col == col2
    return sum((Decimal(str(book[sheet][f"{col}{row}"].value)) for row in range(int(first), int(last) + 1)),
               Decimal("0"))


def _check_xlsx(db, report, tmp_path):
    """Typed entries, and totals as formulas that add up."""
    path = tmp_path / "billing.xlsx"
    done = run(["billing", "report", "--month", "2026-11", "--format", "xlsx", "--out", str(path)], db)
    assert done.returncode == 0, done.stderr
    book = load_workbook(path)
    entries = book["Entries"]
    header = [c.value for c in entries[1]]
    amount_col = header.index("amount")
    data = list(entries.iter_rows(min_row=2, values_only=True))
    assert all(isinstance(r[amount_col], (int, float)) for r in data)  # numbers, not text
    assert sum(Decimal(str(r[amount_col])) for r in data) == Decimal(report["total"])
    assert all(str(r[header.index("start")]).endswith("+01:00") for r in data)
    totals = book["Totals"]
    seen = {}
    for level, customer, ticket, hours, amount, currency in totals.iter_rows(min_row=2, values_only=True):
        assert str(amount).startswith("=SUM(") and str(hours).startswith("=SUM(") and currency == "EUR"
        seen[(level, customer or "", ticket or "")] = _evaluate(book, amount)
    assert seen == _totals(report)


def _check_refusals(db, report, tmp_path):
    """An xlsx needs a file; the dialect is for CSV."""
    no_file = run(["billing", "report", "--month", "2026-11", "--format", "xlsx"], db)
    assert no_file.returncode == 2 and "--out" in no_file.stderr
    wrong = run(["billing", "report", "--month", "2026-11", "--format", "json", "--dialect", "excel-be"], db)
    assert wrong.returncode == 2 and "--dialect" in wrong.stderr



# The month's time is logged once per back end (real processes are slow): every check reads it.
def test_billing_exports_open_in_a_spreadsheet_with_the_reports_totals(billed, tmp_path):
    db, report = billed
    for check in (_check_report, _check_plain_csv, _check_excel_be_csv, _check_xlsx, _check_refusals):
        check(db, report, tmp_path)


def test_time_billed_under_an_accepted_emergency_is_marked_in_tickets_show_and_the_exports(db):
    """Issue 15 §1: Camille accepts an out-of-hours emergency on Saturday night (150 %, the rate
    card's); an hour on Sunday night is billed under it, an hour on Monday morning is not."""
    saturday = {"CAREDESK_FIXED_NOW": "2026-11-28T22:30"}
    chat = run(["chat", "--as", CAMILLE, "--lang", "en"], db, env_extra=saturday, stdin="\n".join((
        "ticket", "1", "1", "Invoicing module", "Printing an invoice fails with error 42 since the update",
        "Open an invoice and press Print", "Restarted, same on another PC", "4", "1", "1")) + "\n")
    number = re.search(r"CS-2026-\d{5}", chat.stdout)
    assert number and "of the hourly rate" in chat.stdout, chat.stdout
    number = number.group(0)
    lines = [f"logtime {number} 1h teamviewer at 2026-11-29 01:00", f"logtime {number} 1h teamviewer at 2026-11-30 10:00"]
    logged = run(["chat", "--as", SOFIE, "--lang", "en"], db, env_extra={"CAREDESK_FIXED_NOW": "2026-12-01T10:00"},
                 stdin="\n".join(lines) + "\n")
    assert logged.stdout.count("Time logged") == 2, logged.stdout
    shown = run(["tickets", "show", number], db).stdout
    [sunday] = [line for line in shown.splitlines() if line.startswith("time:") and "2026-11-29 01:00" in line]
    assert "×1.5 — accepted emergency (rate card)" in sunday and "by Camille Dubois" in sunday, shown
    [monday] = [line for line in shown.splitlines() if line.startswith("time:") and "2026-11-30 10:00" in line]
    assert "accepted emergency" not in monday
    rows = list(csv.DictReader(io.StringIO(run(["billing", "report", "--month", "2026-11", "--format", "csv"],
                                               db).stdout)))
    assert [(r["ticket"], r["multiplier"], r["basis"]) for r in rows] == [(number, "1.5", "emergency"),
                                                                         (number, "1.0", "office_hours")]
    report = json.loads(run(["billing", "report", "--month", "2026-11", "--format", "json"], db).stdout)
    sunday_entry, monday_entry = report["customers"][0]["tickets"][0]["entries"]
    assert sunday_entry["emergency"]["accepted_by"] == "Camille Dubois" and monday_entry["emergency"] is None
    text = run(["billing", "report", "--month", "2026-11"], db).stdout
    assert "billed under the accepted emergency: x1.5 (rate card), accepted 2026-11-28 22:30 by Camille Dubois" in text, text
