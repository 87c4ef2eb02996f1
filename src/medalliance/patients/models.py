"""MPI ORM: the golden person. Every clinical row elsewhere carries ``person.id``
as ``patient_id``, the shard key."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in
from medalliance.registry.enums import Sex


class Person(Base):
    __tablename__ = "person"
    __table_args__ = (check_in("sex", Sex),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    pinyin: Mapped[str] = mapped_column(String(200), index=True)
    sex: Mapped[str] = mapped_column(String(8))
    birth_date: Mapped[date] = mapped_column(Date, index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    division_code: Mapped[str] = mapped_column(String(12), default="", index=True)
    home_institution_id: Mapped[str | None] = mapped_column(ForeignKey("institution.id"))
    merged_into_id: Mapped[str | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
