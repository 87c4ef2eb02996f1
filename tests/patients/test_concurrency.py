"""Two members registering the same new person at the same moment end with one person
(PostgreSQL, two threads, real commits)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from conftest import PG_URL, side_database
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.db import unit_of_work
from medalliance.demo.loader import Scale, load
from medalliance.patients import service
from medalliance.patients.models import Person
from medalliance.patients.schemas import LocalRecordIn
from patients.factories import record

pytestmark = pytest.mark.postgres


def _own_engine() -> Engine:
    """A database of its own: resetting the shared test database would pull it from under
    the session fixtures."""
    engine = side_database("concurrency")
    return engine


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
@pytest.mark.parametrize("with_id", [True, False])
def test_concurrent_registration_of_one_new_person_creates_one_person(
    with_id: bool,
) -> None:
    engine = _own_engine()
    try:
        from sqlalchemy.orm import sessionmaker

        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with unit_of_work(factory) as db:
            load(db, scale=Scale.SMALL, seed=1)
        barrier = threading.Barrier(2)
        results: list[str] = []
        errors: list[BaseException] = []

        def register(member: str, mrn: str) -> None:
            actor = Actor(user_id=None, username=member, role=Role.SYSTEM, institution_id=member)
            payload = record(mrn=mrn, id_number=None if not with_id else record()["id_number"])
            try:
                barrier.wait()
                with unit_of_work(factory) as db:
                    result = service.register_local_record(db, actor, LocalRecordIn(**payload))
                    results.append(result.person.id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [
            threading.Thread(target=register, args=("county-hospital", "ZY-1")),
            threading.Thread(target=register, args=("township-02", "WS-1")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(set(results)) == 1
        with Session(engine) as db:
            count = db.scalar(
                select(func.count()).select_from(Person).where(Person.name == "覃梓睿")
            )
            assert count == 1
    finally:
        engine.dispose()
