"""Slot and appointment states (FHIR Slot.status / Appointment.status codes)."""

from __future__ import annotations

from enum import StrEnum


class SlotStatus(StrEnum):
    FREE = "free"
    BUSY = "busy"
    BUSY_UNAVAILABLE = "busy-unavailable"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"


ACTIVE_APPOINTMENT = frozenset(
    {AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED, AppointmentStatus.FULFILLED}
)
