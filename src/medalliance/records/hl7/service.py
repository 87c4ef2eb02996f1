"""Receiving one HL7 v2 message: the service behind ``POST /api/hl7v2`` and the MLLP listener.

One message, one savepoint: the received-message row (the idempotency key) is inserted
first, then the patient is registered through the MPI and the resources are written through
the shared record's service; any error rolls the savepoint back, so a refused message
leaves nothing but its audit row, and the caller's transaction commits the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medalliance.audit import service as audit
from medalliance.audit.enums import Outcome
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from medalliance.patients import service as patients
from medalliance.records import service as records
from medalliance.records.hl7 import ack as acks
from medalliance.records.hl7 import (
    adapters,
    datatypes,
    diagnoses,
    encounter,
    er7,
    patient,
    repository,
    results,
)
from medalliance.records.hl7 import systems as sids
from medalliance.records.hl7.enums import (
    PROCESSING_IDS,
    SUPPORTED_EVENTS,
    SUPPORTED_VERSIONS,
    AckCode,
    ErrorCode,
)
from medalliance.records.hl7.er7 import Hl7Error, Location, Message
from medalliance.records.hl7.models import ReceivedMessage
from medalliance.records.store import StoredResource
from medalliance.registry import service as registry
from medalliance.registry.repository import InstitutionFilter

ER7_MEDIA_TYPE = "x-application/hl7-v2+er7"
ACCEPTED_MEDIA_TYPES = frozenset({ER7_MEDIA_TYPE, "application/hl7-v2", "text/plain"})
# MPI fields (LocalRecordIn) back to the PID field they came from, for ERR-2.
_PID_FIELDS = {
    "mrn": 3,
    "id_number": 3,
    "name": 5,
    "birth_date": 7,
    "sex": 8,
    "address": 11,
    "phone": 13,
}


@dataclass(frozen=True)
class Received:
    """What the edge sends back: the ACK, and the HTTP status for ``POST /api/hl7v2``."""

    ack: acks.Ack
    status: int = 200
    duplicate: bool = False
    resources: list[str] = field(default_factory=list)
    patient_id: str | None = None


@dataclass(frozen=True)
class Header:
    facility: str
    control_id: str
    message_type: str
    trigger: str


def receive(db: Session, actor: Actor, body: bytes, *, now: datetime) -> Received:
    """Process one ER7 message sent by ``actor`` (a member system); never raises Hl7Error."""
    message: Message | None = None
    try:
        message = er7.parse(er7.decode(body))
        header = _header(message)
        _check_sender(db, actor, header.facility)
    except Hl7Error as exc:
        return _refused(db, actor, message or er7.readable(body), exc, now)
    digest = _digest(message)
    previous = repository.received(db, header.facility, header.control_id)
    if previous is not None:
        return _repeat(db, actor, message, previous, digest, now)
    try:
        return _accept(db, actor, message, header, digest, now)
    except IntegrityError:
        # A concurrent copy of this message committed first: answer as for a resend.
        previous = repository.received(db, header.facility, header.control_id)
        if previous is None:
            raise
        return _repeat(db, actor, message, previous, digest, now)
    except Hl7Error as exc:
        return _refused(db, actor, message, exc, now)
    except DomainError as exc:
        return _refused(db, actor, message, _from_domain(exc), now)


def receive_http(
    db: Session, actor: Actor, body: bytes, *, media_type: str, now: datetime
) -> Received:
    """``POST /api/hl7v2``: the body must be ER7 (or plain text) and within the size limit."""
    limit = get_settings().hl7_max_message_bytes
    problem = None
    if media_type not in ACCEPTED_MEDIA_TYPES:
        problem = f"content type {media_type or 'none'} is not ER7; send {ER7_MEDIA_TYPE}"
    elif len(body) > limit:
        problem = f"the message is larger than {limit} bytes"
    if problem is not None:
        error = Hl7Error(problem, code=ErrorCode.DATA_TYPE, ack=AckCode.REJECT)
        return _refused(db, actor, er7.readable(body), error, now)
    return receive(db, actor, body, now=now)


def receive_unauthenticated(db: Session, body: bytes, *, now: datetime) -> Received:
    """MLLP: the sending facility (MSH-4) names the member system the message is from."""
    message: Message | None = None
    try:
        message = er7.parse(er7.decode(body))
        actor = _system_for_facility(db, _facility(message))
    except Hl7Error as exc:
        return _refused(db, None, message or er7.readable(body), exc, now)
    return receive(db, actor, body, now=now)


def refuse_unauthenticated(
    db: Session, message: Message | None, error: Hl7Error, *, now: datetime
) -> Received:
    """MLLP: a message refused before it could be read (e.g. over the size limit), with its
    audit row like any other refusal; ``message`` is what of it could be read."""
    return _refused(db, None, message, error, now)


# --- checks -----------------------------------------------------------------------------


def _facility(message: Message) -> str:
    msh = message.msh
    facility = msh.get(4, 1) or msh.get(4, 2)
    if not facility:
        raise Hl7Error(
            "MSH-4 (sending facility) is required: it names the member that sent the message",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            ack=AckCode.REJECT,
            location=msh.at(4),
        )
    return facility


def _header(message: Message) -> Header:
    msh = message.msh
    facility = _facility(message)
    message_type, trigger = msh.get(9, 1).upper(), msh.get(9, 2).upper()
    if (message_type, trigger) not in SUPPORTED_EVENTS:
        known_type = any(t == message_type for t, _ in SUPPORTED_EVENTS)
        raise Hl7Error(
            f"{message_type}^{trigger} is not accepted (ADT^A01/A03/A04/A08 and ORU^R01 are)",
            code=ErrorCode.UNSUPPORTED_EVENT if known_type else ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
            ack=AckCode.REJECT,
            location=msh.at(9, 2 if known_type else None),
        )
    control_id = msh.get(10)
    if not control_id:
        raise Hl7Error(
            "MSH-10 (message control ID) is required",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            ack=AckCode.REJECT,
            location=msh.at(10),
        )
    if msh.get(11).upper() not in PROCESSING_IDS:
        raise Hl7Error(
            f"MSH-11 processing ID {msh.get(11) or 'empty'} is not accepted (P or D)",
            code=ErrorCode.UNSUPPORTED_PROCESSING_ID,
            ack=AckCode.REJECT,
            location=msh.at(11),
        )
    if msh.get(12) not in SUPPORTED_VERSIONS:
        raise Hl7Error(
            f"MSH-12 version {msh.get(12) or 'empty'} is not accepted (2.4, 2.5, 2.5.1)",
            code=ErrorCode.UNSUPPORTED_VERSION,
            ack=AckCode.REJECT,
            location=msh.at(12),
        )
    return Header(facility, control_id, f"{message_type}^{trigger}", trigger)


def _check_sender(db: Session, actor: Actor, facility: str) -> None:
    """MSH-4 must name the caller's own institution (its id or registry code), or be a
    facility name configured for this very member system."""
    if actor.client_id and get_settings().hl7_mllp_systems.get(facility) == actor.client_id:
        return
    own = registry.get_institution(db, actor.institution_id) if actor.institution_id else None
    if own is None or facility not in (own.id, own.code):
        raise Hl7Error(
            f"sending facility {facility} is not the institution of this member system "
            f"({actor.institution_id})",
            code=ErrorCode.UNKNOWN_KEY,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 4),
            status=403,
        )


def _system_for_facility(db: Session, facility: str) -> Actor:
    """Configured map (MSH-4 → client id) first, else the institution's only member system."""
    configured = get_settings().hl7_mllp_systems.get(facility)
    actor = adapters.system_by_client_id(db, configured) if configured else None
    if actor is None and not configured:
        institution = _institution_named(db, facility)
        actor = adapters.only_system_of(db, institution) if institution else None
    if actor is None:
        raise Hl7Error(
            f"sending facility {facility} is not mapped to a registered member system",
            code=ErrorCode.UNKNOWN_KEY,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 4),
            status=403,
        )
    return actor


