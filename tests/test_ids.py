"""Resource ids: FHIR-legal, unique, ordered by creation time."""

from __future__ import annotations

import re
import time

from medalliance.kit.ids import new_id

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def test_ids_are_fhir_ids_and_do_not_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert all(FHIR_ID.match(i) and len(i) == 20 for i in ids)
    assert len(set(ids)) == len(ids)
    assert len({i[9:] for i in ids}) == len(ids)  # the random part alone is unique too


def test_a_later_id_sorts_after_an_earlier_one() -> None:
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first
