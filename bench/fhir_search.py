"""Search latency on a store of encounters with observations, three ways in the same run:
through the service (parsing, access check of the named patient, scoping, keyset paging,
audit rows), through the query builder alone (``engine.run`` with the same access rule),
and hand-written SQL answering the same question. Prints p50/p95 of each and the p50
ratios to the SQL, after checking that all three give the same ids in the same order.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bs_search \
        .venv/bin/python bench/fhir_search_load.py --encounters 1000000   # once (resumable)
    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bs_search \
        .venv/bin/python bench/fhir_search.py [--runs 100] [--only patient]

The actor is the county hospital's own system; the hand-written SQL applies the same access
rule (a live care relationship with the institution, or a given consent) where the search
is not about one patient whose access the service checks up front.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.db import get_sessionmaker
from medalliance.records import links, service
from medalliance.records.models import FhirResource
from medalliance.records.search import engine
from medalliance.records.search.criteria import parse

HIS = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PAGE = 20

# The access rule of readable_patients for HIS, as one would write it by hand.
READABLE = """(r.patient_id IS NULL
    OR EXISTS (SELECT 1 FROM care_relationship c WHERE c.patient_id = r.patient_id
               AND c.institution_id = 'county-hospital'
               AND (c.expires_at IS NULL OR c.expires_at > now()))
    OR (SELECT k.status FROM consent k WHERE k.patient_id = r.patient_id
        AND (k.scope = 'consortium' OR (k.scope = 'institution'
             AND k.institution_id = 'county-hospital'))
        ORDER BY k.id DESC LIMIT 1) = 'given')"""


@dataclass(frozen=True)
class Case:
    resource_type: str
    params: list[tuple[str, str]]
    sql: str  # returns (id, content) rows in the service's order, or one count


def page(resource_type: str, where: str, order: str = "r.pid", limit: int = PAGE) -> str:
    return f"""SELECT r.id, r.content FROM fhir_resource r
        WHERE r.resource_type = '{resource_type}' AND NOT r.deleted AND {where}
        ORDER BY {order} LIMIT {limit + 1}"""


def token(resource_type: str, name: str, match: str, patient: bool = False) -> str:
    scope = "AND t.patient_id = :p" if patient else ""
    return f"""r.pid IN (SELECT t.pid FROM fhir_idx_token t WHERE t.resource_type =
        '{resource_type}' AND t.name = '{name}' AND {match} {scope})"""


def reference(resource_type: str, name: str, target: str) -> str:
    return f"""r.pid IN (SELECT x.pid FROM fhir_idx_reference x WHERE x.resource_type =
        '{resource_type}' AND x.name = '{name}' AND {target})"""


def joined_page(resource_type: str, name: str, target: str) -> str:
    """A page of one reference's matches over all patients, as one would hand-write it on
    the 0020 lookup index (pid after the target): a join to its rows' distinct pids, read
    in pid order. Written as ``pid IN (...)`` PostgreSQL hashes and sorts every match."""
    return f"""SELECT r.id, r.content FROM fhir_resource r
        JOIN (SELECT DISTINCT x.pid FROM fhir_idx_reference x WHERE x.resource_type =
              '{resource_type}' AND x.name = '{name}' AND {target}) m ON m.pid = r.pid
        WHERE r.resource_type = '{resource_type}' AND NOT r.deleted AND {READABLE}
        ORDER BY r.pid LIMIT {PAGE + 1}"""


def date_in_patient(condition: str) -> str:
    return f"""r.patient_id = :p AND r.pid IN (SELECT d.pid FROM fhir_idx_date d
        WHERE d.patient_id = :p AND d.resource_type = 'Encounter' AND d.name = 'date'
        AND {condition})"""


def cases(values: dict[str, Any]) -> dict[str, Case]:
    """The searches of issue #4; ``values`` holds the parameters of one run."""
    v = values
    year, month, day = v["year"], v["month"], v["day"]
    ap_low = v["day_start"] - v["ap_margin"]
    ap_high = v["day_start"] + timedelta(days=1) + v["ap_margin"]
    code_match = f"t.code = '{v['code']}' AND t.system = '{LOINC}'"
    return {
        "_id": Case(
            "Encounter",
            [("_id", v["encounter"])],
            page("Encounter", f"r.id = :e AND {READABLE}"),
        ),
        "_lastUpdated (1 min)": Case(
            "Observation",
            [("_lastUpdated", f"ge{v['minute']}"), ("_lastUpdated", f"lt{v['minute_end']}")],
            page(
                "Observation",
                f"r.last_updated >= :m AND r.last_updated < :m_end AND {READABLE}",
            ),
        ),
        "patient": Case(
            "Observation",
            [("patient", v["patient"])],
            page("Observation", "r.patient_id = :p"),
        ),
        "subject=Patient/x": Case(
            "Observation",
            [("subject", f"Patient/{v['patient']}")],
            joined_page("Observation", "subject", "x.target_type = 'Patient' AND x.target_id = :p"),
        ),
        "encounter": Case(
            "Observation",
            [("encounter", f"Encounter/{v['encounter']}")],
            page(
                "Observation",
                reference(
                    "Observation", "encounter", "x.target_type = 'Encounter' AND x.target_id = :e"
                )
                + f" AND {READABLE}",
            ),
        ),
        "patient+code sys|code": Case(
            "Observation",
            [("patient", v["patient"]), ("code", f"{LOINC}|{v['code']}")],
            page(
                "Observation",
                "r.patient_id = :p AND " + token("Observation", "code", code_match, True),
            ),
        ),
        "patient+code code": Case(
            "Observation",
            [("patient", v["patient"]), ("code", v["code"])],
            page(
                "Observation",
                "r.patient_id = :p AND "
                + token("Observation", "code", f"t.code = '{v['code']}'", True),
            ),
        ),
        "patient+code sys|": Case(
            "Observation",
            [("patient", v["patient"]), ("code", f"{LOINC}|")],
            page(
                "Observation",
                "r.patient_id = :p AND "
                + token("Observation", "code", f"t.system = '{LOINC}'", True),
            ),
        ),
        "patient+category": Case(
            "Observation",
            [("patient", v["patient"]), ("category", f"{CATEGORY}|laboratory")],
            page(
                "Observation",
                "r.patient_id = :p AND "
                + token(
                    "Observation",
                    "category",
                    f"t.code = 'laboratory' AND t.system = '{CATEGORY}'",
                    True,
                ),
            ),
        ),
        "code (all patients)": Case(
            "Observation",
            [("code", f"{LOINC}|718-7")],
            page(
                "Observation",
                token("Observation", "code", f"t.code = '718-7' AND t.system = '{LOINC}'")
                + f" AND {READABLE}",
            ),
        ),
        "patient+date eq YYYY": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"eq{year}")],
            page("Encounter", date_in_patient("d.low >= :y0 AND d.high <= :y1")),
        ),
        "patient+date ne YYYY-MM": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"ne{month}")],
            page("Encounter", date_in_patient("(d.low < :m0 OR d.high > :m1)")),
        ),
        "patient+date lt YYYY": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"lt{year}")],
            page("Encounter", date_in_patient("d.low < :y0")),
        ),
        "patient+date gt YYYY-MM": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"gt{month}")],
            page("Encounter", date_in_patient("d.high > :m1")),
        ),
        "patient+date le YYYY-MM-DD": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"le{day}")],
            page("Encounter", date_in_patient("d.low <= :d1")),
        ),
        "patient+date ge YYYY-MM": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"ge{month}")],
            page("Encounter", date_in_patient("d.high >= :m0")),
        ),
        "patient+date ap YYYY-MM-DD": Case(
            "Encounter",
            [("patient", v["patient"]), ("date", f"ap{day}")],
            page(
                "Encounter",
                date_in_patient(
                    f"d.low <= '{ap_high.isoformat()}' AND d.high >= '{ap_low.isoformat()}'"
                ),
            ),
        ),
        "date eq YYYY-MM-DD (all)": Case(
            "Encounter",
            [("date", day)],
            page(
                "Encounter",
                """r.pid IN (SELECT d.pid FROM fhir_idx_date d WHERE d.resource_type = 'Encounter'
                   AND d.name = 'date' AND d.low >= :d0 AND d.high <= :d1)"""
                + f" AND {READABLE}",
            ),
        ),
        "status (all, 5%)": Case(
            "Encounter",
            [("status", "cancelled")],
            page(
                "Encounter",
                token("Encounter", "status", "t.code = 'cancelled'") + f" AND {READABLE}",
            ),
        ),
        "patient+status": Case(
            "Encounter",
            [("patient", v["patient"]), ("status", "finished")],
            page(
                "Encounter",
                "r.patient_id = :p AND "
                + token("Encounter", "status", "t.code = 'finished'", True),
            ),
        ),
        "identifier": Case(
            "Encounter",
            [("identifier", f"{v['identifier_system']}|{v['identifier']}")],
            page(
                "Encounter",
                token(
                    "Encounter",
                    "identifier",
                    f"t.code = '{v['identifier']}' AND t.system = '{v['identifier_system']}'",
                )
                + f" AND {READABLE}",
            ),
        ),
        "performer": Case(
            "Observation",
            [("performer", f"Practitioner/{v['practitioner']}")],
            joined_page(
                "Observation",
                "performer",
                f"x.target_type = 'Practitioner' AND x.target_id = '{v['practitioner']}'",
            ),
        ),
        "service-provider (10%)": Case(
            "Encounter",
            [("service-provider", "Organization/township-01")],
            page(
                "Encounter",
                reference(
                    "Encounter",
                    "service-provider",
                    "x.target_type = 'Organization' AND x.target_id = 'township-01'",
                )
                + f" AND {READABLE}",
            ),
        ),
        "patient _sort=-date": Case(
            "Observation",
            [("patient", v["patient"]), ("_sort", "-date")],
            page("Observation", "r.patient_id = :p", "r.sort_date DESC, r.pid DESC"),
        ),
        "patient _count=50 page 2": Case(
            "Observation",
            [
                ("patient", v["patient"]),
                ("_count", "50"),
                ("_sort", "-date"),
                ("_cursor", "{next}"),
            ],
            page(
                "Observation",
                "r.patient_id = :p AND (r.sort_date, r.pid) < (:after_date, :after_pid)",
                "r.sort_date DESC, r.pid DESC",
                50,
            ),
        ),
        "patient _include encounter": Case(
            "Observation",
            [("patient", v["patient"]), ("_include", "Observation:encounter")],
            """WITH m AS (SELECT r.pid, r.id, r.content FROM fhir_resource r
                 WHERE r.resource_type = 'Observation' AND NOT r.deleted AND r.patient_id = :p
                 ORDER BY r.pid LIMIT 20)
               SELECT id, content FROM m
               UNION ALL
               SELECT DISTINCT e.id, e.content FROM fhir_resource e
               JOIN fhir_idx_reference x ON x.target_type = 'Encounter' AND x.target_id = e.id
               WHERE e.resource_type = 'Encounter' AND NOT e.deleted AND x.name = 'encounter'
               AND x.pid IN (SELECT pid FROM m)""",
        ),
        "patient _revinclude obs": Case(
            "Encounter",
            [("patient", v["patient"]), ("_count", "5"), ("_revinclude", "Observation:encounter")],
            """WITH m AS (SELECT r.id, r.content FROM fhir_resource r
                 WHERE r.resource_type = 'Encounter' AND NOT r.deleted AND r.patient_id = :p
                 ORDER BY r.pid LIMIT 5)
               SELECT id, content FROM m
               UNION ALL
               SELECT o.id, o.content FROM fhir_resource o JOIN fhir_idx_reference x
               ON x.pid = o.pid WHERE x.resource_type = 'Observation' AND x.name = 'encounter'
               AND x.target_type = 'Encounter' AND NOT o.deleted
               AND x.target_id IN (SELECT id FROM m)""",
        ),
        "patient+code _summary=count": Case(
            "Observation",
            [("patient", v["patient"]), ("code", f"{LOINC}|{v['code']}"), ("_summary", "count")],
            """SELECT count(*) FROM fhir_idx_token t WHERE t.patient_id = :p
               AND t.resource_type = 'Observation' AND t.name = 'code'
               AND t.code = :code AND t.system = 'http://loinc.org'""",
        ),
        "code _summary=count (all)": Case(
            "Observation",
            [("code", f"{LOINC}|718-7"), ("_summary", "count")],
            """SELECT count(*) FROM fhir_resource r WHERE r.resource_type = 'Observation'
               AND NOT r.deleted AND """
            + token("Observation", "code", f"t.code = '718-7' AND t.system = '{LOINC}'")
            + f" AND {READABLE}",
        ),
    }


