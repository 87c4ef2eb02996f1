"""Identifiers: opaque, URL-safe, sortable by creation time (FHIR ids allow [A-Za-z0-9-.])."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS = 11
_RANDOM_SPACE = 36**_RANDOM_CHARS


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def new_id() -> str:
    """A 20-character id: 9 chars of milliseconds (base36) + 11 random chars.

    The random part is one draw from the system's CSPRNG (one ``secrets.choice`` per
    character cost a bundle ingest 4 % of its time)."""
    millis = int(time.time() * 1000)
    return _base36(millis, 9) + _base36(secrets.randbelow(_RANDOM_SPACE), _RANDOM_CHARS)
