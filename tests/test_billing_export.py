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
                       "--description", "Printing fails with error 42 since the update", "--json"], db)
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


def test_the_report_adds_up_and_its_times_are_local_with_their_offset(billed):
    _db, report = billed
    # 102.21 + 63.88 (evening 125 %) + 27.39 (20 min parameters) ; 246.54 (holiday 150 %) ; 125.24 (Saturday 150 %)
    assert report["total"] == "565.26"
    starts = [line["start"] for c in report["customers"] for t in c["tickets"] for e in t["entries"] for line in e["lines"]]
    assert "2026-11-20T16:00:00+01:00" in starts and all(s.endswith("+01:00") for s in starts)


def test_plain_csv_has_data_rows_only_one_column_per_field(billed):
    db, report = billed
    out = run(["billing", "report", "--month", "2026-11", "--format", "csv"], db).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["customer", "ticket", "entry", "agent", "service", "date", "start", "end", "hours",
                             "multiplier", "rate", "amount", "currency", "note"]
    assert all(r["entry"].isdigit() for r in rows)  # no total rows among the data
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(report["total"])
    evening = [r for r in rows if r["multiplier"] == "1.25"]
    assert [(r["start"], r["end"], r["note"]) for r in evening] == [
        ("2026-11-20T17:00:00+01:00", "2026-11-20T17:30:00+01:00", "café; rappel")]
    totals = list(csv.DictReader(io.StringIO(
        run(["billing", "report", "--month", "2026-11", "--format", "csv-totals"], db).stdout)))
    assert {(t["level"], t["customer"], t["ticket"]): Decimal(t["amount"]) for t in totals} == _totals(report)


def test_excel_be_csv_files_open_as_a_belgian_excel_reads_them(billed, tmp_path):
    db, report = billed
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


def test_xlsx_has_typed_entries_and_totals_as_formulas_that_add_up(billed, tmp_path):
    db, report = billed
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


def test_xlsx_needs_a_file_and_the_dialect_is_for_csv(billed):
    db, _report = billed
    no_file = run(["billing", "report", "--month", "2026-11", "--format", "xlsx"], db)
    assert no_file.returncode == 2 and "--out" in no_file.stderr
    wrong = run(["billing", "report", "--month", "2026-11", "--format", "json", "--dialect", "excel-be"], db)
    assert wrong.returncode == 2 and "--dialect" in wrong.stderr
