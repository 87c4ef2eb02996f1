"""Transaction-bundle ingest through the store (validation, reference resolution, index
extraction, history, audit), beside a raw PostgreSQL COPY of the same JSON in the same run.

    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_fhir \
        .venv/bin/python bench/fhir_ingest.py --resources 1000000

Needs the demo consortium loaded (patients are MPI persons). Each bundle is one visit of one
person: an Encounter by the county hospital's own system plus its clinical resources.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.db import get_engine, unit_of_work
from medalliance.records import service

HIS = Actor(None, "county-his", Role.SYSTEM, "county-hospital", client_id="county-his")
LOINC = (("8867-4", "/min"), ("8480-6", "mm[Hg]"), ("8462-4", "mm[Hg]"), ("29463-7", "kg"))


def visit(person: str, observations: int) -> dict[str, Any]:
    enc_url = f"urn:uuid:{uuid.uuid4()}"
    subject = {"reference": f"Patient/{person}"}
    day = f"2026-{random.randint(1, 10):02d}-{random.randint(1, 28):02d}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": enc_url,
            "resource": {
                "resourceType": "Encounter",
                "status": "finished",
                "subject": subject,
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceProvider": {"reference": "Organization/county-hospital"},
                "period": {"start": f"{day}T08:00:00Z", "end": f"{day}T08:30:00Z"},
            },
            "request": {"method": "POST", "url": "Encounter"},
        }
    ]
    for i in range(observations):
        code, unit = LOINC[i % len(LOINC)]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "encounter": {"reference": enc_url},
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "effectiveDateTime": f"{day}T08:{i % 60:02d}:00Z",
                    "valueQuantity": {
                        "value": random.randint(40, 200),
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def ingest(total: int, per_bundle: int, patients: int) -> tuple[float, list[str]]:
    loaded, seconds, sample = 0, 0.0, []
    while loaded < total:
        bundles = [visit(f"p{random.randint(1, patients):08d}", per_bundle - 1) for _ in range(10)]
        started = time.perf_counter()
        with unit_of_work() as db:
            for bundle in bundles:
                service.transaction(db, HIS, bundle, now=datetime.now(UTC))
        seconds += time.perf_counter() - started
        loaded += sum(len(b["entry"]) for b in bundles)
        if len(sample) < 20_000:
            sample += [json.dumps(e["resource"]) for b in bundles for e in b["entry"]]
    return loaded / seconds, sample


def raw_copy(sample: list[str]) -> float:
    engine = get_engine()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cur = raw.cursor()
        cur.execute("CREATE TEMP TABLE raw_fhir (id bigserial, content jsonb)")
        started = time.perf_counter()
        with cur.copy("COPY raw_fhir (content) FROM STDIN") as copy:
            for doc in sample:
                copy.write_row((doc,))
        raw.commit()
        return len(sample) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description="FHIR transaction ingest vs raw COPY")
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--bundle-size", type=int, default=100)
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args()
    rate, sample = ingest(args.resources, args.bundle_size, args.patients)
    copy_rate = raw_copy(sample)
    with get_engine().connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM fhir_resource")).scalar()
    print(
        f"store:    {rate:9.0f} resources/s  "
        f"(transaction bundles of {args.bundle_size}, {stored} stored)"
    )
    print(
        f"raw COPY: {copy_rate:9.0f} resources/s  "
        f"(same JSON, {len(sample)} docs, jsonb, no indexes)"
    )


if __name__ == "__main__":
    main()
