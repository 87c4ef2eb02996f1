"""MPI ORM: the golden person, each member's local record of them, review tasks and merges.

Every clinical row elsewhere carries ``person.id`` as ``patient_id``, the shard key. A merge
never moves rows: the merged person points at the survivor (``merged_into_id``), so unmerge
is clearing one column and every reference to the old id keeps resolving.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in
from medalliance.patients.enums import AdministrativeSex, LinkOutcome, ReviewStatus


class Person(Base):
    __tablename__ = "person"
    __table_args__ = (
        check_in("sex", AdministrativeSex),
        # Blocking keys of the matcher (index-backed so they scale to millions of persons):
        # exact or swapped birth dates narrowed by the surname's pinyin, and the full
        # toneless pinyin (homophones share it) narrowed by birth year.
        # id and merged_into_id ride along so that PostgreSQL answers the birth-date blocks
        # from the index alone (migration 0015).
        Index(
            "ix_person_birth_date_pinyin",
            "birth_date",
            "pinyin",
            postgresql_include=["id", "merged_into_id"],
        ),
        Index("ix_person_pinyin_birth_date", "pinyin", "birth_date"),
        # Name searches by their start (LIKE 'x%'): PostgreSQL ranges an index for it only
        # with pattern ops, the database's collation not being plain C (migration 0024).
        Index("ix_person_name_prefix", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
        Index(
            "ix_person_pinyin_prefix", "pinyin", postgresql_ops={"pinyin": "varchar_pattern_ops"}
        ),
        Index(
            "ix_person_pinyin_compact",
            text("replace(pinyin, ' ', '') varchar_pattern_ops"),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    pinyin: Mapped[str] = mapped_column(String(200), index=True)
    sex: Mapped[str] = mapped_column(String(8))
    # None: not known yet (an unconscious patient registered in the emergency room).
    birth_date: Mapped[date | None] = mapped_column(Date, index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    division_code: Mapped[str] = mapped_column(String(12), default="", index=True)
    home_institution_id: Mapped[str | None] = mapped_column(ForeignKey("institution.id"))
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("person.id"), index=True)
    insurance_number: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class LocalRecord(Base):
    """A member's own record of a person (its medical record number and what it captured)."""

    __tablename__ = "local_record"
    __table_args__ = (
        UniqueConstraint("institution_id", "mrn"),
        check_in("sex", AdministrativeSex),
        check_in("outcome", LinkOutcome),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"))
    mrn: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    id_number: Mapped[str | None] = mapped_column(String(18))
    insurance_number: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(300), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the member captured the demographics above, if it said (an HL7 A08's EVN-2):
    # an update captured earlier that arrives late must not overwrite them.
    recorded_at: Mapped[datetime | None] = mapped_column()


class MatchReview(Base):
    """A possible duplicate for a person to decide: link (merge) or keep separate."""

    __tablename__ = "match_review"
    __table_args__ = (
        check_in("status", ReviewStatus),
        Index("ix_match_review_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    candidate_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    local_record_id: Mapped[int | None] = mapped_column(ForeignKey("local_record.id"))
    score: Mapped[float] = mapped_column(Float)
    comparison: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ReviewStatus.OPEN.value)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500), default="")
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("person_merge.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PersonMerge(Base):
    """One merge of ``merged_id`` into ``survivor_id``, and its undoing."""

    __tablename__ = "person_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    merged_id: Mapped[str] = mapped_column(ForeignKey("person.id"), index=True)
    merged_by: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(500))
    unmerged_by: Mapped[str | None] = mapped_column(String(64))
    unmerged_at: Mapped[datetime | None] = mapped_column()
    unmerge_reason: Mapped[str] = mapped_column(String(500), default="")


class PersonMergeMove(Base):
    """A row of another domain (a stored resource, a care relationship...) that a merge
    moved from the merged person to the survivor: unmerge moves exactly these back."""

    __tablename__ = "person_merge_move"
    __table_args__ = (Index("ix_person_merge_move_target_row", "target", "row_id"),)

    merge_id: Mapped[int] = mapped_column(ForeignKey("person_merge.id"), primary_key=True)
    target: Mapped[str] = mapped_column(String(32), primary_key=True)  # the table moved in
    row_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
