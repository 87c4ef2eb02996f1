"""EM estimation of m-probabilities from unlabelled pairs (patients.training)."""

from __future__ import annotations

import random

import pytest

from medalliance.patients.training import estimate_m

LEVELS = {
    "name": ["exact", "similar", "different"],
    "birth_date": ["exact", "close", "different"],
    "phone": ["exact", "different"],
}
TRUE_M = {
    "name": {"exact": 0.8, "similar": 0.15, "different": 0.05},
    "birth_date": {"exact": 0.9, "close": 0.08, "different": 0.02},
    "phone": {"exact": 0.6, "different": 0.4},
}
TRUE_U = {
    "name": {"exact": 0.01, "similar": 0.09, "different": 0.9},
    "birth_date": {"exact": 0.02, "close": 0.1, "different": 0.88},
    "phone": {"exact": 0.001, "different": 0.999},
}


def _draw(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _pairs(n: int, share: float, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        table = TRUE_M if rng.random() < share else TRUE_U
        pair = {f: _draw(rng, table[f]) for f in LEVELS}
        if rng.random() < 0.2:
            del pair["phone"]  # a missing value: the field is simply absent
        pairs.append(pair)
    return pairs


def test_em_recovers_the_m_probabilities_without_labels() -> None:
    found = estimate_m(_pairs(20_000, 0.3, seed=1), LEVELS)
    assert found.match_share == pytest.approx(0.3, abs=0.02)
    for f, table in TRUE_M.items():
        for level, m in table.items():
            assert found.m[f][level] == pytest.approx(m, abs=0.03), (f, level)


def test_a_level_never_seen_keeps_a_tiny_nonzero_share() -> None:
    pairs = [p for p in _pairs(5_000, 0.3, seed=2) if p["name"] != "similar"]
    found = estimate_m(pairs, LEVELS)
    assert 0 < found.m["name"]["similar"] < 0.01


def test_no_pairs_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one pair"):
        estimate_m([], LEVELS)