def sample_values(
    db: Session, rng: random.Random, encounters: list[tuple[Any, ...]]
) -> dict[str, Any]:
    enc_id, patient, identifier, last_updated = rng.choice(encounters)
    # A date without a time is the consortium's local day (records.dates).
    home = ZoneInfo(get_settings().timezone)
    year = rng.randint(2017, 2026)
    month_no = rng.randint(1, 12 if year < 2026 else 10)
    month_start = datetime(year, month_no, 1, tzinfo=home)
    next_month = datetime(year + month_no // 12, month_no % 12 + 1, 1, tzinfo=home)
    day_start = month_start + timedelta(days=rng.randrange(28))
    minute = last_updated.replace(second=0, microsecond=0)
    return {
        "encounter": enc_id,
        "patient": patient,
        "identifier": identifier[1],
        "identifier_system": identifier[0],
        "code": rng.choice(["8867-4", "8480-6", "2345-7"]),
        "practitioner": f"pr-{rng.randint(1, 268):05d}",
        "year": str(year),
        "month": month_start.strftime("%Y-%m"),
        "day": day_start.strftime("%Y-%m-%d"),
        "day_start": day_start,
        "ap_margin": max(abs(datetime.now(UTC) - day_start) * 0.1, timedelta(days=1)),
        "minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "minute_end": (minute + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "binds": {
            "p": patient,
            "e": enc_id,
            "code": None,
            "m": minute,
            "m_end": minute + timedelta(minutes=1),
            "y0": datetime(year, 1, 1, tzinfo=home),
            "y1": datetime(year + 1, 1, 1, tzinfo=home) - timedelta(microseconds=1),
            "m0": month_start,
            "m1": next_month - timedelta(microseconds=1),
            "d0": day_start,
            "d1": day_start + timedelta(days=1) - timedelta(microseconds=1),
        },
    }


