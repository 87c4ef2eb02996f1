"""Care-level ORM: each saved catalogue is a new version; the newest one is in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from medalliance.db import Base
from medalliance.kit.clock import utcnow


class CareLevelCatalogue(Base):
    """A whole catalogue per version: small (a few hundred codes), read far more than
    written, and an old version stays readable to explain an old recommendation."""

    __tablename__ = "care_level_catalogue"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
