"""The month's billing as files a bookkeeper opens: CSV (plain, or `excel-be` for a Belgian
Excel: semicolons, decimal commas, UTF-8 with a BOM) and `.xlsx` (openpyxl).

The data rows never hold a total, so a spreadsheet's SUM over a column counts each amount once;
the totals are apart (a totals CSV, or the workbook's "Totals" sheet, where they are formulas
over the data rows and so follow any correction made to them).
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping, TextIO

from bot.domain.time_entries import BILLING_COLUMNS, BILLING_NUMBERS, TOTAL_COLUMNS, billing_rows, billing_totals

DIALECTS = ("plain", "excel-be")


def _cell(column: str, value: str, dialect: str) -> str:
    if dialect == "excel-be" and column in BILLING_NUMBERS:
        return value.replace(".", ",")
    return value


def write_csv(stream: TextIO, rows: Iterable[Mapping[str, str]], columns: tuple[str, ...], dialect: str) -> None:
    """A header and the rows. `excel-be`: what Excel in Belgium opens by double-click (its list
    separator is ';' and its decimal separator ','); the BOM makes it read UTF-8 (é, ë)."""
    if dialect == "excel-be":
        stream.write("\ufeff")
        writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
    else:
        writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(c, row[c], dialect) for c in columns])


def write_report_csv(stream: TextIO, report: Mapping[str, Any], dialect: str) -> None:
    write_csv(stream, billing_rows(report), BILLING_COLUMNS, dialect)


def write_totals_csv(stream: TextIO, report: Mapping[str, Any], dialect: str) -> None:
    write_csv(stream, billing_totals(report), TOTAL_COLUMNS, dialect)


def totals_path(data_path: Path) -> Path:
    """Where the totals of a CSV written to `data_path` go: beside it (`nov.csv` → `nov.totals.csv`)."""
    return data_path.with_name(f"{data_path.stem}.totals{data_path.suffix or '.csv'}")


def write_xlsx(path: Path, report: Mapping[str, Any]) -> None:
    """Sheet "Entries": one row per quote line, numbers as numbers, the date as a date; times as
    ISO text with their offset (a spreadsheet's date-time has no zone). Sheet "Totals": per
    ticket, per customer and in all, each a SUM formula over its rows of "Entries" (the report
    groups them: a customer's rows, and a ticket's, are contiguous)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rows = billing_rows(report)
    book = Workbook()
    entries = book.active
    assert entries is not None
    entries.title = "Entries"
    entries.append(list(BILLING_COLUMNS))
    for row in rows:
        values: list[Any] = []
        for column in BILLING_COLUMNS:
            value = row[column]
            if column in BILLING_NUMBERS:
                values.append(Decimal(value))
            elif column == "entry":
                values.append(int(value))
            elif column == "date":
                values.append(date.fromisoformat(value))
            else:
                values.append(value)
        entries.append(values)
    letter = {c: _letter(i) for i, c in enumerate(BILLING_COLUMNS)}
    for cells in entries.iter_rows(min_row=2):
        for column, cell in zip(BILLING_COLUMNS, cells):
            if column in ("amount", "rate"):
                cell.number_format = "#,##0.00"
            elif column == "date":
                cell.number_format = "yyyy-mm-dd"
    for cell in entries[1]:
        cell.font = Font(bold=True)

    totals = book.create_sheet("Totals")
    totals.append(list(TOTAL_COLUMNS))
    for cell in totals[1]:
        cell.font = Font(bold=True)
    currency = report["currency"]

    def sums(first: int, last: int) -> tuple[str, str]:
        if last < first:
            return "0", "0"
        return (f"=SUM(Entries!{letter['hours']}{first}:{letter['hours']}{last})",
                f"=SUM(Entries!{letter['amount']}{first}:{letter['amount']}{last})")

    row_no = 2  # the first data row of "Entries"
    for customer in report["customers"]:
        customer_first = row_no
        for ticket in customer["tickets"]:
            count = sum(len(e["lines"]) for e in ticket["entries"])
            hours, amount = sums(row_no, row_no + count - 1)
            totals.append(["ticket", customer["customer"], ticket["ticket"], hours, amount, currency])
            row_no += count
        hours, amount = sums(customer_first, row_no - 1)
        totals.append(["customer", customer["customer"], "", hours, amount, currency])
    hours, amount = sums(2, row_no - 1)
    totals.append(["total", "", "", hours, amount, currency])
    for cells in totals.iter_rows(min_row=2, min_col=5, max_col=5):
        for cell in cells:
            cell.number_format = "#,##0.00"
    for sheet in (entries, totals):
        sheet.freeze_panes = "A2"
    book.save(path)


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index + 1))