def via_service(db: Session, case: Case, values: dict[str, Any]) -> list[str] | int:
    params = list(case.params)
    if any(k == "_cursor" for k, _ in params):
        first = [(k, v) for k, v in params if k != "_cursor"]
        start = service.search(db, HIS, case.resource_type, first, now=datetime.now(UTC))
        params = [*first, ("_cursor", start.next_cursor or "")]
    result = service.search(db, HIS, case.resource_type, params, now=datetime.now(UTC))
    db.flush()  # the audit rows are written as a request would (and committed)
    # A request's session starts empty: without this the session's identity map grows by
    # every audit row of the run, and each flush walks all of them.
    db.expunge_all()
    if result.total is not None:
        return result.total
    found = [m.id for m in [*result.matches, *result.included]]
    return sorted(found) if result.included else found


def via_engine(db: Session, case: Case, values: dict[str, Any]) -> list[str] | int:
    """The query builder alone: the service's search minus its access check of the named
    patient and its audit rows (fixed costs: a few round trips per search)."""
    # The service's rule for the actor: a condition built once per kind of reader.
    rule = service._readable(HIS, FhirResource.patient_id, datetime.now(UTC))

    def run(params: list[tuple[str, str]]) -> engine.SearchResult:
        query = parse(case.resource_type, params, strict=False)
        return engine.run(db, query, rule, lambda v: links.person_id(db, v))

    params = list(case.params)
    if any(k == "_cursor" for k, _ in params):
        first = [(k, v) for k, v in params if k != "_cursor"]
        params = [*first, ("_cursor", run(first).next_cursor or "")]
    result = run(params)
    if result.total is not None:
        return result.total
    found = [m.id for m in [*result.matches, *result.included]]
    return sorted(found) if result.included else found