def _institution_named(db: Session, facility: str) -> str | None:
    try:
        return registry.get_institution(db, facility).id
    except NotFound:
        found, _ = registry.find_institutions(
            db, InstitutionFilter(codes=(facility,)), limit=2, offset=0
        )
        return found[0].id if len(found) == 1 else None


def _digest(message: Message) -> str:
    """The message without MSH-7, so a resend with a fresh timestamp is still the same."""
    msh = message.msh
    fields = [*msh.fields[2:7], *msh.fields[8:]]
    rest = [message.delimiters.field.join(s.fields) for s in message.segments[1:]]
    return hashlib.sha256("\r".join([*fields, *rest]).encode()).hexdigest()


# --- outcomes ---------------------------------------------------------------------------


def _accept(
    db: Session, actor: Actor, message: Message, header: Header, digest: str, now: datetime
) -> Received:
    with db.begin_nested():
        row = ReceivedMessage(
            sending_facility=header.facility,
            control_id=header.control_id,
            sending_application=message.msh.get(3),
            message_type=header.message_type,
            institution_id=actor.institution_id or "",
            client_id=actor.client_id,
            digest=digest,
            received_at=now,
            ack_code=AckCode.ACCEPT.value,
            ack="",
            resources=[],
            raw=message.raw,
        )
        db.add(row)
        db.flush()  # the unique key is claimed before anything else is written
        patient_id, written = _apply(db, actor, message, header.trigger, now)
        accepted = acks.build(message, AckCode.ACCEPT, now)
        row.ack, row.patient_id = accepted.text, patient_id
        row.resources = [w.reference for w in written]
        db.flush()
    _audit(db, actor, header, AckCode.ACCEPT, patient_id, {"resources": row.resources})
    return Received(accepted, 200, False, row.resources, patient_id)


