"""Every query of the master patient index.

Candidate blocking is a union of small index-backed lookups (see ``Person.__table_args__``):
they stay cheap at a million persons because each one reads a few index ranges.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from medalliance.access.repository import live_relationship_of
from medalliance.kit.hot import HotStatement
from medalliance.kit.http import MAX_INTEGER
from medalliance.kit.text import fold
from medalliance.patients.enums import ReviewStatus
from medalliance.patients.matching import shares_a_name_part
from medalliance.patients.models import LocalRecord, MatchReview, Person, PersonMerge
from medalliance.patients.names import COMPOUND_SURNAMES, normalise_name

MAX_MERGE_DEPTH = 32


def person(db: Session, person_id: str) -> Person | None:
    return db.get(Person, person_id)


_person = Person.__table__.c
# Built once and sent straight to the driver: two columns, no ORM object.
_PERSON_LINK = HotStatement(
    select(_person.id, _person.merged_into_id).where(_person.id == bindparam("person_id"))
)


# A clinical write resolves its patient and then asks whether the writer's institution
# cares for them: both in one round trip.
_PERSON_LINK_AND_RELATED = HotStatement(
    select(
        _person.id, _person.merged_into_id, live_relationship_of(_person.id).label("related")
    ).where(_person.id == bindparam("person_id"))
)


def person_link(db: Session, person_id: str) -> tuple[str, str | None] | None:
    """(id, merged_into_id) of a person, without loading it (the hot path of every
    clinical write resolves ``Patient/x`` references through this)."""
    row = _PERSON_LINK.first(db, {"person_id": person_id})
    return (row[0], row[1]) if row is not None else None


def person_link_and_relationship(
    db: Session, person_id: str, institution_id: str, now: datetime
) -> tuple[str, str | None, bool] | None:
    """``person_link``, and whether the person has a live care relationship with the
    institution."""
    params = {"person_id": person_id, "related_institution": institution_id, "related_now": now}
    row = _PERSON_LINK_AND_RELATED.first(db, params)
    return (row.id, row.merged_into_id, row.related) if row is not None else None


def person_by_id_number(db: Session, id_number: str) -> Person | None:
    return db.scalars(select(Person).where(Person.id_number == id_number)).first()


def persons_by_ids(db: Session, ids: Collection[str]) -> dict[str, Person]:
    if not ids:
        return {}
    return {p.id: p for p in db.scalars(select(Person).where(Person.id.in_(ids)))}


def absorbed_ids(db: Session, person_id: str) -> list[str]:
    """Every person merged (directly or through a chain) into ``person_id``."""
    found: list[str] = []
    frontier = [person_id]
    for _ in range(MAX_MERGE_DEPTH):
        children = list(
            db.scalars(
                select(Person.id).where(Person.merged_into_id.in_(frontier)).order_by(Person.id)
            )
        )
        if not children:
            break
        found.extend(children)
        frontier = children
    return found


def directly_absorbed(db: Session, person_id: str) -> list[str]:
    stmt = select(Person.id).where(Person.merged_into_id == person_id).order_by(Person.id)
    return list(db.scalars(stmt))


def candidate_ids(
    db: Session,
    *,
    phone: str | None,
    surname: str,
    pinyin: str,
    birth_date: date | None,
    birth_dates: Sequence[date],
    limit: int,
) -> list[str]:
    """Active persons sharing a blocking key with the record, each block capped at ``limit``."""
    blocks: list[Select[Any]] = []
    active = Person.merged_into_id.is_(None)
    if phone:
        blocks.append(select(Person.id).where(Person.phone == phone, active).limit(limit))
    if surname and birth_dates:
        # Surname prefix as a range: index-usable under any byte-ordered collation.
        blocks.append(
            select(Person.id)
            .where(
                Person.birth_date.in_(birth_dates),
                Person.pinyin >= f"{surname} ",
                Person.pinyin < f"{surname}!",
                active,
            )
            .limit(limit)
        )
    birth_year = birth_date.year if birth_date else None
    if pinyin and birth_year:
        blocks.append(
            select(Person.id)
            .where(
                Person.pinyin == pinyin,
                Person.birth_date >= date(birth_year, 1, 1),
                Person.birth_date <= date(birth_year, 12, 31),
                active,
            )
            .limit(limit)
        )
    found: dict[str, None] = {}
    for block in blocks:
        found.update(dict.fromkeys(db.scalars(block)))
    if pinyin and birth_date:
        found.update(dict.fromkeys(_same_birth_date_and_name_part(db, pinyin, birth_date)))
    return list(found)


# Persons born on one day: a few dozen at a million persons.
_SAME_DAY_LIMIT = 400


def _same_birth_date_and_name_part(db: Session, pinyin: str, born: date) -> list[str]:
    """Same birth date and a name part in common: the block that still finds a person whose
    surname was mistyped or who is written given name first. The names of the day come from
    the (birth_date, pinyin) index alone; only the persons whose name shares a part are
    then read from the table, so the block costs a few index pages, not a page per person."""
    names = db.scalars(
        select(Person.pinyin).where(Person.birth_date == born).distinct().limit(_SAME_DAY_LIMIT)
    )
    sharing = [other for other in names if shares_a_name_part(pinyin, other)]
    if not sharing:
        return []
    stmt = select(Person.id).where(
        Person.birth_date == born, Person.pinyin.in_(sharing), Person.merged_into_id.is_(None)
    )
    return list(db.scalars(stmt.limit(_SAME_DAY_LIMIT)))


def local_record(
    db: Session, institution_id: str, mrn: str, *, lock: bool = False
) -> LocalRecord | None:
    stmt = select(LocalRecord).where(
        LocalRecord.institution_id == institution_id, LocalRecord.mrn == mrn
    )
    return db.scalars(stmt.with_for_update() if lock else stmt).first()


def local_records_of(db: Session, person_ids: Collection[str]) -> Sequence[LocalRecord]:
    stmt = (
        select(LocalRecord)
        .where(LocalRecord.person_id.in_(person_ids))
        .order_by(LocalRecord.institution_id, LocalRecord.id)
    )
    return db.scalars(stmt).all()


def person_ids_by_identifier(db: Session, value: str, institution_id: str | None) -> list[str]:
    """Persons whose resident ID, insurance card or (member's) MRN equals ``value``."""
    records = select(LocalRecord.person_id).where(
        or_(LocalRecord.mrn == value, LocalRecord.insurance_number == value)
    )
    if institution_id is not None:
        records = records.where(LocalRecord.institution_id == institution_id)
    ids = set(db.scalars(records))
    if institution_id is None:
        ids.update(
            db.scalars(
                select(Person.id).where(
                    or_(Person.id_number == value, Person.insurance_number == value)
                )
            )
        )
    return sorted(ids)


StringMatch = Literal["prefix", "exact", "contains"]
NamePart = Literal["text", "family", "given"]


@dataclass(frozen=True)
class NameIs:
    """A name, or one part of it, in characters or (an ASCII value) in pinyin; ``part``
    None matches any part, as FHIR's ``name`` does."""

    value: str
    match: StringMatch = "prefix"
    part: NamePart | None = None


@dataclass(frozen=True)
class AddressIs:
    value: str
    match: StringMatch = "prefix"


@dataclass(frozen=True)
class DateIn:
    """``column`` compared with the range [low, high] a FHIR date names (``prefix`` as in
    FHIR date search, ``ap`` already widened to its margin and asked as ``eq``)."""

    column: Literal["birth_date", "updated_at"]
    prefix: str
    low: date
    high: date


@dataclass(frozen=True)
class Equals:
    column: Literal["sex", "phone"]
    value: str


PersonCondition = NameIs | AddressIs | DateIn | Equals


@dataclass
class PersonFilter:
    """``ids`` (None: any) and ``all_of``: each tuple's conditions OR-ed (one parameter's
    comma-separated values), the tuples AND-ed (parameters, repeated ones too)."""

    ids: list[str] | None = None
    all_of: list[tuple[PersonCondition, ...]] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_match(
    column: SQLColumnExpression[str], value: str, match: StringMatch
) -> ColumnElement[bool]:
    if match == "exact":
        return column == value
    pattern = f"%{_escape(value)}%" if match == "contains" else f"{_escape(value)}%"
    return column.like(pattern, escape="\\")


_COMPOUND = func.substr(Person.name, 1, 2).in_(sorted(COMPOUND_SURNAMES))
# The surname and given name of a name in characters, split as Patient.name shows them.
_FAMILY_CHARS = case(
    (_COMPOUND, func.substr(Person.name, 1, 2)), else_=func.substr(Person.name, 1, 1)
)
_GIVEN_CHARS = case((_COMPOUND, func.substr(Person.name, 3)), else_=func.substr(Person.name, 2))
# Written with literals, as its index is (ix_person_pinyin_compact): PostgreSQL uses an
# expression index only for the very same expression.
_COMPACT_PINYIN = func.replace(Person.pinyin, literal_column("' '"), literal_column("''"))


def _name_condition(c: NameIs) -> ColumnElement[bool]:
    """``name`` is the whole name (a Chinese name is the family name then the given name,
    so its start is the family name's): a prefix of it is one range of the name's, or the
    pinyin's, prefix index. ``family`` is the name's start as well, and then checked as
    the family name (a compound surname whole); ``given`` reads every name."""
    value = normalise_name(c.value)
    part: NamePart = c.part or "text"
    if c.match == "exact":
        return _exact_name(part, value)
    plain = fold(value)  # case and accents go, as R4 string search says: "Zhāng" is zhang
    if plain.isascii():
        return _pinyin_part(part, plain, c.match)
    return _characters(part, value, c.match)


def _exact_name(part: NamePart, value: str) -> ColumnElement[bool]:
    """``:exact`` is a name as the Patient shows it, case and accents as written (R4): in
    characters, or in its pinyin, which is written lower-case and toneless (so a value
    with a capital or an accent is never its pinyin)."""
    written = _characters(part, value, "exact")
    if value.isascii() and value == value.lower():
        return or_(written, _pinyin_part(part, value, "exact"))
    return written


def _characters(part: NamePart, value: str, match: StringMatch) -> ColumnElement[bool]:
    """The name in characters (``Person.name``) as written, by part."""
    if part == "given":
        return _string_match(_GIVEN_CHARS, value, match)
    if part == "family" and match == "contains":  # 阳 in 欧阳: not the name's start
        return _string_match(_FAMILY_CHARS, value, match)
    whole = _string_match(Person.name, value, "prefix" if part == "family" else match)
    if part == "family" and (len(value) > 1 or match != "prefix"):
        return and_(whole, _string_match(_FAMILY_CHARS, value, match))
    # One character starts the family name exactly when it starts the name (a compound
    # surname is the name's first two): said alone, the planner estimates it right.
    return whole


# LIKE patterns of a pinyin word ("surname given": the surname is all before the one space,
# the given name all after it), by part and match.
_PINYIN_PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    "family": {"prefix": ("{w}%",), "exact": ("{w}", "{w} %"), "contains": ("%{w}% %",)},
    "given": {"prefix": ("% {w}%",), "exact": ("% {w}",), "contains": ("% %{w}%",)},
}