def via_sql(db: Session, case: Case, values: dict[str, Any]) -> list[str] | int:
    binds = dict(values["binds"], code=values["code"])
    if "after_date" in case.sql:
        first = page("Observation", "r.patient_id = :p", "r.sort_date DESC, r.pid DESC", 50)
        rows = db.execute(
            text(first.replace("r.id, r.content", "r.id, r.sort_date, r.pid")), binds
        ).all()
        binds |= {"after_date": rows[49][1], "after_pid": rows[49][2]} if len(rows) > 50 else {}
        if len(rows) <= 50:
            return []
    rows = db.execute(text(case.sql), binds).all()
    if len(rows) == 1 and len(rows[0]) == 1:
        return int(rows[0][0])
    return [r[0] for r in rows]


def expected(found: list[str] | int, case: Case) -> list[str] | int:
    """The hand-written pages fetch one row more (to know there is a next page)."""
    if isinstance(found, int):
        return found
    limit = 50 if "after_date" in case.sql else PAGE
    if "include" in str(case.params):  # the included resources come in no defined order
        return sorted(found)
    return found[:limit]


Way = Callable[[Session, Case, dict[str, Any]], list[str] | int]


def interleaved(
    db: Session, name: str, draws: list[dict[str, Any]], ways: tuple[Way, ...]
) -> tuple[list[tuple[float, float]], list[float]]:
    """p50/p95 in ms of each way over the same draws, and the mean CPU time in ms this
    process spent per search of each way (what this side costs, whatever else the
    machine runs). Each draw runs every way, the first one in turn: whichever runs first
    on a draw reads its pages into the cache for the others, and running one way over
    all draws before the next gave that advantage to the later ones (the service, run
    first, paid for the SQL's cache)."""
    times: list[list[float]] = [[] for _ in ways]
    cpu = [0.0 for _ in ways]
    for n, values in enumerate(draws):
        case = cases(values)[name]
        for k in range(len(ways)):
            which = (n + k) % len(ways)
            started, cpu_started = time.perf_counter(), time.process_time()
            ways[which](db, case, values)
            times[which].append((time.perf_counter() - started) * 1000)
            cpu[which] += time.process_time() - cpu_started
            # Committed as a request is: psycopg forgets its prepared statements on every
            # rollback, so rolling back made each way parse and plan every statement.
            db.commit()
    return [percentiles(t) for t in times], [c * 1000 / len(draws) for c in cpu]


def percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[max(int(len(values) * 0.95) - 1, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description="FHIR search latency vs hand-written SQL")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--only", default="", help="run the searches whose name contains this")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    db: Session = get_sessionmaker()()
    counts = db.execute(text("SELECT resource_type, count(*) FROM fhir_resource GROUP BY 1")).all()
    encounters = [
        (e, p, (s, v), u)
        for e, p, s, v, u in db.execute(
            text(
                """SELECT r.id, r.patient_id, t.system, t.code, r.last_updated
                   FROM fhir_resource r TABLESAMPLE SYSTEM (1)
                   JOIN fhir_idx_token t ON t.pid = r.pid AND t.name = 'identifier'
                   WHERE r.resource_type = 'Encounter' LIMIT 500"""
            )
        )
    ]
    db.rollback()
    print("store:", ", ".join(f"{t} {n}" for t, n in counts))
    print(
        f"{'search':28s} {'service':>13s} {'engine':>13s} {'SQL':>13s}  p50 ratio to SQL"
        "   client CPU"
    )
    print(f"{'(ms, p50/p95)':28s}" + "  p50     p95" * 3 + "  service engine  service SQL")
    names = [n for n in cases(sample_values(db, rng, encounters)) if args.only in n]
    for name in names:
        for _ in range(3):  # correctness first: same ids, same order
            values = sample_values(db, rng, encounters)
            case = cases(values)[name]
            want = expected(via_sql(db, case, values), case)
            for how, found in (("service", via_service), ("engine", via_engine)):
                got = found(db, case, values)
                got = sorted(got) if isinstance(got, list) and "include" in name else got
                if got != want:
                    print(f"{name} ({how}): MISMATCH {got!r:.120} != {want!r:.120}")
            db.commit()
        draws = [sample_values(db, rng, encounters) for _ in range(args.runs)]
        timings, cpu = interleaved(db, name, draws, (via_service, via_engine, via_sql))
        (s50, s95), (e50, e95), (q50, q95) = timings
        print(
            f"{name:28s} {s50:6.1f} {s95:7.1f} {e50:6.1f} {e95:7.1f} {q50:6.1f} {q95:7.1f}"
            f"  {s50 / q50:6.1f}x {e50 / q50:5.1f}x  {cpu[0]:6.2f} {cpu[2]:4.2f}",
            flush=True,
        )
    db.close()


if __name__ == "__main__":
    main()
