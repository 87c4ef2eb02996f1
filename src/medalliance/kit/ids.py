"""Identifiers: opaque, URL-safe, sortable by creation time (FHIR ids allow [A-Za-z0-9-.])."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A 20-character id: 9 chars of milliseconds (base36) + 11 random chars."""
    millis = int(time.time() * 1000)
    head = ""
    while millis:
        millis, rem = divmod(millis, 36)
        head = _ALPHABET[rem] + head
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(11))
    return head.rjust(9, "0") + tail
