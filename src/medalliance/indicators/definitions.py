"""Indicator definitions as data: the shipped file, its schema, and the checks an edit
must pass (formulas parse, measures exist, kinds fit) before a new version is stored."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from medalliance.errors import ValidationFailed
from medalliance.indicators import expressions
from medalliance.indicators.enums import Better, IndicatorKind, Level, MeasureKind, PeriodKind
from medalliance.indicators.measures import MEASURES

SHIPPED = Path(__file__).parent / "data" / "definitions.json"
DIMENSIONS = ("hierarchical_care", "referral", "efficiency", "utilisation")


class Definition(BaseModel):
    """One indicator. Formulas are expressions over measure names (see ``measures.py``)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=150)
    explanation_zh: str = Field(default="", max_length=1000)
    explanation_en: str = Field(default="", max_length=1000)
    dimension: str
    kind: IndicatorKind
    numerator: str = Field(min_length=1, max_length=expressions.MAX_LENGTH)
    denominator: str | None = Field(default=None, max_length=expressions.MAX_LENGTH)
    percentile: float | None = Field(default=None, gt=0, lt=100)
    factor: float = 1.0
    unit: str = Field(default="", max_length=20)
    decimals: int = Field(default=1, ge=0, le=4)
    target: float | None = None
    better: Better = Better.HIGHER
    levels: list[Level] = Field(min_length=1)
    periods: list[PeriodKind] = Field(min_length=1)

    @field_validator("dimension")
    @classmethod
    def _known_dimension(cls, value: str) -> str:
        if value not in DIMENSIONS:
            raise ValueError(f"unknown dimension {value!r}; one of {', '.join(DIMENSIONS)}")
        return value

    @field_validator("denominator")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh_CN" else self.name_en

    def explanation(self, locale: str) -> str:
        return self.explanation_zh if locale == "zh_CN" else self.explanation_en

    def measure_names(self) -> set[str]:
        found = expressions.names(expressions.parse(self.numerator, "numerator"))
        if self.denominator:
            found |= expressions.names(expressions.parse(self.denominator, "denominator"))
        return found


def check(definition: Definition) -> Definition:
    """Refuse unknown measures (naming them) and formulas that do not fit the kind."""
    numerator = expressions.parse(definition.numerator, "numerator")
    denominator = (
        expressions.parse(definition.denominator, "denominator") if definition.denominator else None
    )
    for field, tree in (("numerator", numerator), ("denominator", denominator)):
        if tree is None:
            continue
        unknown = sorted(expressions.names(tree) - MEASURES.keys())
        if unknown:
            raise ValidationFailed(f"{field}: unknown measures {', '.join(unknown)}", field=field)
    _check_kind(definition, numerator, denominator)
    return definition


def _check_kind(
    definition: Definition, numerator: expressions.Expr, denominator: expressions.Expr | None
) -> None:
    used = expressions.names(numerator) | (expressions.names(denominator) if denominator else set())
    percentiles = {n for n in used if MEASURES[n].kind == MeasureKind.PERCENTILE}
    if definition.kind == IndicatorKind.PERCENTILE:
        if not isinstance(numerator, expressions.Ref) or not percentiles or denominator:
            raise ValidationFailed(
                "numerator: a percentile indicator names one percentile measure and no denominator",
                field="numerator",
            )
        if definition.percentile is None:
            raise ValidationFailed(
                "percentile: give the percentile (e.g. 50 or 90)", field="percentile"
            )
        return
    if percentiles:
        raise ValidationFailed(
            "numerator: percentile measures cannot be used in arithmetic: "
            + ", ".join(sorted(percentiles)),
            field="numerator",
        )
    if definition.kind == IndicatorKind.RATIO and denominator is None:
        raise ValidationFailed("denominator: a ratio needs a denominator", field="denominator")
    if definition.kind in (IndicatorKind.VALUE, IndicatorKind.GROWTH) and denominator is not None:
        raise ValidationFailed(
            f"denominator: a {definition.kind.value} indicator has no denominator",
            field="denominator",
        )


def parse_body(body: dict[str, Any]) -> Definition:
    """A payload to a checked definition; pydantic errors become one 422 naming the field."""
    try:
        definition = Definition.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from exc
    return check(definition)


@cache
def shipped() -> tuple[Definition, ...]:
    raw = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return tuple(check(Definition.model_validate(item)) for item in raw["indicators"])