def _repeat(
    db: Session,
    actor: Actor,
    message: Message,
    previous: ReceivedMessage,
    digest: str,
    now: datetime,
) -> Received:
    if previous.digest != digest:
        error = Hl7Error(
            f"message control ID {previous.control_id} was already used by "
            f"{previous.sending_facility} for a different message",
            code=ErrorCode.DUPLICATE_KEY,
            ack=AckCode.REJECT,
            location=Location("MSH", 1, 10),
        )
        return _refused(db, actor, message, error, now)
    header = _header(message)
    _audit(db, actor, header, AckCode(previous.ack_code), previous.patient_id, {"duplicate": True})
    ack = acks.Ack(AckCode(previous.ack_code), previous.ack, codec=message.delimiters.codec)
    return Received(ack, 200, True, list(previous.resources), previous.patient_id)


def _refused(
    db: Session, actor: Actor | None, message: Message | None, error: Hl7Error, now: datetime
) -> Received:
    refusal = acks.build(message, error.ack, now, error=error)
    msh = message.msh if message else None
    audit.record(
        db,
        actor,
        "hl7.receive",
        outcome=Outcome.FAILURE,
        resource_type="MessageHeader",
        resource_id=msh.get(10)[:64] if msh else None,
        detail={
            "facility": msh.get(4) if msh else None,
            "type": f"{msh.get(9, 1)}^{msh.get(9, 2)}" if msh else None,
            "ack": error.ack.value,
            "error": error.code.value,
            "location": str(error.location) if error.location else None,
            "reason": error.message,
        },
    )
    status = error.status or (400 if error.ack == AckCode.REJECT else 422)
    return Received(refusal, status)


def _audit(
    db: Session,
    actor: Actor,
    header: Header,
    code: AckCode,
    patient_id: str | None,
    detail: dict[str, Any],
) -> None:
    audit.record(
        db,
        actor,
        "hl7.receive",
        resource_type="MessageHeader",
        resource_id=header.control_id[:64],
        patient_id=patient_id,
        detail={"facility": header.facility, "type": header.message_type, "ack": code.value}
        | detail,
    )


def _from_domain(exc: DomainError, *, at: Location | None = None) -> Hl7Error:
    """Refusals of the MPI or the shared record, told in HL7 terms; ``at`` is where the
    refused content came from, when the caller knows (else a PID field the MPI named)."""
    number = _PID_FIELDS.get(exc.field or "")
    location = at or (Location("PID", 1, number) if number else None)
    if isinstance(exc, Forbidden):
        return Hl7Error(exc.message, code=ErrorCode.INTERNAL, ack=AckCode.REJECT, status=403)
    if isinstance(exc, Conflict):
        return Hl7Error(exc.message, code=ErrorCode.DUPLICATE_KEY, location=location)
    if isinstance(exc, ValidationFailed) or exc.status in (400, 422):
        return Hl7Error(exc.message, code=ErrorCode.DATA_TYPE, location=location)
    return Hl7Error(exc.message, code=ErrorCode.INTERNAL, location=location)


# --- mapping into the record ------------------------------------------------------------


