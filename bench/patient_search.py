"""FHIR Patient search latency through the app, on the master patient index of a county.

    .venv/bin/python bench/mpi_latency.py --database-url postgresql+psycopg://.../mpi_county
    MEDALLIANCE_DATABASE_URL=postgresql+psycopg://.../mpi_county \\
        .venv/bin/python bench/patient_search.py [--runs 7] [query ...]

The first command loads the demo ``county`` scale (a million residents) once. Each query
(default: names in characters and pinyin, a surname, a given name, a phone, a birth date)
runs ``--runs`` times as the county hospital's system; the first run is a warm-up. Prints
the total found and the p50/max of the rest, in ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from medalliance.app import create_app
from medalliance.db import get_sessionmaker
from medalliance.demo.loader import DEMO_PASSWORD
from medalliance.patients.models import Person


def default_queries() -> list[str]:
    """Searches for a real person of the index (one from its middle, not its first rows)."""
    with get_sessionmaker()() as db:
        live = select(Person).where(Person.merged_into_id.is_(None))
        count = db.scalar(select(func.count()).select_from(live.subquery())) or 0
        person = db.scalars(live.order_by(Person.id).offset(min(5000, count // 2))).first()
    assert person is not None, "load a demo consortium first"
    assert person.birth_date is not None
    name, pinyin = person.name, person.pinyin
    return [
        f"name={name}",
        f"name={name[:2]}",
        f"family={name[0]}",
        f"given={name[1:]}",
        f"name={pinyin.replace(' ', '%20')}",
        f"name={pinyin.replace(' ', '')[:-1]}",
        f"name:contains={name[1:]}",
        f"phone={person.phone}",
        f"birthdate={person.birth_date.isoformat()}",
        f"name={name}&birthdate={person.birth_date.year}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("queries", nargs="*")
    args = parser.parse_args()
    client = TestClient(create_app())
    token = client.post(
        "/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "county-his",
            "client_secret": DEMO_PASSWORD,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    print(f"{'query':44s} {'total':>8s} {'p50 ms':>8s} {'max ms':>8s}")
    for query in args.queries or default_queries():
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get(f"/fhir/Patient?{query}", headers=headers)
            times.append((time.perf_counter() - started) * 1000)
        total = (
            response.json().get("total") if response.status_code == 200 else response.status_code
        )
        rest = times[1:] or times
        print(f"{query:44s} {total!s:>8s} {statistics.median(rest):8.1f} {max(rest):8.1f}")


if __name__ == "__main__":
    main()
