"""FHIR R4 Patient search parameters as a filter of the master patient index: a
parameter's comma-separated values are OR-ed, parameters (repeated ones too) AND-ed; one
that cannot be applied is a warning, or a 400 under ``Prefer: handling=strict``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy.orm import Session

from medalliance.errors import DomainError
from medalliance.kit.fhir import Page, page_from, split_prefix, split_values
from medalliance.patients import service
from medalliance.patients.repository import (
    AddressIs,
    DateIn,
    Equals,
    NameIs,
    NamePart,
    PersonCondition,
    PersonFilter,
    StringMatch,
)
from medalliance.records.dates import local_days, moved, parse_range

_STRING_MODIFIERS: Final[dict[str, StringMatch]] = {
    "": "prefix",
    "exact": "exact",
    "contains": "contains",
}
_NAME_PARTS: Final[dict[str, NamePart | None]] = {
    "name": None,
    "family": "family",
    "given": "given",
}
_GENDERS: Final = ("male", "female", "other", "unknown")
_PAGING: Final = ("_count", "_offset")  # read by page_from; the links write their own
# Used without changing what matches (the format; a total is always given): links keep them.
_KEPT: Final = ("_format", "_pretty", "_total")


@dataclass
class PatientSearch:
    criteria: PersonFilter
    page: Page
    used: list[tuple[str, str]] = field(default_factory=list)  # what the links repeat
    warnings: list[str] = field(default_factory=list)


def parse(
    db: Session, params: Sequence[tuple[str, str]], *, strict: bool, now: datetime
) -> PatientSearch:
    parser = _Parser(db, PatientSearch(PersonFilter(), page_from(dict(params))), strict, now)
    for key, value in params:
        parser.add(key, value)
    return parser.search


class _Parser:
    def __init__(self, db: Session, search: PatientSearch, strict: bool, now: datetime) -> None:
        self.db, self.search, self.strict, self.now = db, search, strict, now

    def problem(self, message: str, key: str) -> None:
        """``message`` says what cannot be done: under strict handling the 400's
        diagnostics, otherwise a warning that the parameter was ignored."""
        if self.strict:
            raise DomainError(message, field=key)
        self.search.warnings.append(f"{message}; ignored")

    def add(self, key: str, raw: str) -> None:
        name, _, modifier = key.partition(":")
        if name in _PAGING:
            return
        if name == "_summary":
            self.summary(key, raw)
            return
        if name in _KEPT:
            self.search.used.append((key, raw))
            return
        param = _PARAMS.get(name)
        if param is None:
            self.problem(f"unknown search parameter {key} for Patient", key)
            return
        if modifier and not (param.type == "string" and modifier in _STRING_MODIFIERS):
            self.problem(f"modifier :{modifier} is not supported on {name}", key)
            return
        values = [v for v in split_values(raw) if v]
        if not values:
            self.problem(f"parameter {key} has no value", key)
            return
        param.read(self, name, modifier, values)
        self.search.used.append((key, raw))

    def summary(self, key: str, raw: str) -> None:
        if raw == "count":  # the total alone
            self.search.page = Page(count=0, offset=self.search.page.offset)
        elif raw != "false":
            self.problem(f"_summary={raw} is not supported (only count)", key)
            return
        self.search.used.append((key, raw))

    def any_of(self, conditions: Sequence[PersonCondition]) -> None:
        self.search.criteria.all_of.append(tuple(conditions))

    def only(self, ids: set[str]) -> None:
        known = self.search.criteria.ids
        self.search.criteria.ids = sorted(ids if known is None else ids.intersection(known))

    def ids(self, name: str, modifier: str, values: list[str]) -> None:
        self.only(set(values))

    def identifier(self, name: str, modifier: str, values: list[str]) -> None:
        found: set[str] = set()
        for value in values:
            system, _, code = value.rpartition("|")
            found.update(service.identifier_person_ids(self.db, system or None, code))
        self.only(found)

    def name(self, name: str, modifier: str, values: list[str]) -> None:
        match, part = _STRING_MODIFIERS[modifier], _NAME_PARTS[name]
        self.any_of([NameIs(v, match, part) for v in values])

    def address(self, name: str, modifier: str, values: list[str]) -> None:
        self.any_of([AddressIs(v, _STRING_MODIFIERS[modifier]) for v in values])

    def gender(self, name: str, modifier: str, values: list[str]) -> None:
        for value in values:
            if value not in _GENDERS:
                message = f"gender must be male, female, other or unknown, not {value}"
                raise DomainError(message, field=name)
        self.any_of([Equals("sex", v) for v in values])

    def phone(self, name: str, modifier: str, values: list[str]) -> None:
        digits = ["".join(ch for ch in v if ch.isdigit()) for v in values]
        if not all(digits):
            raise DomainError("phone must be a phone number", field=name)
        self.any_of([Equals("phone", d) for d in digits])

    def birthdate(self, name: str, modifier: str, values: list[str]) -> None:
        self.any_of([self.date_in("birth_date", name, v) for v in values])

    def last_updated(self, name: str, modifier: str, values: list[str]) -> None:
        self.any_of([self.date_in("updated_at", name, v) for v in values])

    def date_in(self, column: Literal["birth_date", "updated_at"], key: str, raw: str) -> DateIn:
        prefix, text = split_prefix(raw)
        # A birth date has no time of day.
        parsed = None if column == "birth_date" and "T" in text else parse_range(text)
        if parsed is None:
            shapes = "YYYY, YYYY-MM or YYYY-MM-DD"
            if column == "updated_at":
                shapes += ", or an instant like 2026-01-01T08:00:00+08:00"
            message = f"{key}={raw} is not a date ({shapes}; a prefix such as ge may come first)"
            raise DomainError(message, field=key)
        low, high = parsed
        if prefix == "ap":  # within 10% of the distance from now, at least a day, either side
            margin = max(abs(self.now - low) * 0.1, timedelta(days=1))
            prefix, low, high = "eq", moved(low, -margin), moved(high, margin)
        if column == "birth_date":
            return DateIn(column, prefix, *local_days(low, high))
        return DateIn(column, prefix, low, high)


@dataclass(frozen=True)
class _Param:
    type: str
    read: Callable[[_Parser, str, str, list[str]], None]


_PARAMS: Final = {
    "_id": _Param("token", _Parser.ids),
    "identifier": _Param("token", _Parser.identifier),
    "name": _Param("string", _Parser.name),
    "family": _Param("string", _Parser.name),
    "given": _Param("string", _Parser.name),
    "birthdate": _Param("date", _Parser.birthdate),
    "gender": _Param("token", _Parser.gender),
    "phone": _Param("token", _Parser.phone),
    "address": _Param("string", _Parser.address),
    "_lastUpdated": _Param("date", _Parser.last_updated),
}
# What Patient search answers, as the CapabilityStatement advertises it.
SEARCH_PARAMS: Final = tuple((name, param.type) for name, param in _PARAMS.items())
