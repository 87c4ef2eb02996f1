"""Estimating the matcher's m-probabilities from unlabelled pairs (Fellegi–Sunter EM).

Pure functions, no database. Given the comparison levels of many candidate pairs (what
``matching.compare`` finds for pairs that share a blocking key), expectation–maximisation
alternates between (E) the probability that each pair is one person under the current
m/u-probabilities and (M) re-estimating m (and the within-block u and match share) from
those probabilities. Nobody labels a pair: the duplicates reveal themselves because their
levels agree together. Only m is kept: the within-block u is biased by blocking itself (two
records blocked on name and birth year agree on them more often than two random people),
so the matcher's u stay the random-pair rates in ``matching.U``.

``bench/mpi_accuracy.py --estimate-m`` runs this on synthetic local records of a seed the
benchmark does not score, and prints the table ``matching.M`` was copied from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Levels = Mapping[str, str]  # field -> level, as MatchResult.as_dict() gives it
Table = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Estimate:
    match_share: float  # share of the pairs that are one person
    m: Table
    u: Table  # within-block rates: for diagnosis only
    iterations: int


def estimate_m(
    pairs: Sequence[Levels],
    levels: Mapping[str, Sequence[str]],
    *,
    max_iterations: int = 50,
    tolerance: float = 1e-5,
) -> Estimate:
    """EM over the pairs; ``levels`` lists each field's levels, strongest first.

    Starts from "the strongest level is what duplicates show, the others what strangers
    show", which is enough to break the symmetry between the two classes.
    """
    if not pairs:
        raise ValueError("EM needs at least one pair")
    m = {f: _start(ls, strongest=0.9) for f, ls in levels.items()}
    u = {f: _start(ls, strongest=0.1) for f, ls in levels.items()}
    share = 0.1
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        m_count: dict[str, defaultdict[str, float]] = {f: defaultdict(float) for f in levels}
        u_count: dict[str, defaultdict[str, float]] = {f: defaultdict(float) for f in levels}
        matched = 0.0
        for pair in pairs:
            p = _match_probability(pair, share, m, u)
            matched += p
            for f, level in pair.items():
                m_count[f][level] += p
                u_count[f][level] += 1.0 - p
        new_share = matched / len(pairs)
        new_m = {f: _normalise(m_count[f], levels[f]) for f in levels}
        new_u = {f: _normalise(u_count[f], levels[f]) for f in levels}
        change = max(
            abs(new_share - share),
            *(abs(new_m[f][lv] - m[f][lv]) for f in levels for lv in levels[f]),
        )
        share, m, u = new_share, new_m, new_u
        if change < tolerance:
            break
    return Estimate(share, m, u, iterations)


def _start(levels: Sequence[str], *, strongest: float) -> dict[str, float]:
    if len(levels) == 1:
        return {levels[0]: 1.0}
    rest = (1.0 - strongest) / (len(levels) - 1)
    return {lv: strongest if i == 0 else rest for i, lv in enumerate(levels)}


def _match_probability(pair: Levels, share: float, m: Table, u: Table) -> float:
    same, other = share, 1.0 - share
    for f, level in pair.items():
        same *= m[f][level]
        other *= u[f][level]
    total = same + other
    return same / total if total > 0 else 0.0


def _normalise(counts: Mapping[str, float], levels: Sequence[str]) -> dict[str, float]:
    # A level nobody showed keeps a tiny share, so one unseen level cannot veto a pair.
    total = sum(counts.values())
    if total <= 0:
        return {lv: 1.0 / len(levels) for lv in levels}
    return {lv: max(counts.get(lv, 0.0) / total, 1e-9) for lv in levels}