def _apply(
    db: Session, actor: Actor, message: Message, trigger: str, now: datetime
) -> tuple[str, list[StoredResource]]:
    institution_id = actor.institution_id or ""
    if trigger == "R01":
        return _apply_results(db, actor, message, institution_id, now)
    pid = message.require_segment("PID", "patient identification")
    # A08 is the member changing its record: the MPI takes the new demographics, unless a
    # later update of theirs came first. Other events only name the patient they are about.
    recorded_at = _recorded_at(message) if trigger == "A08" else None
    record = patient.local_record(pid, institution_id, recorded_at)
    register = patients.update_local_record if trigger == "A08" else patients.register_local_record
    registration = register(db, actor, record)
    person_id = registration.person.id
    if registration.superseded:
        return person_id, []  # its visit is as old as its demographics: the newer one stands
    writer = _Writer(db, actor, now)
    _visit(writer, message, trigger, person_id, institution_id)
    return person_id, writer.written


def _apply_results(
    db: Session, actor: Actor, message: Message, institution_id: str, now: datetime
) -> tuple[str, list[StoredResource]]:
    """Each patient's results under that patient (a laboratory sends a batch of patients
    in one ORU^R01); the first patient is the one the message is logged under."""
    writer = _Writer(db, actor, now)
    persons: list[str] = []
    for part in _patient_results(message):
        record = patient.local_record(part.segments[1], institution_id)
        person_id = patients.register_local_record(db, actor, record).person.id
        _results(writer, part, person_id, institution_id)
        persons.append(person_id)
    return persons[0], writer.written


def _patient_results(message: Message) -> list[Message]:
    """The PATIENT_RESULT groups of an ORU^R01 (v2.5.1 7.3.1): each PID with the visit and
    orders after it, up to the next PID, as a message of its own (MSH kept for the ACK's
    and the encoding's sake). Orders before any PID belong to no patient: refused."""
    message.require_segment("PID", "patient identification")
    segments = message.segments
    starts = [n for n, segment in enumerate(segments) if segment.id == "PID"]
    stray = next((s for s in segments[: starts[0]] if s.id in ("ORC", "OBR", "OBX")), None)
    if stray is not None:
        raise Hl7Error(
            f"{stray.id} before any PID: results belong to a patient (PID)",
            code=ErrorCode.SEGMENT_SEQUENCE,
            location=stray.at(1),
        )
    ends = [*starts[1:], len(segments)]
    return [
        Message([message.msh, *segments[start:end]], message.delimiters, message.raw)
        for start, end in zip(starts, ends, strict=True)
    ]


def _recorded_at(message: Message) -> datetime | None:
    """When the member recorded the event (EVN-2, to the minute at least): what orders a
    member's updates of one patient when they arrive out of order. Not MSH-7: an engine
    stamps it again when it resends. None when EVN-2 is absent or only a date."""
    evn = message.first("EVN")
    if evn is None or not evn.get(2):
        return None
    recorded = datatypes.fhir_datetime(evn.get(2), evn.at(2), "recorded date/time")
    return datetime.fromisoformat(recorded) if recorded and "T" in recorded else None


def _token(system: str, value: str) -> str:
    """A FHIR token search value: in the code, \\ , | and $ are escaped with a backslash
    (an order number "12,3" would otherwise be two values, OR-ed)."""
    escaped = value.replace("\\", "\\\\")
    for char in ",|$":
        escaped = escaped.replace(char, "\\" + char)
    return f"{system}|{escaped}"


class _Writer:
    """Creates or updates resources by their member-scoped identifier."""

    def __init__(self, db: Session, actor: Actor, now: datetime) -> None:
        self.db, self.actor, self.now = db, actor, now
        self.written: list[StoredResource] = []

    def find(self, resource_type: str, system: str, value: str) -> StoredResource | None:
        criteria = [("identifier", _token(system, value))]
        found = records.search(self.db, self.actor, resource_type, criteria, now=self.now)
        return found.matches[0] if found.matches else None

    def claim(
        self, resource_type: str, system: str, value: str, person_id: str, location: Location
    ) -> StoredResource | None:
        """The member's resource with this identifier, if any; one that belongs to another
        patient is an AE (the member reused a visit or order number), never moved over."""
        existing = self.find(resource_type, system, value)
        if existing is None or existing.patient_id in (None, person_id):
            return existing
        if patients.resolve_person_id(self.db, existing.patient_id) == person_id:
            return existing  # recorded under a person since merged into this one
        raise Hl7Error(
            f"{location} {value} already identifies a {resource_type} of another patient at "
            "this member; a visit or order number cannot move to a different patient",
            code=ErrorCode.DUPLICATE_KEY,
            location=location,
        )

    def upsert(
        self, resource: dict[str, Any], existing: StoredResource | None = None
    ) -> StoredResource:
        """``existing``: the resource ``claim`` found for this identifier, updated by its id
        rather than searched for again."""
        resource_type = resource["resourceType"]
        if existing is not None:
            stored = records.update(
                self.db,
                self.actor,
                resource_type,
                existing.id,
                {**resource, "id": existing.id},
                now=self.now,
            )
        else:
            identifier = resource["identifier"][0]
            token = _token(identifier["system"], identifier["value"])
            condition = urlencode([("identifier", token)])
            stored = records.conditional_update(
                self.db, self.actor, resource_type, condition, resource, now=self.now
            )
        self.written.append(stored)
        return stored


