"""Importing the insurance bureau's settlement file (CSV or XLSX): the out-of-county
visits the county visit rate needs. A file with wrong columns is refused whole; a file
with bad rows is staged with a report of every rejected row, and nothing is imported
until the user accepts the valid rows (a second, audited step)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from openpyxl import load_workbook  # type: ignore[import-untyped]  # no stubs in the lock
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Conflict, DomainError, NotFound, ValidationFailed
from medalliance.indicators import facts, repository
from medalliance.indicators.enums import EncounterClass, ImportStatus
from medalliance.indicators.models import SettlementFact, SettlementImport
from medalliance.indicators.periods import month_of
from medalliance.kit.ids import new_id
from medalliance.patients import service as patients
from medalliance.registry import service as registry
from medalliance.registry.repository import InstitutionFilter

COLUMNS: Final = (
    "settlement_id",
    "person_id",
    "visit_date",
    "encounter_class",
    "institution",
    "amount",
)
MAX_ROWS: Final = 200_000


@dataclass(frozen=True)
class Rejected:
    row: int  # 1-based line in the file, the header being line 1
    reason: str
    values: dict[str, str]


def read_rows(filename: str, content: bytes) -> list[dict[str, Any]]:
    """Rows as dicts keyed by the header; refuses (422) a file whose columns are wrong."""
    if filename.lower().endswith(".xlsx"):
        raw = _xlsx_rows(content)
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "file: not UTF-8 text (CSV) nor an .xlsx workbook", field="file"
            ) from exc
        raw = [list(r) for r in csv.reader(io.StringIO(text))]
    if not raw:
        raise ValidationFailed("file: the file is empty", field="file")
    header = [str(h or "").strip().lower() for h in raw[0]]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h and h not in COLUMNS]
    if missing or unknown:
        parts = ([f"missing columns {', '.join(missing)}"] if missing else []) + (
            [f"unknown columns {', '.join(unknown)}"] if unknown else []
        )
        raise ValidationFailed(
            f"file: {'; '.join(parts)} (expected {', '.join(COLUMNS)})", field="file"
        )
    rows = [
        dict(zip(header, r, strict=False)) for r in raw[1:] if any(str(v or "").strip() for v in r)
    ]
    if not rows:
        raise ValidationFailed("file: no rows under the header", field="file")
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(f"file: more than {MAX_ROWS} rows; split the file", field="file")
    return rows


def _xlsx_rows(content: bytes) -> list[list[Any]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise ValidationFailed("file: not a readable .xlsx workbook", field="file") from exc
    sheet = workbook.worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


class _Checker:
    """Validates rows one by one, remembering what it has already looked up."""

    def __init__(self, db: Session, existing: set[str]) -> None:
        self.db = db
        self.seen: set[str] = set(existing)
        institutions, _ = registry.find_institutions(db, InstitutionFilter(), limit=10000, offset=0)
        self.institutions = {i.id: i for i in institutions} | {i.code: i for i in institutions}
        self.county = get_settings().indicators_county_code
        self.persons: dict[str, Any] = {}

    def check(self, raw: dict[str, Any], import_id: str) -> dict[str, Any]:
        sid = _text(raw.get("settlement_id"))
        if not sid or len(sid) > 64:
            raise ValidationFailed("settlement_id: missing or longer than 64 characters")
        if sid in self.seen:
            raise ValidationFailed(f"settlement_id: duplicate {sid}")
        person = self._person(_text(raw.get("person_id")))
        day = _date(raw.get("visit_date"))
        encounter_class = _text(raw.get("encounter_class")).lower()
        if encounter_class not in EncounterClass.__members__.values():
            raise ValidationFailed(
                f"encounter_class: {encounter_class!r} is not one of {', '.join(EncounterClass)}"
            )
        institution = self.institutions.get(_text(raw.get("institution")))
        if institution is None:
            raise ValidationFailed(
                f"institution: unknown institution {_text(raw.get('institution'))!r}"
            )
        amount = _amount(raw.get("amount"))
        self.seen.add(sid)
        return {
            "settlement_id": sid,
            "patient_id": person.id,
            "township_code": person.division_code,
            "institution_id": institution.id,
            "encounter_class": encounter_class,
            "day": day.isoformat(),
            "month": month_of(day),
            "in_county": institution.division_code.startswith(self.county),
            "resident": person.division_code.startswith(self.county),
            "amount": str(amount),
            "import_id": import_id,
        }

    def _person(self, person_id: str) -> Any:
        if person_id not in self.persons:
            try:
                self.persons[person_id] = patients.get_person(self.db, person_id)
            except DomainError as exc:
                raise ValidationFailed(f"person_id: unknown person {person_id!r}") from exc
        return self.persons[person_id]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(_text(value))
    except ValueError as exc:
        raise ValidationFailed(f"visit_date: {_text(value)!r} is not a date (YYYY-MM-DD)") from exc


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(_text(value))
    except InvalidOperation as exc:
        raise ValidationFailed(f"amount: {_text(value)!r} is not a number") from exc
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise ValidationFailed(f"amount: {_text(value)!r} is out of range")
    return amount.quantize(Decimal("0.01"))


def upload(
    db: Session, actor: Actor, filename: str, content: bytes, *, now: datetime
) -> SettlementImport:
    """Validate the whole file; import it at once only when every row is valid."""
    rows = read_rows(filename, content)
    import_id = new_id()
    ids = [_text(r.get("settlement_id")) for r in rows]
    checker = _Checker(db, repository.existing_keys(db, SettlementFact, "settlement_id", ids))
    valid: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for line, raw in enumerate(rows, start=2):
        try:
            valid.append(checker.check(raw, import_id))
        except ValidationFailed as exc:
            rejected.append(
                {
                    "row": line,
                    "reason": exc.message,
                    "values": {k: _text(v) for k, v in raw.items()},
                }
            )
    record = SettlementImport(
        id=import_id,
        filename=filename[:200],
        status=ImportStatus.STAGED.value,
        total_rows=len(rows),
        valid_rows=valid,
        rejected=rejected,
        created_at=now,
        created_by=actor.username,
    )
    db.add(record)
    db.flush()
    audit.record(
        db,
        actor,
        "indicator.settlement.upload",
        resource_type="SettlementImport",
        resource_id=import_id,
        detail={
            "filename": filename[:200],
            "rows": len(rows),
            "valid": len(valid),
            "rejected": len(rejected),
        },
    )
    if not rejected:
        _import(db, actor, record, now)
    return record


def get(db: Session, import_id: str) -> SettlementImport:
    found = repository.settlement_import(db, import_id)
    if found is None:
        raise NotFound(f"settlement import {import_id} not found", field="import_id")
    return found


def accept(db: Session, actor: Actor, import_id: str, *, now: datetime) -> SettlementImport:
    """The second step: the user accepts the valid rows of a file with rejected ones."""
    record = get(db, import_id)
    if record.status != ImportStatus.STAGED.value:
        raise Conflict(f"settlement import {import_id} is already {record.status}")
    ids = [r["settlement_id"] for r in record.valid_rows]
    taken = repository.existing_keys(db, SettlementFact, "settlement_id", ids)
    if taken:
        raise Conflict(f"settlement ids imported meanwhile: {', '.join(sorted(taken)[:10])}")
    _import(db, actor, record, now)
    return record


def discard(db: Session, actor: Actor, import_id: str, *, now: datetime) -> SettlementImport:
    record = get(db, import_id)
    if record.status != ImportStatus.STAGED.value:
        raise Conflict(f"settlement import {import_id} is already {record.status}")
    record.status, record.decided_at, record.valid_rows = ImportStatus.DISCARDED.value, now, []
    db.flush()
    audit.record(
        db,
        actor,
        "indicator.settlement.discard",
        resource_type="SettlementImport",
        resource_id=import_id,
    )
    return record


def _import(db: Session, actor: Actor, record: SettlementImport, now: datetime) -> None:
    rows = [
        {**r, "day": date.fromisoformat(r["day"]), "amount": Decimal(r["amount"])}
        for r in record.valid_rows
    ]
    facts.add_settlements(db, rows)
    record.status, record.decided_at = ImportStatus.IMPORTED.value, now
    # The rows now live as facts; the staged copy (patient ids) is no longer needed.
    record.valid_rows = []
    db.flush()
    audit.record(
        db,
        actor,
        "indicator.settlement.import",
        resource_type="SettlementImport",
        resource_id=record.id,
        detail={"imported": len(rows), "rejected": len(record.rejected)},
    )


def recent(db: Session) -> list[SettlementImport]:
    return list(repository.recent_imports(db))
