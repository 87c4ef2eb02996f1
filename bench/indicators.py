"""Indicators at county scale on PostgreSQL, beside DuckDB on the same facts.

    .venv/bin/python bench/indicators.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_indicators \
        [--facts 5000000] [--queries 40]

Generates a year of care (encounter facts, plus referrals and out-of-county settlements
in proportion) with DuckDB, writes them to Parquet, COPYs the same rows into the
PostgreSQL fact tables, then times:
- the overview page query (every indicator, its 12-month trend) on PostgreSQL, p50/p95;
- a full rebuild of the aggregates on PostgreSQL;
- DuckDB computing the same aggregates from the Parquet files;
and checks that both give the same count per measure. Targets: overview p95 <= 500 ms,
rebuild within 3x DuckDB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

INSTITUTIONS = (
    [("city-hospital", "tertiary", False)]
    + [(i, "secondary", True) for i in ("county-hospital", "county-tcm", "county-mch")]
    + [(f"township-{t:02d}", "primary", True) for t in range(1, 11)]
    + [
        (f"township-{t:02d}-village-{v}", "village", True)
        for t in range(1, 11)
        for v in range(1, 6)
    ]
)
CODES = (
    "J06.9",
    "J18.9",
    "K29.7",
    "M54.5",
    "I10",
    "E11.9",
    "I63.9",
    "N39.0",
    "Z00.0",
    "R51",
    "I25.1",
    "J44.9",
    "E78.5",
    "K80.2",
    "S82.2",
    "O80",
    "A09",
    "C34.9",
    "F32.9",
    "G40.9",
)


def generate(con: Any, facts: int, out: Path) -> None:
    """Deterministic pseudo-random facts from hashes of the row number (fast, no Python loop)."""
    from medalliance.indicators.icd import chapter

    con.execute("CREATE TABLE inst(k INT, id VARCHAR, level VARCHAR, in_county BOOLEAN)")
    con.executemany(
        "INSERT INTO inst VALUES (?, ?, ?, ?)", [(k, *row) for k, row in enumerate(INSTITUTIONS)]
    )
    con.execute("CREATE TABLE codes(k INT, code VARCHAR, chapter VARCHAR)")
    con.executemany(
        "INSERT INTO codes VALUES (?, ?, ?)", [(k, c, chapter(c)) for k, c in enumerate(CODES)]
    )
    n_inst, n_codes = len(INSTITUTIONS), len(CODES)
    con.execute(f"""
    CREATE TABLE enc AS
    WITH r AS (
      SELECT i, hash(i) AS h1, hash(i + 7919) AS h2, hash(i * 31 + 17) AS h3
      FROM range({facts}) t(i)
    ), t AS (
      SELECT i, h1, h2, h3,
        CASE WHEN h2 % 100 < 3 THEN '510700101000'
             ELSE '510799' || CAST(101 + h1 % 10 AS VARCHAR) || '000' END AS township_code,
        DATE '2025-10-01' + CAST(h3 % 365 AS INTEGER) AS day
      FROM r
    )
    SELECT 'b/' || CAST(i AS VARCHAR) AS source_id,
      'p' || lpad(CAST(h1 % 1000000 AS VARCHAR), 8, '0') AS patient_id,
      inst.id AS institution_id, inst.level AS institution_level, township_code,
      CASE WHEN h2 % 1000 < 40 THEN 'inpatient' WHEN h2 % 1000 < 90 THEN 'emergency'
           ELSE 'ambulatory' END AS encounter_class,
      day, strftime(day, '%Y-%m') AS month, inst.in_county,
      starts_with(township_code, '510799') AS resident,
      codes.code AS icd10, codes.chapter AS icd_chapter,
      ['0-6', '7-17', '18-44', '45-59', '60-74', '75+'][1 + CAST(h3 % 6 AS INTEGER)] AS age_band,
      CASE WHEN h1 % 2 = 0 THEN 'male' ELSE 'female' END AS sex
    FROM t JOIN inst ON inst.k = (h2 // 1000) % {n_inst}
    JOIN codes ON codes.k = (h3 // 365) % {n_codes}
    """)
    con.execute(f"""
    CREATE TABLE ref AS
    WITH r AS (SELECT i, hash(i + 1) AS h1, hash(i + 2) AS h2 FROM range({facts // 40}) t(i)),
    t AS (
      SELECT i, h1, h2, h1 % 2 = 0 AS up, h2 % 10 = 0 AS green,
        TIMESTAMPTZ '2025-10-01 00:00:00+00'
          + to_minutes(CAST(h1 % (365 * 1440) AS BIGINT)) AS requested_at,
        CAST(h2 % 900 AS DOUBLE) + 1 AS minutes, CAST(h1 % 120 AS DOUBLE) + 2 AS hours
      FROM r
    )
    SELECT 'R' || CAST(i AS VARCHAR) AS referral_id,
      'p' || lpad(CAST(h1 % 1000000 AS VARCHAR), 8, '0') AS patient_id,
      '510799' || CAST(101 + h2 % 10 AS VARCHAR) || '000' AS township_code,
      CASE WHEN up THEN 'up' ELSE 'down' END AS direction,
      CASE WHEN green THEN 'emergency' ELSE 'routine' END AS urgency, green AS green_channel,
      CASE WHEN h2 % 7 = 0 THEN 'requested' ELSE 'completed' END AS status,
      CASE WHEN up THEN 'township-' || lpad(CAST(1 + h1 % 10 AS VARCHAR), 2, '0')
        ELSE 'county-hospital' END AS from_institution_id,
      CASE WHEN up THEN 'county-hospital'
        ELSE 'township-' || lpad(CAST(1 + h1 % 10 AS VARCHAR), 2, '0') END AS to_institution_id,
      strftime(requested_at AT TIME ZONE 'Asia/Shanghai', '%Y-%m') AS month, requested_at,
      requested_at + to_minutes(CAST(minutes AS BIGINT)) AS accepted_at,
      requested_at + to_minutes(CAST(minutes AS BIGINT)) AS scheduled_at,
      requested_at + to_minutes(CAST(hours * 60 AS BIGINT)) AS appointment_at,
      requested_at + to_days(5) AS completed_at,
      requested_at + to_minutes(CASE WHEN green THEN 10 ELSE 1440 END) AS deadline_at,
      minutes <= CASE WHEN green THEN 10 ELSE 1440 END AS accepted_in_time,
      h1 % 10 < 8 AS outcome_returned, NOT up AND h2 % 10 < 8 AS follow_up_within_14_days,
      h1 % 10 < 6 AS reserved_slot_used, CAST(minutes AS BIGINT)::DOUBLE AS minutes_to_acceptance,
      CAST(hours * 60 AS BIGINT) / 60.0 AS hours_to_appointment
    FROM t
    """)
    con.execute(f"""
    CREATE TABLE stl AS
    WITH r AS (SELECT i, hash(i + 3) AS h1, hash(i + 4) AS h2 FROM range({facts // 15}) t(i))
    SELECT 'S' || CAST(i AS VARCHAR) AS settlement_id,
      'p' || lpad(CAST(h1 % 1000000 AS VARCHAR), 8, '0') AS patient_id,
      '510799' || CAST(101 + h2 % 10 AS VARCHAR) || '000' AS township_code,
      'city-hospital' AS institution_id,
      CASE WHEN h2 % 100 < 8 THEN 'inpatient' ELSE 'ambulatory' END AS encounter_class,
      DATE '2025-10-01' + CAST(h1 % 365 AS INTEGER) AS day,
      strftime(DATE '2025-10-01' + CAST(h1 % 365 AS INTEGER), '%Y-%m') AS month,
      FALSE AS in_county, TRUE AS resident, CAST(h2 % 20000 AS DECIMAL(14, 2)) AS amount,
      'bench' AS import_id
    FROM r
    """)
    for name in ("enc", "ref", "stl"):
        con.execute(f"COPY {name} TO '{out / name}.parquet' (FORMAT parquet)")
    add_cells(con)


def add_cells(con: Any) -> None:
    """What the write path stores beside each encounter fact (models.EncounterCell): the id
    of its combination of grouping columns. Added after the Parquet export, which DuckDB
    reads as the plain facts."""
    from medalliance.indicators.models import CELL_COLUMNS

    cols = ", ".join(CELL_COLUMNS)
    con.execute(
        f"CREATE TABLE cell AS SELECT CAST(row_number() OVER () AS INTEGER) AS id, {cols}"
        f" FROM (SELECT DISTINCT {cols} FROM enc)"
    )
    con.execute(
        "CREATE TABLE enc_cells AS SELECT enc.*, cell.id AS cell_id"
        f" FROM enc JOIN cell USING ({cols})"
    )


TABLE_OF = {
    "enc": "indicator_encounter_fact",
    "ref": "indicator_referral_fact",
    "stl": "indicator_settlement_fact",
}


# DuckDB table -> PostgreSQL table, cells before the facts that reference them.
COPY_OF = {
    "cell": "indicator_encounter_cell",
    "enc_cells": "indicator_encounter_fact",
    "ref": "indicator_referral_fact",
    "stl": "indicator_settlement_fact",
}


def copy_to_postgres(con: Any, url: str, out: Path) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as pg:
        pg.execute(f"TRUNCATE {', '.join(COPY_OF.values())}")
        for name, table in COPY_OF.items():
            columns = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
            csv_path = out / f"{name}.csv"
            con.execute(f"COPY {name} TO '{csv_path}' (FORMAT csv, HEADER false)")
            with (
                pg.cursor() as cur,
                cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy,
                csv_path.open("rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
            csv_path.unlink()
        pg.execute("TRUNCATE indicator_population")
        pg.execute(
            "INSERT INTO indicator_population"
            " SELECT '510799' || (100 + g)::text || '000', 100000, now()"
            " FROM generate_series(1, 10) g"
        )
        pg.commit()
    with psycopg.connect(dsn, autocommit=True) as pg:
        for table in COPY_OF.values():
            pg.execute(f"VACUUM ANALYZE {table}")


def duckdb_aggregates(con: Any, out: Path) -> tuple[float, dict[str, int]]:
    """The rebuild's grouped pass, in DuckDB over the Parquet files.

    Returns (seconds, count per measure)."""
    from sqlalchemy.dialects import postgresql

    from medalliance.indicators.measures import of_table

    started = time.perf_counter()
    totals: dict[str, int] = defaultdict(int)
    for name, table in (("enc", "encounter"), ("ref", "referral"), ("stl", "settlement")):
        measures = of_table(table)  # type: ignore[arg-type]
        parts = []
        for m in measures:
            condition = str(
                m.condition().compile(
                    dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                    compile_kwargs={"literal_binds": True},
                )
            )
            condition = condition.replace(f"{TABLE_OF[name]}.", "")
            value = m.value or "0"
            parts.append(f'sum(CASE WHEN {condition} THEN 1 ELSE 0 END) AS "n__{m.name}"')
            parts.append(f'sum(CASE WHEN {condition} THEN {value} ELSE 0 END) AS "t__{m.name}"')
        institutions = sorted({m.institution for m in measures})
        group = ", ".join([*institutions, "township_code", "month"])
        rows = con.execute(
            f"SELECT {group}, {', '.join(parts)} "
            f"FROM read_parquet('{out / name}.parquet') GROUP BY {group}"
        ).fetchall()
        width = len(institutions) + 2
        for row in rows:
            for index, m in enumerate(measures):
                totals[m.name] += int(row[width + 2 * index] or 0)
    return time.perf_counter() - started, dict(totals)


def loaded_facts(engine: Any) -> int:
    from sqlalchemy import func, select

    from medalliance.indicators.models import EncounterFact

    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(EncounterFact)) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--facts", type=int, default=5_000_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--rebuilds", type=int, default=3)
    parser.add_argument(
        "--reuse", action="store_true", help="skip the COPY when PostgreSQL has as many facts"
    )
    args = parser.parse_args()
    os.environ["MEDALLIANCE_DATABASE_URL"] = args.database_url
    os.environ.setdefault("MEDALLIANCE_ENVIRONMENT", "development")

    import duckdb
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from medalliance.config import REPO_ROOT
    from medalliance.db import make_engine
    from medalliance.indicators import facts, service
    from medalliance.indicators.enums import Level
    from medalliance.indicators.models import MeasureAggregate
    from medalliance.indicators.periods import Period
    from medalliance.indicators.repository import Scope

    engine = make_engine(args.database_url)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")

    out = Path(tempfile.mkdtemp(prefix="bench_indicators_"))
    con = duckdb.connect()
    started = time.perf_counter()
    generate(con, args.facts, out)
    print(
        f"generated {args.facts:,} encounter facts (+{args.facts // 40:,} referrals, "
        f"+{args.facts // 15:,} settlements) to Parquet in {time.perf_counter() - started:.1f}s"
    )
    started = time.perf_counter()
    if args.reuse and loaded_facts(engine) == args.facts:
        print("PostgreSQL already holds these facts (the generation is deterministic): reused")
    else:
        copy_to_postgres(con, args.database_url, out)
        print(f"COPY into PostgreSQL: {time.perf_counter() - started:.1f}s")

    # Alternated, so that a machine busy with something else slows both alike.
    rebuilds, duck = [], []
    for _ in range(args.rebuilds):
        with Session(engine) as db:
            started = time.perf_counter()
            rows = facts.rebuild_aggregates(db)
            db.commit()
            rebuilds.append(time.perf_counter() - started)
        duck.append(duckdb_aggregates(con, out))
    duck_best = min(d[0] for d in duck)
    print(
        f"PostgreSQL full rebuild: {rows:,} aggregate rows, best {min(rebuilds):.2f}s "
        f"(runs: {', '.join(f'{r:.2f}' for r in rebuilds)})"
    )
    print(
        f"DuckDB same aggregates from Parquet: best {duck_best:.2f}s "
        f"(runs: {', '.join(f'{d[0]:.2f}' for d in duck)}); "
        f"rebuild / DuckDB = {min(rebuilds) / duck_best:.1f}x (target <= 3x)"
    )

    with Session(engine) as db:
        pg_totals = dict(
            db.execute(
                select(MeasureAggregate.measure, func.sum(MeasureAggregate.n)).group_by(
                    MeasureAggregate.measure
                )
            ).all()
        )
    same = {k: int(v) for k, v in pg_totals.items()} == {k: v for k, v in duck[0][1].items() if v}
    print(f"same count per measure in PostgreSQL and DuckDB: {same}")

    period = Period.parse("2026-09")  # the last month of the generated year
    for label, scope in (
        ("consortium", Scope(Level.CONSORTIUM)),
        ("township", Scope(Level.TOWNSHIP, "510799103000")),
    ):
        timings = []
        for _ in range(args.queries):
            with Session(engine) as db:
                started = time.perf_counter()
                overview = service.overview(db, period, scope)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
        print(
            f"overview ({label}, {len(overview.rows)} indicators, 12-month trends): "
            f"p50 {statistics.median(timings):.0f} ms, p95 {p95:.0f} ms (target <= 500 ms)"
        )


if __name__ == "__main__":
    main()