def _pinyin_part(part: NamePart, value: str, match: StringMatch) -> ColumnElement[bool]:
    compact = value.replace(" ", "")
    if part == "text":
        whole = _string_match(_COMPACT_PINYIN, compact, match)
        if match == "prefix":  # the spaced form too: each has its prefix index
            return or_(_string_match(Person.pinyin, value, match), whole)
        return whole
    word = _escape(compact)
    patterns = _PINYIN_PATTERNS[part][match]
    conditions: list[ColumnElement[bool]] = [
        Person.pinyin.like(p.format(w=word), escape="\\") for p in patterns
    ]
    if part == "family" and match == "contains":  # a surname alone has no space after it
        surname_only = Person.pinyin.not_like("% %")
        conditions.append(and_(surname_only, Person.pinyin.like(f"%{word}%", escape="\\")))
    return or_(*conditions)


def _date_condition(c: DateIn) -> ColumnElement[bool]:
    column = Person.birth_date if c.column == "birth_date" else Person.updated_at
    low, high = c.low, c.high
    compare: dict[str, ColumnElement[bool]] = {
        "eq": and_(column >= low, column <= high),
        "ne": or_(column < low, column > high),
        "lt": column < low,
        "eb": column < low,
        "le": column <= high,
        "gt": column > high,
        "sa": column > high,
        "ge": column >= low,
    }
    return compare[c.prefix]


