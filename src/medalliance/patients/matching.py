"""The probabilistic matcher: Fellegi–Sunter log-likelihood weights over field comparisons.

Pure functions, no database. Each field is compared into a *level* (exact, homophone,
day/month swapped ...); each level carries the weight log2(m/u), where m is how often the
level occurs for two records of the same person and u how often for two different people.
A missing value weighs 0 (it says nothing). The sum of weights plus the prior log-odds is
the log-odds that the pair is one person; ``probability`` turns it into 0..1.

The m-probabilities are estimated by EM from unlabelled records (patients.training), the
u-probabilities from how values are spread among different people; the labelled benchmark
(bench/mpi_accuracy.py) only checks them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from math import log2
from typing import Final

from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.fuzz import ratio

from medalliance.patients.names import (
    compact,
    is_provisional,
    normalise_name,
    surname_key,
    to_pinyin,
)


def _w(m: float, u: float) -> float:
    return round(log2(m / u), 2)


# m: how often each level occurs for two records of ONE person. Estimated by EM
# (patients.training.estimate_m) on the unlabelled blocked pairs of 100,000 synthetic local
# records with the clerks' errors of DOMAIN.md (``bench/mpi_accuracy.py --estimate-m``,
# seed 2: not the seed the benchmark scores), rounded; a level EM saw (almost) never gets
# M_FLOOR, so that one error nobody foresaw cannot veto a link on its own.
M_FLOOR: Final = 0.005
M: Final[dict[str, dict[str, float]]] = {
    "id_number": {"exact": 0.995, "different": M_FLOOR},
    "name": {
        "exact": 0.73,
        "homophone": 0.23,
        "reordered": M_FLOOR,
        "similar": 0.018,
        "different": 0.02,
    },
    "birth_date": {
        "exact": 0.876,
        "swapped": 0.035,
        "transposed": 0.062,
        "same_year": 0.027,
        "two_digits": M_FLOOR,
        "different": M_FLOOR,
    },
    "sex": {"exact": 0.995, "different": M_FLOOR},
    "phone": {"exact": 0.666, "one_digit": 0.041, "different": 0.293},
    "address": {"exact": 0.496, "similar": 0.298, "different": 0.207},
}
# u: how often each level occurs for two DIFFERENT people drawn at random, from how names,
# birth dates (about 30,000 days in use), phones and addresses are spread.
U: Final[dict[str, dict[str, float]]] = {
    "id_number": {"exact": 1e-7, "different": 0.999},
    "name": {
        "exact": 0.0015,
        # same pinyin, other characters: about a third of names have a homophone spelling
        # in use, so never more telling than the same characters
        "homophone": 0.0005,
        "reordered": 0.0001,  # same syllables, given name written first
        "similar": 0.004,  # pinyin Jaro-Winkler >= 0.9 (one character off)
        "different": 0.99,
    },
    "birth_date": {
        "exact": 1 / 30000,
        "swapped": 1 / 200000,  # day and month exchanged
        "transposed": 1 / 8000,  # two adjacent digits exchanged or one digit off
        "same_year": 1 / 90,
        "two_digits": 0.008,  # two of the eight digits differ (not the same year)
        "different": 0.98,
    },
    "sex": {"exact": 0.5, "different": 0.5},
    "phone": {"exact": 1e-6, "one_digit": 1e-5, "different": 0.99999},
    "address": {
        "exact": 0.0005,
        "similar": 0.01,  # same village, house number or group differs
        "different": 0.99,
    },
}
# Level -> weight log2(m/u), per field. Levels are listed from the strongest down.
WEIGHTS: Final[dict[str, dict[str, float]]] = {
    f: {level: _w(M[f][level], U[f][level]) for level in U[f]} for f in U
}
# Prior log-odds that two records sharing a blocking key are one person (about 1 in 1,000).
PRIOR: Final = -10.0
SIMILAR_NAME: Final = 0.9
SIMILAR_ADDRESS: Final = 80.0


@dataclass(frozen=True)
class Demographics:
    """What a record says about a person; any value may be missing."""

    name: str
    sex: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    address: str = ""
    id_number: str | None = None
    pinyin: str = field(default="")

    def __post_init__(self) -> None:
        if not self.pinyin:
            object.__setattr__(self, "pinyin", to_pinyin(self.name))
        object.__setattr__(self, "name", normalise_name(self.name))


@dataclass(frozen=True)
class FieldComparison:
    field: str
    level: str
    weight: float


@dataclass(frozen=True)
class MatchResult:
    weight: float
    probability: float
    fields: tuple[FieldComparison, ...]
    # Why a person must look at this pair even at a high score (None: nothing).
    hold: str | None = None

    def links_automatically(self, threshold: float) -> bool:
        return self.hold is None and self.probability >= threshold

    def as_dict(self) -> dict[str, str]:
        """Field -> level, as stored with a review task and shown on the compare page, and
        under ``hold`` why the pair waits for a person."""
        levels = {f.field: f.level for f in self.fields}
        return levels | {"hold": self.hold} if self.hold else levels


def compare(a: Demographics, b: Demographics) -> MatchResult:
    """Score two records; the weight is the sum of field weights plus the prior."""
    levels = (
        ("id_number", id_level(a.id_number, b.id_number)),
        ("name", name_level(a, b)),
        ("birth_date", date_level(a.birth_date, b.birth_date)),
        ("sex", _equal_level(_known_sex(a.sex), _known_sex(b.sex))),
        ("phone", phone_level(a.phone, b.phone)),
        ("address", address_level(a.address, b.address)),
    )
    fields = tuple(
        FieldComparison(name, level, WEIGHTS[name][level])
        for name, level in levels
        if level is not None
    )
    weight = PRIOR + sum(f.weight for f in fields)
    return MatchResult(
        round(weight, 2), probability(weight), fields, hold_reason(a, b, dict(levels))
    )


# Reasons a pair is never linked without a person's decision, however high its score.
DIFFERENT_ID_NUMBERS: Final = "different_id_numbers"
POSSIBLE_TWINS: Final = "possible_twins"  # same surname and birth date, another given name
PROVISIONAL_NAME: Final = "provisional_name"  # 无名氏, 王芳之子: not the person's own name
NO_BIRTH_DATE: Final = "no_birth_date"  # not known yet: name, phone, address alone decide
# One twin's record may carry a clerk's slip in the birth date.
TWIN_BIRTH_DATES: Final = frozenset({"exact", "swapped", "transposed"})


def hold_reason(a: Demographics, b: Demographics, levels: dict[str, str | None]) -> str | None:
    """Shared phone and address weigh so much that twins (and a mother registering both
    children) would otherwise link automatically; two different ID numbers are two people
    unless a clerk mistyped one, which only a person can tell. Two unidentified patients
    of one sex and estimated age, or newborn twins with the mother's phone and address,
    would link on everything but a name neither has yet; without a birth date, a shared
    name and phone (a father and son, a family's one mobile) would decide alone."""
    if levels["id_number"] == "different":
        return DIFFERENT_ID_NUMBERS
    if levels["id_number"] != "exact" and (is_provisional(a.name) or is_provisional(b.name)):
        return PROVISIONAL_NAME
    if levels["id_number"] != "exact" and (a.birth_date is None or b.birth_date is None):
        return NO_BIRTH_DATE
    if (
        _twin_names(a, b, levels["name"])
        and levels["birth_date"] in TWIN_BIRTH_DATES
        and surname_key(a.pinyin) == surname_key(b.pinyin)
    ):
        return POSSIBLE_TWINS
    return None


def _twin_names(a: Demographics, b: Demographics, level: str | None) -> bool:
    """Two given names, neither the other's homophone. "Similar" counts only for names in
    characters: a clerk's slip there is a homophone (the pinyin input method), while a
    twin's name often shares a character with the sibling's (子涵, 子轩); in letters a
    similar name is a typo."""
    if " " not in a.pinyin.strip() or " " not in b.pinyin.strip():
        return False  # a missing given name says nothing
    if level == "different":
        return True
    return level == "similar" and _in_characters(a.name) and _in_characters(b.name)


def _in_characters(name: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in name)


def probability(weight: float) -> float:
    return float(1.0 / (1.0 + 2.0 ** (-weight)))


def id_level(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return None
    return "exact" if a == b else "different"


def name_level(a: Demographics, b: Demographics) -> str | None:
    if not a.name or not b.name or is_provisional(a.name) or is_provisional(b.name):
        return None  # a placeholder says nothing about who the person is
    if a.name == b.name:
        return "exact"
    pa, pb = compact(a.pinyin), compact(b.pinyin)
    if pa and pa == pb:
        return "homophone"
    if _reordered(a.pinyin, b.pinyin):
        return "reordered"
    if pa and pb and JaroWinkler.normalized_similarity(pa, pb) >= SIMILAR_NAME:
        return "similar"
    return "different"


def _reordered(a: str, b: str) -> bool:
    """The same syllable groups in another order: 'xiaoming wang' for 'wang xiaoming'."""
    ta, tb = a.split(), b.split()
    return len(ta) > 1 and ta != tb and sorted(ta) == sorted(tb)


def date_level(a: date | None, b: date | None) -> str | None:
    if a is None or b is None:
        return None
    if a == b:
        return "exact"
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return "swapped"
    da, db = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    if _one_edit(da, db):
        return "transposed"
    if a.year == b.year:
        return "same_year"
    if sum(x != y for x, y in zip(da, db, strict=True)) <= 2:
        return "two_digits"
    return "different"


def phone_level(a: str | None, b: str | None) -> str | None:
    a, b = _digits(a), _digits(b)
    if not a or not b:
        return None
    if a == b:
        return "exact"
    if Levenshtein.distance(a, b) <= 1 or _one_edit(a, b):
        return "one_digit"
    return "different"


def address_level(a: str, b: str) -> str | None:
    a, b = "".join(a.split()), "".join(b.split())
    if not a or not b:
        return None
    if a == b:
        return "exact"
    return "similar" if ratio(a, b) >= SIMILAR_ADDRESS else "different"


def _known_sex(sex: str | None) -> str | None:
    """Unknown or other says nothing either way: compared as missing."""
    return sex if sex in ("male", "female") else None


def _equal_level(a: str | None, b: str | None) -> str | None:
    if not a or not b:
        return None
    return "exact" if a == b else "different"


def _one_edit(a: str, b: str) -> bool:
    """Same length and either one character differs or two adjacent ones are exchanged."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(diff) == 1:
        return True
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and a[diff[1]] == b[diff[0]]
    )


def _digits(value: str | None) -> str:
    return "".join(ch for ch in (value or "") if ch.isdigit())


# --- blocking -------------------------------------------------------------------------


def birth_date_variants(born: date, *, earliest: date, latest: date) -> list[date]:
    """The dates a clerk may have typed for ``born``: itself, day/month swapped, any two
    adjacent digits exchanged, any one digit wrong; valid dates within the range only."""
    text = born.strftime("%Y%m%d")
    found = {born}
    for candidate in _date_strings(text):
        parsed = _parse_date(candidate)
        if parsed is not None and earliest <= parsed <= latest:
            found.add(parsed)
    if born.day <= 12:
        swapped = _safe_date(born.year, born.day, born.month)
        if swapped is not None:
            found.add(swapped)
    return sorted(found)


def _date_strings(text: str) -> Iterator[str]:
    for i in range(len(text) - 1):
        yield text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    for i in range(len(text)):
        for digit in "0123456789":
            if digit != text[i]:
                yield text[:i] + digit + text[i + 1 :]


def _parse_date(text: str) -> date | None:
    return _safe_date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def shares_a_name_part(a: str, b: str) -> bool:
    """Two pinyin names with a syllable group in common (surname or given name, in any
    order): the filter of the same-birth-date block, which finds a mistyped surname."""
    return bool(set(a.split()) & set(b.split()))


def blocking_keys(d: Demographics) -> dict[str, str]:
    """The keys the in-memory benchmark uses; the SQL repository uses the same ones."""
    keys: dict[str, str] = {}
    if d.id_number:
        keys["id"] = d.id_number
    if _digits(d.phone):
        keys["phone"] = _digits(d.phone)
    if d.pinyin and d.birth_date:
        keys["name_year"] = f"{compact(d.pinyin)}|{d.birth_date.year}"
        keys["surname"] = surname_key(d.pinyin)
    return keys
