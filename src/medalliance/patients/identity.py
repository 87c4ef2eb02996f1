"""Resident ID numbers (居民身份证号, GB 11643): parse, validate, generate.

Pure functions, no database. An 18-character number is a 6-digit division code, an
8-digit birth date, a 3-digit sequence (odd = male, even = female) and a check character.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from operator import mul
from typing import Final, Literal

from medalliance.kit.clock import utcnow

Sex = Literal["male", "female"]
Reason = Literal[
    "length",
    "characters",
    "check-digit",
    "birth-date",
    "future-birth-date",
    "sex-mismatch",
    "birth-date-mismatch",
]

_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS: Final = "10X98765432"
_DIGITS_17: Final = re.compile(r"[0-9]{17}")
_DIGITS_6: Final = re.compile(r"[0-9]{6}")
# China has had no daylight saving since 1991, so a fixed offset is exact.
_CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

# Aliases seen in imports: FHIR codes, Chinese labels, GB/T 2261.1 codes (1 male, 2 female).
_SEX_ALIASES: Final[dict[str, Sex]] = {
    "male": "male",
    "m": "male",
    "男": "male",
    "1": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "2": "female",
}
# Values that say nothing about sex, so they cannot contradict the number.
_SEX_UNKNOWN: Final = frozenset({"", "unknown", "other", "u", "0", "9", "未知", "未说明"})


class ResidentIdError(ValueError):
    """A resident ID number that breaks GB 11643, or contradicts other patient data.

    `reason` is a stable code the UI can translate; the message is English for logs.
    """

    def __init__(self, message: str, *, reason: Reason) -> None:
        super().__init__(message)
        self.message = message
        self.reason: Reason = reason


@dataclass(frozen=True)
class ResidentId:
    number: str
    division_code: str
    birth_date: date
    sex: Sex


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a number."""
    if not _DIGITS_17.fullmatch(first17):
        raise ValueError(f"check_digit needs exactly 17 ASCII digits, got {first17!r}")
    total = sum(map(mul, map(int, first17), _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def parse_resident_id(raw: str, *, today: date | None = None) -> ResidentId:
    """Validate a resident ID number and decode it; 15-digit legacy numbers are upgraded.

    Whitespace anywhere is dropped and full-width characters folded (pasted numbers often
    carry both); a trailing lower-case x is accepted.
    """
    number = _normalise(raw)
    if len(number) == 15:
        number = _upgrade_legacy(number)
    elif len(number) == 18:
        _require_characters(number, check_char_allowed=True)
        _require_check_digit(number)
    else:
        raise ResidentIdError(
            "Resident ID number must have 18 characters (or 15 for a legacy number), "
            f"got {len(number)}.",
            reason="length",
        )
    birth_date = _birth_date(number[6:14], today=today or _today_in_china())
    return ResidentId(
        number=number,
        division_code=number[:6],
        birth_date=birth_date,
        sex=_sex_of_sequence(int(number[14:17])),
    )


def make_resident_id(division_code: str, birth_date: date, sequence: int) -> str:
    """A valid 18-character number.

    `sequence` (0..999) becomes the 3-digit sequence code; its parity decides the encoded
    sex (odd = male, even = female). Use `sequence_for_sex` to draw one for a given sex.
    """
    if not _DIGITS_6.fullmatch(division_code):
        raise ValueError(f"division code must be 6 ASCII digits, got {division_code!r}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be within 0..999, got {sequence}")
    if not 1000 <= birth_date.year <= 9999:
        raise ValueError(f"birth year must have 4 digits, got {birth_date.year}")
    first17 = (
        f"{division_code}{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}"
        f"{sequence:03d}"
    )
    return first17 + check_digit(first17)


def sequence_for_sex(rng: random.Random, sex: Sex) -> int:
    """A random sequence (1..999) whose parity encodes `sex`; 000 is not issued in practice."""
    return rng.randrange(1 if sex == "male" else 2, 1000, 2)


def check_consistency(rid: ResidentId, *, sex: str | None, birth_date: date | None) -> None:
    """Raise ResidentIdError when a stated sex or birth date contradicts the number.

    `sex` accepts male/female, m/f, 男/女 and GB/T 2261.1 codes 1/2 (any case); unknown
    values (unknown, other, 0, 9, 未知, 未说明, empty) are not checked. Anything else is a
    caller error and raises a plain ValueError.
    """
    stated = _normalise_sex(sex)
    if stated is not None and stated != rid.sex:
        raise ResidentIdError(
            f"Sex {sex!r} contradicts the resident ID number, which encodes {rid.sex}.",
            reason="sex-mismatch",
        )
    if birth_date is not None and birth_date != rid.birth_date:
        raise ResidentIdError(
            f"Birth date {birth_date.isoformat()} contradicts the resident ID number, "
            f"which encodes {rid.birth_date.isoformat()}.",
            reason="birth-date-mismatch",
        )


def _normalise(raw: str) -> str:
    folded = unicodedata.normalize("NFKC", raw)
    number = "".join(folded.split())
    if number.endswith("x"):
        number = number[:-1] + "X"
    return number


def _upgrade_legacy(number: str) -> str:
    # Legacy numbers were issued only to people born in the 1900s.
    _require_characters(number, check_char_allowed=False)
    first17 = f"{number[:6]}19{number[6:]}"
    return first17 + check_digit(first17)


def _require_characters(number: str, *, check_char_allowed: bool) -> None:
    for position, char in enumerate(number, start=1):
        if "0" <= char <= "9":
            continue
        if check_char_allowed and position == len(number) and char == "X":
            continue
        allowed = "digits, with X allowed last" if check_char_allowed else "digits"
        raise ResidentIdError(
            f"Resident ID number of {len(number)} characters may contain only {allowed}; "
            f"found {char!r} at position {position}.",
            reason="characters",
        )


def _require_check_digit(number: str) -> None:
    expected = check_digit(number[:17])
    if number[17] != expected:
        raise ResidentIdError(
            f"Resident ID number has check character {number[17]!r}, but its first 17 digits "
            f"require {expected!r}.",
            reason="check-digit",
        )


def _birth_date(yyyymmdd: str, *, today: date) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise ResidentIdError(
            f"Resident ID number encodes an impossible birth date "
            f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}.",
            reason="birth-date",
        ) from None
    if born > today:
        raise ResidentIdError(
            f"Resident ID number encodes birth date {born.isoformat()}, which is after today "
            f"({today.isoformat()}).",
            reason="future-birth-date",
        )
    return born


def _sex_of_sequence(sequence: int) -> Sex:
    return "male" if sequence % 2 else "female"


def _normalise_sex(sex: str | None) -> Sex | None:
    if sex is None:
        return None
    key = sex.strip().lower()
    if key in _SEX_UNKNOWN:
        return None
    try:
        return _SEX_ALIASES[key]
    except KeyError:
        raise ValueError(f"unrecognised sex value {sex!r}") from None


def _today_in_china() -> date:
    # Birth dates in the number are local dates; UTC would reject a newborn before 08:00.
    return utcnow().astimezone(_CHINA_TZ).date()