def _condition(c: PersonCondition) -> ColumnElement[bool]:
    if isinstance(c, NameIs):
        return _name_condition(c)
    if isinstance(c, AddressIs):
        written = c.value.strip()
        if c.match == "exact":  # as written, case and full-width characters included
            return Person.address == written
        # The address is stored as entered, full-width or not (城关镇（东门）１号): the value
        # matches as sent, half-width or full-width. An address mixing the two forms needs
        # a folded copy to be found, which is not kept.
        forms = dict.fromkeys((written, unicodedata.normalize("NFKC", written), _wide(written)))
        address = func.lower(Person.address)
        return or_(*(_string_match(address, form.lower(), c.match) for form in forms))
    if isinstance(c, DateIn):
        return _date_condition(c)
    column = Person.sex if c.column == "sex" else Person.phone
    return column == c.value


# ASCII's printable characters and their full-width forms (U+FF01 to U+FF5E).
_WIDE = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}


def _wide(text: str) -> str:
    """``text`` with its ASCII letters, digits and punctuation full-width, as a Chinese
    input method writes them."""
    return text.translate(_WIDE)


def _conditions(f: PersonFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Person.merged_into_id.is_(None)]
    if f.ids is not None:
        conditions.append(Person.id.in_(f.ids))
    conditions += [or_(*(_condition(c) for c in any_of)) for any_of in f.all_of]
    return conditions


