"""Registry ORM: reference data, small and replicated (not sharded on the patient)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in
from medalliance.registry.enums import (
    ConsortiumKind,
    ConsortiumType,
    InstitutionKind,
    InstitutionLevel,
    ProfessionalTitle,
    Sex,
)


class Consortium(Base):
    __tablename__ = "consortium"
    __table_args__ = (check_in("type", ConsortiumType), check_in("kind", ConsortiumKind))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    lead_institution_id: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Institution(Base):
    __tablename__ = "institution"
    __table_args__ = (check_in("level", InstitutionLevel), check_in("kind", InstitutionKind))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    consortium_id: Mapped[str | None] = mapped_column(ForeignKey("consortium.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("institution.id"), index=True)
    division_code: Mapped[str] = mapped_column(String(12), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    beds: Mapped[int] = mapped_column(Integer, default=0)
    legal_person: Mapped[bool] = mapped_column(Boolean, default=True)
    emergency_centres: Mapped[list[str]] = mapped_column(JSON, default=list)
    regional_centres: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Department(Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    beds: Mapped[int] = mapped_column(Integer, default=0)
    brand: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Practitioner(Base):
    __tablename__ = "practitioner"
    __table_args__ = (check_in("sex", Sex), check_in("title", ProfessionalTitle))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    sex: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(24))
    licence_number: Mapped[str] = mapped_column(String(32), unique=True)
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PractitionerRole(Base):
    __tablename__ = "practitioner_role"
    __table_args__ = (UniqueConstraint("practitioner_id", "institution_id", "department_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("department.id"))
    primary_site: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
