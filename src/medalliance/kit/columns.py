"""Column helpers: status strings with CHECK constraints, per STYLE.md."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint


def check_in(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or f"{column}_valid")
