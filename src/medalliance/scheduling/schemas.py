"""Scheduling API shapes."""

from __future__ import annotations

from datetime import date, datetime, time

from pydantic import BaseModel, ConfigDict, Field


class DayOpen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_id: str
    day: date
    count: int = Field(ge=1, le=200)
    first_start: time = time(8, 0)
    minutes: int = Field(default=15, ge=5, le=240)
    expert: bool = False
    practitioner_id: str | None = None


class SlotRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    institution_id: str
    department_id: str
    practitioner_id: str | None
    start_at: datetime
    end_at: datetime
    expert: bool
    reserved: bool
    consortium_open_at: datetime
    public_open_at: datetime
    status: str
