"""Store ORM: the current version of every resource, its history, and the search indexes.

Every row carries ``patient_id`` (the MPI golden id, the shard key) when the resource is
in a patient's compartment. Index rows are derived data: rewritten whole on every write.
There is deliberately no foreign key to ``person`` (the province shards on it and person
is not a replicated reference table); the service resolves patients before writing.

Index rows have neither a key of their own nor a foreign key to their resource: a write
inserts ~20 of them per resource, and the surrogate key and the foreign-key check
doubled the cost of each (724k token rows: 6.0 s bare, 8.7 s with the key, 12.7 s with
both). Only ``store`` writes them, in the statement that writes their resource, and
deletes them by ``pid`` when it replaces them; resources are never removed (a delete is
a new version), so a row cannot lose its resource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for millions.
RowId = BigInteger().with_variant(Integer(), "sqlite")


def _index_row(*columns: str) -> dict[str, Any]:
    """Index rows are only inserted and selected as columns, never loaded as objects: the
    mapper needs some identity, the table needs no key."""
    return {"primary_key": list(columns)}


class FhirResource(Base):
    """The current version of one resource (deleted ones stay, flagged, to answer 410)."""

    __tablename__ = "fhir_resource"
    __table_args__ = (
        UniqueConstraint("resource_type", "id"),
        Index("ix_fhir_resource_type_pid", "resource_type", "pid"),
        Index("ix_fhir_resource_patient_type_date", "patient_id", "resource_type", "sort_date"),
        Index("ix_fhir_resource_type_date", "resource_type", "sort_date"),
        Index("ix_fhir_resource_type_updated", "resource_type", "last_updated"),
    )

    pid: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column()
    patient_id: Mapped[str | None] = mapped_column(String(64))
    # The institution that created the resource, its author: set at insert and never
    # changed; only it may change or delete the resource (``writes.require_author``).
    institution_id: Mapped[str | None] = mapped_column(String(64))
    # Start of the type's clinical ``date`` parameter, denormalised so ``_sort=-date`` and
    # date ranges within a patient use one index; NO_DATE when the resource has none.
    sort_date: Mapped[datetime] = mapped_column()
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[str] = mapped_column(Text)


class FhirResourceVersion(Base):
    """Every version ever written, the current one included (vread, _history)."""

    __tablename__ = "fhir_resource_version"
    __table_args__ = (
        Index("ix_fhir_resource_version_type_updated", "resource_type", "last_updated"),
    )

    pid: Mapped[int] = mapped_column(ForeignKey("fhir_resource.pid"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    last_updated: Mapped[datetime] = mapped_column()
    patient_id: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[str] = mapped_column(Text)


class TokenIndex(Base):
    __tablename__ = "fhir_idx_token"
    __table_args__ = (
        # pid after the searched columns: one code's rows come in pid order (a page in the
        # default order stops after its rows), and with the patient a count needs no heap.
        Index(
            "ix_fhir_idx_token_lookup",
            *("resource_type", "name", "code", "system", "pid", "patient_id"),
        ),
        # Searches within one patient's record (the usual case) narrow on the patient first.
        Index("ix_fhir_idx_token_patient", "patient_id", "resource_type", "name", "code", "system"),
    )

    __mapper_args__ = _index_row("pid", "name", "system", "code")

    pid: Mapped[int] = mapped_column(RowId, index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))


class StringIndex(Base):
    __tablename__ = "fhir_idx_string"
    __table_args__ = (Index("ix_fhir_idx_string_lookup", "resource_type", "name", "value"),)

    __mapper_args__ = _index_row("pid", "name", "value")

    pid: Mapped[int] = mapped_column(RowId, index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))  # folded (kit.text): no case or accents
    # The value as written when folding changed it (``:exact``), else NULL.
    cased: Mapped[str | None] = mapped_column(String(255))


class DateIndex(Base):
    __tablename__ = "fhir_idx_date"
    __table_args__ = (
        Index("ix_fhir_idx_date_lookup", "resource_type", "name", "low", "high"),
        Index("ix_fhir_idx_date_patient", "patient_id", "resource_type", "name", "low", "high"),
    )

    __mapper_args__ = _index_row("pid", "name", "low", "high")

    pid: Mapped[int] = mapped_column(RowId, index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    low: Mapped[datetime] = mapped_column()
    high: Mapped[datetime] = mapped_column()


class ReferenceIndex(Base):
    __tablename__ = "fhir_idx_reference"
    __table_args__ = (
        # As the token lookup: pid next, so one target's rows come in pid order (a
        # practitioner's 11,000 observations: a page reads 21 index rows, not all of them).
        # Without the patient (a count reads the rows): 15 % smaller, inserts cheaper.
        Index(
            "ix_fhir_idx_reference_lookup",
            *("target_id", "resource_type", "name", "pid", "target_type"),
        ),
    )

    __mapper_args__ = _index_row("pid", "name", "target_type", "target_id")

    pid: Mapped[int] = mapped_column(RowId, index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(255))  # the id, or the URL when absolute


class QuantityIndex(Base):
    """Quantity and number parameters (numbers have no system/code)."""

    __tablename__ = "fhir_idx_quantity"
    __table_args__ = (Index("ix_fhir_idx_quantity_lookup", "resource_type", "name", "value"),)

    __mapper_args__ = _index_row("pid", "name", "value", "system", "code")

    pid: Mapped[int] = mapped_column(RowId, index=True)
    resource_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str | None] = mapped_column(String(64))
