"""Pydantic shapes of the indicators JSON API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ValueRead(BaseModel):
    id: str
    name: str
    unit: str
    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    status: str | None
    trend: list[tuple[str, float | None]]


class OverviewRead(BaseModel):
    period: str
    level: str
    key: str
    indicators: list[ValueRead]


class DefinitionWrite(BaseModel):
    """The definition body (see indicators/definitions.py) and why it changed."""

    definition: dict[str, Any]
    note: str = Field(default="", max_length=500)


class DefinitionSaved(BaseModel):
    id: str
    version: int
    definition: dict[str, Any]
