"""Tables of aggregates, and their CSV and XLSX files (the same table the page shows)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Final

from openpyxl import Workbook  # type: ignore[import-untyped]  # no stubs in the lock

from medalliance.errors import ValidationFailed

FORMATS: Final = ("csv", "xlsx")
MEDIA_TYPES: Final = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def to_csv(tables: list[Table]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for index, table in enumerate(tables):
        if index:
            writer.writerow([])
        writer.writerow([table.title])
        writer.writerow(table.headers)
        writer.writerows(table.rows)
    # The byte-order mark makes Excel read the Chinese text as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(tables: list[Table]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for index, table in enumerate(tables):
        sheet = workbook.create_sheet(_sheet_name(table.title, index))
        sheet.append(table.headers)
        for row in table.rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_name(title: str, index: int) -> str:
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\")[:28] or "Sheet"
    return f"{cleaned}{index + 1 if index else ''}"[:31]


def render(tables: list[Table], fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(tables)
    if fmt == "xlsx":
        return to_xlsx(tables)
    raise ValidationFailed(f"format: one of {', '.join(FORMATS)}", field="format")


def rounded(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(value, decimals)
