"""Writes that meet on PostgreSQL (threads, real commits): two updates with the same
If-Match version (one wins, the other gets 412), conditional writes whose match changes
while they wait, and a DELETE racing a write that adds a reference to what it deletes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from conftest import PG_URL, side_database
from medalliance.db import unit_of_work
from medalliance.demo.loader import Scale, load
from medalliance.errors import DomainError, PreconditionFailed
from medalliance.records import repository, service
from medalliance.records.store import StoredResource
from medalliance.referrals import service as referrals
from records.factories import COUNTY_HIS, admitted, encounter, observation
from referrals.factories import PATIENT, actor, consent, form

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
P = "p00000006"


@pytest.fixture(scope="module")
def own_engine() -> Iterator[Engine]:
    engine = side_database("concurrency")
    with unit_of_work(
        __import__("sqlalchemy.orm", fromlist=["sessionmaker"]).sessionmaker(engine)
    ) as db:
        load(db, scale=Scale.SMALL, seed=1)
    yield engine
    engine.dispose()


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_two_updates_with_the_same_version_one_wins_one_412(own_engine: Engine) -> None:
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(own_engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        admitted(db, P, NOW)
        created = service.create(db, COUNTY_HIS, observation(P), now=NOW)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def writer(status: str) -> None:
        barrier.wait()
        try:
            with unit_of_work(factory) as db:
                content = {**created.content, "status": status}
                service.update(
                    db, COUNTY_HIS, "Observation", created.id, content, now=NOW, if_match='W/"1"'
                )
            outcomes.append("200")
        except PreconditionFailed:
            outcomes.append("412")

    threads = [threading.Thread(target=writer, args=(s,)) for s in ("amended", "corrected")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["200", "412"]
    with unit_of_work(factory) as db:
        assert service.read(db, COUNTY_HIS, "Observation", created.id, now=NOW).version == 2


def _relabelled_while_written(
    own_engine: Engine, old: str, new: str, write: Callable[[Session], Any]
) -> tuple[StoredResource, StoredResource]:
    """An Observation identified ``old``, relabelled ``new`` by an update that holds its
    row while ``write`` (a conditional write by ``old``) has found it and waits for the
    lock. The Observation as created, and as it is after both."""
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(own_engine, expire_on_commit=False)
    tagged = {**observation(P), "identifier": [{"system": "urn:test", "value": old}]}
    with unit_of_work(factory) as db:
        admitted(db, P, NOW)
        created = service.create(db, COUNTY_HIS, tagged, now=NOW)
    locked, done = threading.Event(), threading.Event()

    def relabel() -> None:
        with unit_of_work(factory) as db:
            content = {**created.content, "identifier": [{"system": "urn:test", "value": new}]}
            service.update(db, COUNTY_HIS, "Observation", created.id, content, now=NOW)
            locked.set()
            done.wait(timeout=0.5)  # the conditional write has matched and waits

    def conditional_write() -> None:
        locked.wait()
        with unit_of_work(factory) as db:
            write(db)

    threads = [threading.Thread(target=relabel), threading.Thread(target=conditional_write)]
    for t in threads:
        t.start()
    threads[1].join(timeout=0.2)
    done.set()
    for t in threads:
        t.join()
    with unit_of_work(factory) as db:
        return created, service.read(db, COUNTY_HIS, "Observation", created.id, now=NOW)


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_a_conditional_delete_spares_what_stopped_matching_while_it_waited(
    own_engine: Engine,
) -> None:
    def delete(db: Session) -> None:
        condition = "identifier=urn:test|race-1"
        service.conditional_delete(db, COUNTY_HIS, "Observation", condition, now=NOW)

    _, kept = _relabelled_while_written(own_engine, "race-1", "r-2", delete)
    assert kept.content["identifier"][0]["value"] == "r-2"


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_a_conditional_update_spares_what_stopped_matching_while_it_waited(
    own_engine: Engine,
) -> None:
    written: list[str] = []
    body = {**observation(P), "identifier": [{"system": "urn:test", "value": "race-u1"}]}

    def conditional_update(db: Session) -> None:
        condition = "identifier=urn:test|race-u1"
        stored = service.conditional_update(db, COUNTY_HIS, "Observation", condition, body, now=NOW)
        written.append(stored.id)

    created, kept = _relabelled_while_written(own_engine, "race-u1", "u-2", conditional_update)
    assert kept.content["identifier"][0]["value"] == "u-2"
    # Nothing matched any longer: the conditional update created its own resource (R4).
    assert len(written) == 1
    assert written[0] != created.id


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_two_conditional_creates_of_one_criteria_at_once_make_one_resource(
    own_engine: Engine,
) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import sessionmaker

    from medalliance.records.models import TokenIndex

    factory = sessionmaker(own_engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        admitted(db, P, NOW)
    tagged = {**observation(P), "identifier": [{"system": "urn:test", "value": "twice-1"}]}
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        with unit_of_work(factory) as db:
            service.create(
                db, COUNTY_HIS, tagged, now=NOW, if_none_exist="identifier=urn:test|twice-1"
            )

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with unit_of_work(factory) as db:
        same = (TokenIndex.name == "identifier", TokenIndex.code == "twice-1")
        stored = db.scalar(select(func.count()).where(*same))
    assert stored == 1


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_two_a08s_at_once_for_a_record_the_index_lacks_keep_the_newer_one(
    own_engine: Engine,
) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from medalliance.patients.models import LocalRecord
    from medalliance.records.hl7 import service as hl7
    from records.hl7.hl7_samples import adt, pid

    factory = sessionmaker(own_engine, expire_on_commit=False)
    barrier = threading.Barrier(2)
    acks: list[str] = []
    # Two names that do not sound alike, so the MPI's per-name lock does not queue them:
    # the clerk corrected the given name between the two.
    updates = (
        ("A08-RACE-1", "赵^晓明", "20261105100000"),
        ("A08-RACE-2", "赵^晓敏", "20261105101500"),
    )

    def send(control: str, name: str, recorded: str) -> None:
        patient = pid(mrn="RACE-0001", id_number="", name=name, birth_date="19800101")
        message = adt("A08", control, visit=f"V-{control}", patient=patient, recorded=recorded)
        barrier.wait()
        with unit_of_work(factory) as db:
            acks.append(hl7.receive(db, COUNTY_HIS, message, now=NOW).ack.code.value)

    threads = [threading.Thread(target=send, args=update) for update in updates]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acks == ["AA", "AA"]
    with unit_of_work(factory) as db:
        record = db.scalars(select(LocalRecord).where(LocalRecord.mrn == "RACE-0001")).one()
        assert record.name == "赵晓敏"  # the 10:15 one, whichever committed first


# How long a thread that should be blocked on a row lock is given to show it is not.
_BLOCKED_FOR = 0.5


def _delete_racing_a_reference(own_engine: Engine, first: str, write: str) -> dict[str, str]:
    """A DELETE of a visit and a ``write`` ("create" or "update") of an Observation that
    adds a reference to it (see ``_race``)."""
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(own_engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        admitted(db, P, NOW)  # the care relationship both writes need
        visit = service.create(db, COUNTY_HIS, encounter(P), now=NOW).id
        earlier = service.create(db, COUNTY_HIS, observation(P), now=NOW)

    def delete(db: Session) -> None:
        service.delete(db, COUNTY_HIS, "Encounter", visit, now=NOW)

    def refer(db: Session) -> None:
        if write == "create":
            service.create(db, COUNTY_HIS, observation(P, visit), now=NOW)
            return
        content = {**earlier.content, "encounter": {"reference": f"Encounter/{visit}"}}
        service.update(db, COUNTY_HIS, "Observation", earlier.id, content, now=NOW)

    outcomes = _race(factory, first, {"delete": delete, write: refer})
    _assert_no_live_reference_to_a_deleted_visit(factory, visit)
    return outcomes


def _race(factory: Any, first: str, steps: dict[str, Callable[[Session], None]]) -> dict[str, str]:
    """Two steps, each in its own transaction: ``first`` holds its transaction open (done,
    not committed) while the other starts, then commits. Each one's outcome ("ok", or the
    status of the domain error it raised)."""
    outcomes: dict[str, str] = {}
    started, release = threading.Event(), threading.Event()

    def run(name: str, step: Callable[[Session], None], holds: bool) -> None:
        if not holds:
            started.wait(timeout=10)
        try:
            with unit_of_work(factory) as db:
                step(db)
                if holds:
                    started.set()
                    release.wait(timeout=10)
            outcomes[name] = "ok"
        except DomainError as exc:
            outcomes[name] = str(exc.status)
        finally:
            started.set()

    threads = {
        name: threading.Thread(target=run, args=(name, step, name == first))
        for name, step in steps.items()
    }
    for t in threads.values():
        t.start()
    second = next(name for name in threads if name != first)
    threads[second].join(timeout=_BLOCKED_FOR)  # blocked on the first's lock, or done
    release.set()
    for t in threads.values():
        t.join(timeout=10)
        assert not t.is_alive()
    return outcomes


def _assert_no_live_reference_to_a_deleted_visit(factory: Any, visit: str) -> None:
    with unit_of_work(factory) as db:
        row = repository.current(db, "Encounter", visit)
        assert row is not None
        if row.deleted:
            referrers = repository.referrer_counts(
                db, "Encounter", visit, patient_id=row.patient_id, other_than=row.pid
            )
            assert referrers == []


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
@pytest.mark.parametrize("write", ["create", "update"])
class TestADeleteRacingAWriteReferringToIt:
    """Without a lock between them, the DELETE found no referrer (the write was not
    committed) and the write did not see the deletion: both succeeded, leaving a live
    result pointing at a deleted visit."""

    def test_a_write_first_makes_the_delete_wait_and_then_refuse(
        self, own_engine: Engine, write: str
    ) -> None:
        outcomes = _delete_racing_a_reference(own_engine, write, write)
        assert outcomes == {write: "ok", "delete": "409"}

    def test_a_delete_first_makes_the_write_wait_and_then_refuse(
        self, own_engine: Engine, write: str
    ) -> None:
        outcomes = _delete_racing_a_reference(own_engine, "delete", write)
        assert outcomes == {"delete": "ok", write: "409"}


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
def test_an_update_of_a_visit_does_not_wait_for_a_write_referring_to_it(
    own_engine: Engine,
) -> None:
    """The write holds the visit FOR KEY SHARE, which only a DELETE's FOR UPDATE waits
    for: an update (FOR NO KEY UPDATE) goes on."""
    from sqlalchemy import text
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(own_engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        admitted(db, P, NOW)
        visit = service.create(db, COUNTY_HIS, encounter(P), now=NOW)
    holding, release = threading.Event(), threading.Event()

    def refer() -> None:
        with unit_of_work(factory) as db:
            service.create(db, COUNTY_HIS, observation(P, visit.id), now=NOW)
            holding.set()
            release.wait(timeout=10)

    referrer = threading.Thread(target=refer)
    referrer.start()
    try:
        assert holding.wait(timeout=10)
        with unit_of_work(factory) as db:
            db.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting fails the test
            content = {**visit.content, "status": "cancelled"}
            service.update(db, COUNTY_HIS, "Encounter", visit.id, content, now=NOW)
    finally:
        release.set()
        referrer.join(timeout=10)


@pytest.mark.skipif(not PG_URL, reason="needs MEDALLIANCE_TEST_DATABASE_URL")
@pytest.mark.parametrize("first", ["referral", "delete"])
def test_a_referral_attaching_a_document_and_a_delete_of_it_do_not_both_succeed(
    own_engine: Engine, first: str
) -> None:
    """A DELETE refuses to remove a document a referral carries; without a lock the
    referral found it live and the DELETE found no referral, and both succeeded: the
    receiving hospital was sent a deleted document."""
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(own_engine, expire_on_commit=False)
    with unit_of_work(factory) as db:
        consent(db)  # the referring doctor reads the county hospital's document
        admitted(db, PATIENT, NOW)
        document = service.create(db, COUNTY_HIS, _note(PATIENT), now=NOW).id
        doctor = actor(db, "doctor")

    def refer(db: Session) -> None:
        attached = form(attachments=[f"DocumentReference/{document}"])
        referrals.create(db, doctor, attached, now=NOW)

    def delete(db: Session) -> None:
        service.delete(db, COUNTY_HIS, "DocumentReference", document, now=NOW)

    outcomes = _race(factory, first, {"referral": refer, "delete": delete})
    expected = {"referral": "ok", "delete": "409"}  # the DELETE saw the referral
    if first == "delete":
        expected = {"delete": "ok", "referral": "422"}  # the referral saw the deletion
    assert outcomes == expected


def _note(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"text": "门诊病历"},
        "subject": {"reference": f"Patient/{patient}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "5aS05pmV"}}],
    }