def search_persons(
    db: Session, f: PersonFilter, *, offset: int, limit: int
) -> tuple[Sequence[Person], int]:
    where = and_(*_conditions(f))
    total = db.scalar(select(func.count()).select_from(Person).where(where)) or 0
    if not f.all_of:  # every person: the pinyin index gives the page in order
        stmt = select(Person).where(where).order_by(Person.pinyin, Person.id)
        return db.scalars(stmt.offset(offset).limit(limit)).all(), total
    # The matches first, then their order: walking the pinyin index for them instead
    # reads every name before "wang" to find the 王s (1.6 s at a million persons); the
    # OFFSET 0 keeps PostgreSQL from folding the subquery back in.
    matched = select(Person.id, Person.pinyin).where(where).offset(0).subquery()
    stmt = (
        select(Person)
        .join(matched, matched.c.id == Person.id)
        .order_by(matched.c.pinyin, matched.c.id)
        .offset(offset)
        .limit(limit)
    )
    return db.scalars(stmt).all(), total


def review(db: Session, review_id: int) -> MatchReview | None:
    if not 0 < review_id <= MAX_INTEGER:  # no such row, and PostgreSQL refuses the number
        return None
    return db.get(MatchReview, review_id)


def reviews(
    db: Session, status: ReviewStatus, *, offset: int, limit: int
) -> tuple[Sequence[MatchReview], int]:
    where = MatchReview.status == status.value
    total = db.scalar(select(func.count()).select_from(MatchReview).where(where)) or 0
    stmt = select(MatchReview).where(where).order_by(MatchReview.id).offset(offset).limit(limit)
    return db.scalars(stmt).all(), total


def open_reviews_of(db: Session, person_ids: Collection[str]) -> Sequence[MatchReview]:
    stmt = select(MatchReview).where(
        MatchReview.status == ReviewStatus.OPEN.value,
        or_(MatchReview.person_id.in_(person_ids), MatchReview.candidate_id.in_(person_ids)),
    )
    return db.scalars(stmt).all()


def active_merge_of(db: Session, merged_id: str) -> PersonMerge | None:
    stmt = (
        select(PersonMerge)
        .where(PersonMerge.merged_id == merged_id, PersonMerge.unmerged_at.is_(None))
        .order_by(PersonMerge.id.desc())
    )
    return db.scalars(stmt).first()


def merges_of(db: Session, person_ids: Collection[str]) -> Sequence[PersonMerge]:
    stmt = (
        select(PersonMerge)
        .where(or_(PersonMerge.survivor_id.in_(person_ids), PersonMerge.merged_id.in_(person_ids)))
        .order_by(PersonMerge.id.desc())
    )
    return db.scalars(stmt).all()
