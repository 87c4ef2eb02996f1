"""Auth ORM: users, their role at each institution, and member-system API clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.auth.enums import Role
from medalliance.db import Base
from medalliance.kit.clock import utcnow
from medalliance.kit.columns import check_in


class User(Base):
    __tablename__ = "user_account"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioner.id"))
    person_id: Mapped[str | None] = mapped_column(String(64))  # a resident's own MPI person
    preferred_locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A user's role at one institution; a user may hold several (multi-site practice)."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("user_id", "institution_id", "role"), check_in("role", Role))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), index=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiClient(Base):
    """A member institution's system, authenticating with client credentials."""

    __tablename__ = "api_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    institution_id: Mapped[str] = mapped_column(ForeignKey("institution.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
