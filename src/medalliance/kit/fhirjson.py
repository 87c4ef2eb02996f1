"""FHIR JSON in and out, with decimals exactly as written.

FHIR gives a decimal's precision meaning (R4 datatypes: 0.010 is not 0.01): a lab
result of 5.60 mmol/L must come back as 5.60. Python reads a JSON number into a float
and writes the float's shortest form, so 5.60 came back as 5.6. Here a number whose
float would not write back as it was read becomes a ``Decimal`` literal: a float (every
reader computes with it as before) that remembers its text, and that ``dumps`` writes
back verbatim. Numbers that already round-trip (5.6, 1.0, 37) stay plain floats.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson


class DecimalLiteral(float):
    """A float that writes back as the text it was read from (``5.60``, ``1e3``)."""

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> DecimalLiteral:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number

    def __repr__(self) -> str:
        return self.literal

    __str__ = __repr__


def number(literal: str) -> float:
    """A JSON number's text (with a fraction or an exponent) as a float, or as a
    ``DecimalLiteral`` when the float would not write back the same text."""
    value = float(literal)
    if not math.isfinite(value):
        # 1e400 reads as infinity, which no index, database or client can take.
        raise ValueError(f"the number {literal[:40]} is out of range")
    return value if repr(value) == literal else DecimalLiteral(literal)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python reads NaN and Infinity; JSON has none


def loads(raw: bytes | str) -> Any:
    """JSON text to Python, decimals that would lose their precision as ``DecimalLiteral``.
    Anything that is not JSON a FHIR resource could hold is a ``ValueError``."""
    try:
        return json.loads(raw, parse_float=number, parse_constant=_constant)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None


def _fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, DecimalLiteral):
        return orjson.Fragment(value.literal)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson), ``DecimalLiteral``s as read."""
    try:
        return orjson.dumps(value, default=_fragment)
    except TypeError:
        # orjson refuses integers beyond 64 bits, which a valid FHIR decimal may be.
        return orjson.dumps(_big_integers_as_text(value), default=_fragment)


def _big_integers_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _big_integers_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_integers_as_text(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    return value
