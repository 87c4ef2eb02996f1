"""Members' local records of demo residents, with the errors registration clerks make.

Deterministic for a seed. Every record goes through the real registration service, so
exact ID numbers link, near misses land in the review queue and bad misses become new
persons (ids continue after the residents: p00002001 ...).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from medalliance.demo.people import HOMOPHONES
from medalliance.patients import service as patients
from medalliance.patients.models import Person
from medalliance.patients.schemas import LocalRecordIn
from medalliance.registry.enums import Sex

SHARE_OF_RESIDENTS = 0.15
MAX_RESIDENTS = 3_000
# How often a clerk gets each field wrong (checked against what township staff report).
P_NO_ID = 0.45
P_HOMOPHONE = 0.20
P_NEW_PHONE = 0.15
P_SWAP_DAY_MONTH = 0.06
P_DIGIT_TYPO = 0.04
P_SHORT_ADDRESS = 0.25
P_MOVED = 0.10  # moved to town: new address and often a new phone


@dataclass(frozen=True)
class LocalRecordsReport:
    records: int
    reviews: int
    new_persons: int


def add_local_records(
    db: Session, *, members: list[str], residents: int, seed: int
) -> LocalRecordsReport:
    """Register local records of a sample of the residents at one to three members each."""
    rng = random.Random(seed * 7919 + 17)
    sample_size = min(int(residents * SHARE_OF_RESIDENTS), MAX_RESIDENTS)
    ids = sorted(rng.sample(range(1, residents + 1), sample_size))
    persons = db.scalars(select(Person).where(Person.id.in_([f"p{n:08d}" for n in ids]))).all()
    next_id = _counter(residents)
    records = reviews = new = 0
    mrn_counter: dict[str, int] = {}
    for person in sorted(persons, key=lambda p: p.id):
        for member in rng.sample(members, rng.choice((1, 1, 2, 2, 3))):
            mrn_counter[member] = mrn_counter.get(member, 0) + 1
            data = _corrupted(rng, person, member, f"{mrn_counter[member]:07d}")
            result = patients.register_local_record(db, None, data, new_person_id=next_id)
            records += 1
            reviews += result.review is not None
            new += result.outcome.value == "new_person"
    return LocalRecordsReport(records, reviews, new)


def _counter(start: int) -> Callable[[], str]:
    numbers: Iterator[int] = iter(range(start + 1, start + 10_000_000))
    return lambda: f"p{next(numbers):08d}"


def _corrupted(rng: random.Random, p: Person, member: str, mrn: str) -> LocalRecordIn:
    name, born, phone, address = p.name, p.birth_date, p.phone, p.address
    assert born is not None  # the demo's residents all have one
    id_number: str | None = p.id_number
    if rng.random() < P_HOMOPHONE:
        name = _homophone(rng, name)
    if rng.random() < P_NEW_PHONE:
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
    if rng.random() < P_SWAP_DAY_MONTH and born.day <= 12 and born.day != born.month:
        born, id_number = date(born.year, born.day, born.month), None
    elif rng.random() < P_DIGIT_TYPO:
        born, id_number = _digit_typo(rng, born), None
    if rng.random() < P_NO_ID:
        id_number = None
    if rng.random() < P_MOVED:
        address = f"县城{rng.choice('东南西北')}街{rng.randint(1, 200)}号"
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
    elif rng.random() < P_SHORT_ADDRESS and "组" in address:
        address = address.split("组")[0] + "组"
    return LocalRecordIn(
        institution_id=member,
        mrn=mrn,
        name=name,
        sex=Sex(p.sex),
        birth_date=born,
        id_number=id_number,
        phone=phone,
        address=address,
        division_code=p.division_code,
    )


def _homophone(rng: random.Random, name: str) -> str:
    positions = [i for i, ch in enumerate(name) if i > 0 and ch in HOMOPHONES]
    if not positions:
        return name
    i = rng.choice(positions)
    return name[:i] + rng.choice(HOMOPHONES[name[i]]) + name[i + 1 :]


def _digit_typo(rng: random.Random, born: date) -> date:
    text = born.strftime("%Y%m%d")
    for _ in range(10):
        i = rng.randrange(4, 7)  # adjacent digits of the month and day
        swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        try:
            candidate = date(int(swapped[:4]), int(swapped[4:6]), int(swapped[6:]))
        except ValueError:
            continue
        if candidate != born:
            return candidate
    return born