def _visit(
    writer: _Writer, message: Message, trigger: str, person_id: str, institution_id: str
) -> None:
    pv1 = message.require_segment("PV1", "patient visit")
    number = pv1.require(19, what="visit number")
    stored = _encounter(
        writer, message, pv1, trigger, number, person_id, institution_id, pv1.at(19)
    )
    for dg1 in message.all("DG1"):
        _, condition = diagnoses.condition(
            dg1,
            visit=number,
            patient_id=person_id,
            institution_id=institution_id,
            encounter_ref=stored.reference,
        )
        writer.upsert(condition)


def _encounter(
    writer: _Writer,
    message: Message,
    pv1: er7.Segment,
    trigger: str,
    number: str,
    person_id: str,
    institution_id: str,
    location: Location,
) -> StoredResource:
    existing = writer.claim("Encounter", sids.visit(institution_id), number, person_id, location)
    # An A03 for a visit never seen here (admitted before the interface went live, or its
    # A01 lost) records the finished stay: refused, the discharge would be lost, as most
    # engines do not resend an AE.
    visit = encounter.visit_from(message, pv1, trigger, number)
    resource = encounter.encounter(
        visit,
        trigger,
        patient_id=person_id,
        institution_id=institution_id,
        existing=existing.content if existing else None,
    )
    return writer.upsert(resource, existing)


def _results(writer: _Writer, message: Message, person_id: str, institution_id: str) -> None:
    """Each order: its visit's Encounter (PV1-19, else one for the order), results, report."""
    pv1 = message.first("PV1")
    for group in results.order_groups(message):
        order = results.order_number(group)
        # The report, and the results keyed by its order number, must be this patient's.
        report = writer.claim(
            "DiagnosticReport", sids.order(institution_id), order, person_id, group.obr.at(3)
        )
        if pv1 is not None and pv1.get(19):
            number, visit_segment, key = pv1.get(19), pv1, pv1.at(19)
        else:
            # No visit number: the order itself is the (outpatient) visit, begun and ended
            # when the specimen was taken, so that the member's results have an encounter.
            number, visit_segment = f"order-{order}", _order_visit(group, message)
            key = group.obr.at(3)
        enc = _encounter(
            writer, message, visit_segment, "R01", number, person_id, institution_id, key
        )
        ctx = results.Context(
            person_id, institution_id, enc.reference, order, results.is_imaging(group)
        )
        refs, statuses = [], []
        for obx in group.obx:
            _, observation = results.observation(obx, group, ctx)
            stored = _upsert_from(writer, observation, obx)
            refs.append(stored.reference)
            statuses.append(observation["status"])
        _upsert_from(writer, results.report(group, ctx, refs, statuses), group.obr, report)


def _upsert_from(
    writer: _Writer,
    resource: dict[str, Any],
    segment: er7.Segment,
    existing: StoredResource | None = None,
) -> StoredResource:
    """Write a resource made from this segment; a refusal (e.g. by the FHIR validator)
    names the segment and, where known, the field (ERR-2)."""
    try:
        return writer.upsert(resource, existing)
    except DomainError as exc:
        raise _from_domain(exc, at=results.source_of(exc.field, segment)) from None


def _order_visit(group: results.OrderGroup, message: Message) -> er7.Segment:
    fields = ["PV1", "1", "O", *([""] * 41), group.obr.raw(7), group.obr.raw(7)]
    return er7.Segment("PV1", fields, 1, message.delimiters)
