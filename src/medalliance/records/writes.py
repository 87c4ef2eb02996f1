"""The write pipeline shared by single interactions and bundles:
prepare (validate, index, resolve the patient) → authorise → persist → audit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.audit import service as audit
from medalliance.audit.enums import AccessBasis
from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor
from medalliance.errors import Conflict, DomainError, Forbidden, ValidationFailed
from medalliance.kit.ids import new_id
from medalliance.records import links, repository, store
from medalliance.records.indexing import Reference, build_index, references
from medalliance.records.searchparams import params_for
from medalliance.records.store import CREATES, Prepared, StoredResource
from medalliance.records.validation import validate
from medalliance.registry import service as registry

# References naming an entry of a Bundle (its fullUrl), never a stored resource.
BUNDLE_LOCAL: Final = ("urn:uuid:", "urn:oid:")


class MethodNotAllowed(DomainError):
    status = 405
    code = "not-supported"


@dataclass
class WriteContext:
    """Per request (or bundle): access decisions are taken once per patient."""

    actor: Actor
    now: datetime
    bases: dict[str, AccessBasis] = field(default_factory=dict)
    persons: dict[str, str | None] = field(default_factory=dict)  # Patient id -> MPI id
    # MPI id -> whether the actor's institution has a live care relationship with them,
    # learnt while resolving the patient (absent: not asked).
    related: dict[str, bool] = field(default_factory=dict)

    def knows(self, person_id: str, *, related: bool) -> None:
        """A golden MPI id read from a stored row (merges re-key rows, so it is nobody's
        merged id), with its relationship to the actor's institution: a write naming it
        needs no lookup."""
        self.persons.setdefault(person_id, person_id)
        self.related.setdefault(person_id, related)

    def person(self, db: Session, patient_id: str) -> str | None:
        if patient_id not in self.persons:
            institution = self.actor.institution_id or ""
            person, related = links.person_and_relationship(db, patient_id, institution, self.now)
            self.persons[patient_id] = person
            if person is not None and related is not None:
                self.related[person] = related
        return self.persons[patient_id]


# R4 types no clinical record holds: they speak of a request or of the server.
NOT_STORED: Final = {
    "Parameters": "it carries an operation's input or output (R4: no RESTful endpoint)",
    "OperationOutcome": "it tells the outcome of a request",
    "CapabilityStatement": "it describes a server (this one's is GET /fhir/metadata)",
}
# The Bundles a record keeps: self-contained collections (a clinical document, a message,
# a collection). The other kinds are requests to process, or answers.
STORED_BUNDLES: Final = ("document", "message", "collection")


def refuse_foreign_type(resource_type: str) -> None:
    home = links.HOMES.get(resource_type)
    if home is not None:
        raise MethodNotAllowed(
            f"{resource_type} is not written to the shared record; it lives in {home}",
            field=resource_type,
        )
    why = NOT_STORED.get(resource_type)
    if why is not None:
        raise MethodNotAllowed(f"{resource_type} is not stored here: {why}", field=resource_type)


def _refuse_unstored_bundle(resource: dict[str, Any]) -> None:
    kind = resource.get("type")
    if resource["resourceType"] != "Bundle" or kind in STORED_BUNDLES:
        return
    instead = "POST it to /fhir to have it processed"
    if kind not in ("transaction", "batch"):
        instead = "it answers a request"
    raise ValidationFailed(
        f"a {kind} Bundle is not stored (a document, message or collection is): {instead}",
        field="Bundle.type",
    )


def _body_type(resource: Any) -> str:
    return str(resource.get("resourceType", "")) if isinstance(resource, dict) else ""


def prepare(
    db: Session,
    ctx: WriteContext,
    resource: Any,
    *,
    method: str,
    expected_type: str | None = None,
    current: StoredResource | None = None,
    resource_id: str | None = None,
) -> Prepared:
    # A type the URL names is refused whatever the body holds; validation then makes the
    # body's type that one.
    refuse_foreign_type(expected_type or _body_type(resource))
    resource = dict(validate(resource, expected_type=expected_type))
    _refuse_unstored_bundle(resource)
    found = references(resource, resource["resourceType"])
    refuse_bundle_local(found)
    if method == "create":
        resource["id"] = resource_id or new_id()  # POST ignores a client id (R4 3.1.0.1)
    version = current.version + 1 if current else 1
    store.stamp(resource, version, ctx.now)
    index = build_index(resource, found)
    patient_id = patient_of(db, ctx, resource, index.reference)
    if current is not None and not current.deleted and current.patient_id and patient_id is None:
        _refuse_detaching(resource["resourceType"])
    return Prepared(
        resource=resource,
        patient_id=patient_id,
        institution_id=ctx.actor.institution_id,
        index=index,
        method=method,
        version=version,
        pid=current.pid if current else None,
        references=found,
    )


def refuse_bundle_local(found: Iterable[Reference]) -> None:
    """A ``urn:uuid:`` or ``urn:oid:`` reference (``found``: a resource's ``references``)
    names an entry of a Bundle; stored, it would point at nothing (a transaction replaces
    it by the id its entry gets). A Bundle held as a resource keeps its own."""
    for where, reference, bundled in found:
        if not bundled and reference.startswith(BUNDLE_LOCAL):
            raise ValidationFailed(
                f"{where}: {reference} names no stored resource; a urn:uuid: or urn:oid: "
                "reference resolves only in a transaction Bundle, to its entry of that fullUrl",
                field=where,
            )


def _refuse_detaching(resource_type: str) -> None:
    """A resource of a patient's record stays in a record: without its patient it would be
    readable by anyone, unaudited. A misfiled one is moved to the right patient."""
    name = "patient" if "patient" in params_for(resource_type) else "subject"
    where = _element(resource_type, name)
    raise ValidationFailed(
        f"{where} cannot be removed: this {resource_type} belongs to a patient's record; "
        "refer it to the right patient, or delete it",
        field=where,
    )


def patient_of(
    db: Session, ctx: WriteContext, resource: dict[str, Any], references: list[dict[str, Any]]
) -> str | None:
    """The MPI person whose compartment holds the resource (``patient``, else ``subject``)."""
    resource_type = resource["resourceType"]
    params = params_for(resource_type)
    name = "patient" if "patient" in params else "subject"
    wanted = [r for r in references if r["name"] == name and r["target_type"] == "Patient"]
    resolved: list[str] = []
    for ref in wanted:
        person = ctx.person(db, ref["target_id"])
        if person is None:
            where = _element(resource_type, name)
            raise ValidationFailed(
                f"{where} refers to Patient/{ref['target_id']}, which the master patient "
                "index does not know (register the patient first)",
                field=where,
            )
        if person not in resolved:
            resolved.append(person)
    if len(resolved) > 1:
        raise ValidationFailed(
            f"{resource_type} refers to {len(resolved)} different patients; a resource belongs "
            "to one patient's record",
            field=_element(resource_type, name),
        )
    return resolved[0] if resolved else None


def _element(resource_type: str, param: str) -> str:
    expression = params_for(resource_type)[param].expression
    for part in expression.split("|"):
        part = part.strip().strip("()")
        if part.startswith(resource_type + "."):
            return part.split(".where(")[0].split(" as ")[0]
    return f"{resource_type}.{param}"


def authorize(db: Session, ctx: WriteContext, write: Prepared) -> AccessBasis | None:
    """Members' own systems create care relationships by recording encounters; anyone
    else needs an existing basis (care relationship, consent, break-the-glass)."""
    actor = ctx.actor
    if actor.role not in access.CLINICAL_ROLES:
        raise Forbidden(f"role {actor.role.value} may not write to the shared record")
    if actor.institution_id is None:
        # Only the author's institution may change what it wrote (``require_author``):
        # without one, a resource without a patient would stay as written for good.
        raise Forbidden(
            f"{actor.username} acts for no institution; the shared record is written by "
            "member institutions (sign in with a role at one)"
        )
    patient_id = write.patient_id
    if patient_id is None:
        return None
    if _own_system_encounter(actor, write.resource):
        assert actor.institution_id is not None
        access.record_visit(
            db,
            patient_id=patient_id,
            institution_id=actor.institution_id,
            encounter_id=write.resource["id"],
        )
        # The visit is a live care relationship with the writer: no need to look it up.
        ctx.bases[patient_id] = AccessBasis.CARE_RELATIONSHIP
    if patient_id not in ctx.bases:
        ctx.bases[patient_id] = access.require_clinical_access(
            db, actor, patient_id, ctx.now, action="write to", related=ctx.related.get(patient_id)
        )
    return ctx.bases[patient_id]


def require_author(db: Session, actor: Actor, current: StoredResource) -> None:
    """Only the institution that created a resource may change, delete or re-create it:
    another member with a basis to the record adds resources of its own rather than
    rewriting a colleague's (a discharge summary is corrected or withdrawn by its
    hospital). An actor without an institution is no author and writes nothing
    (``authorize``); a resource written without one (before that was refused) is changed
    by no one. Every user's membership and every member system has an institution, as
    everything else scoped to an institution requires."""
    author = current.institution_id  # the current row's: set at insert, never changed
    if author is not None and actor.institution_id == author:
        return
    if author is None:
        raise Forbidden(
            f"{current.reference} was written without an institution; no institution may "
            "change or delete it"
        )
    raise Forbidden(
        f"{current.reference} was written by {_institution_named(db, author)}; only that "
        "institution may change or delete it (record your own resources instead)"
    )


def _institution_named(db: Session, institution_id: str) -> str:
    """``县人民医院 (county-hospital)``, or the id alone for one the registry lacks: looked
    up only for a refusal, so the write path pays nothing for it."""
    found = registry.institutions_by_ids(db, [institution_id]).get(institution_id)
    return f"{found.name} ({institution_id})" if found is not None else institution_id


def create_is_one_statement(resource_type: str) -> bool:
    """Whether a create of this type writes one statement (the store's): an Encounter may
    also record a visit (``authorize``), a second write that must commit with it."""
    return resource_type != "Encounter"


def _own_system_encounter(actor: Actor, resource: dict[str, Any]) -> bool:
    if resource["resourceType"] != "Encounter" or actor.role != Role.SYSTEM:
        return False
    provider = (resource.get("serviceProvider") or {}).get("reference")
    return bool(actor.institution_id) and provider == f"Organization/{actor.institution_id}"


def commit_writes(
    db: Session, ctx: WriteContext, writes: list[Prepared], *, audit_each: bool = True
) -> list[StoredResource]:
    """Authorise every write first (nothing is written if one is refused), then persist.
    ``audit_each``: one audit event per write, written in the writes' own statement;
    otherwise (a bundle) one per patient touched."""
    # Encounters first: a member's own encounter is what gives it a basis for the rest.
    order = sorted(
        range(len(writes)), key=lambda i: writes[i].resource["resourceType"] != "Encounter"
    )
    decided = {i: authorize(db, ctx, writes[i]) for i in order}
    bases = [decided[i] for i in range(len(writes))]
    events = (
        [write_event(ctx.actor, w, basis) for w, basis in zip(writes, bases, strict=True)]
        if audit_each
        else []
    )
    wanted = _targets(writes)
    holding = [(*held, _named(writes, held, referrers)) for held, referrers in wanted.items()]
    stored, deleted = store.persist_holding(db, writes, ctx.now, events=events, holding=holding)
    for target in deleted:
        _refuse_deleted(writes, wanted, target)
    assert len(stored) == len(writes), "a deleted target stopped writes that do not name it"
    if not audit_each:
        _audit_grouped(db, ctx.actor, stored, bases)
    return stored


class DeletedTarget(Conflict):
    """A write refers to a resource that was deleted; ``position``: the write's, in the
    list ``commit_writes`` was given (callers re-raise it as ``type(exc)(message, field)``,
    hence the default)."""

    def __init__(self, message: str, *, field: str | None = None, position: int = 0) -> None:
        super().__init__(message, field=field)
        self.position = position


# A stored resource writes refer to: (type, id, the referring write's patient).
Referred = tuple[str, str, str | None]


def _naming(write: Prepared, reference: str) -> Reference | None:
    """Where the write names ``reference`` (``Type/id``) itself: not a version of it
    (``Type/id/_history/n``, which stays good when the target is deleted), nor in a Bundle
    it holds (which names its own entries)."""
    return next((r for r in write.references if r.value == reference and not r.bundled), None)


def _named(writes: list[Prepared], target: Referred, referrers: list[int]) -> bool:
    reference = f"{target[0]}/{target[1]}"
    return any(_naming(writes[p], reference) for p in referrers)


def _targets(writes: list[Prepared]) -> dict[Referred, list[int]]:
    """What the writes refer to, to hold while they commit (``store.persist_holding``):
    (type, id, referring patient), and which writes refer to it.

    Held so that a DELETE of one cannot slip in between; and a write naming a deleted one
    is refused (``_refuse_deleted``), as it would leave what a DELETE refuses to leave
    (``service.refuse_if_referenced``). Not the types other domains keep
    (``links.HOMES``): most writes refer to a Patient only, and then hold nothing. Nor
    what the writes themselves write: a PUT bringing a deleted resource back is live once
    written beside its referrers."""
    written = {(w.resource["resourceType"], w.resource["id"]) for w in writes}
    wanted: dict[Referred, list[int]] = {}
    for position, w in enumerate(writes):
        if w.method == "delete" or w.resource["resourceType"] == repository.HOLDS_NOTHING:
            continue
        for row in w.index.reference:
            target = (row["target_type"], row["target_id"])
            if target[0] is None or target[0] in links.HOMES or target in written:
                continue
            referrers = wanted.setdefault((*target, w.patient_id), [])
            if position not in referrers:
                referrers.append(position)
    return wanted


def _refuse_deleted(
    writes: list[Prepared], wanted: dict[Referred, list[int]], target: store.Target
) -> None:
    """Refuse the first write that names the deleted ``target`` itself (the error rolls
    the writes back); one naming a version of it (``Type/id/_history/n``) stays good:
    versions are kept. Other records' targets are not looked at (nor told about)."""
    reference = f"{target.resource_type}/{target.id}"
    for (kind, id_, patient), positions in wanted.items():
        if (kind, id_) != (target.resource_type, target.id):
            continue
        if target.patient_id is not None and target.patient_id != patient:
            continue  # held for a write of the target's record, not for these
        for position in positions:
            naming = _naming(writes[position], reference)
            if naming is not None:
                where = naming.path.removesuffix(".reference")
                raise DeletedTarget(
                    f"{where} refers to {reference}, which was deleted: refer to a live "
                    f"resource, or to the version meant ({reference}/_history/n)",
                    field=where,
                    position=position,
                )


def creating(http_method: str) -> str:
    """The stored write of a create by this HTTP method (see ``store.CREATES``)."""
    return "put" if http_method == "PUT" else "create"


def write_event(actor: Actor, write: Prepared, basis: AccessBasis | None) -> dict[str, Any]:
    """The audit event of one write (``fhir.create``, ``fhir.update`` or ``fhir.delete``;
    a create by PUT is a ``fhir.create``)."""
    return audit.event_row(
        actor,
        "fhir.create" if write.method in CREATES else f"fhir.{write.method}",
        resource_type=write.resource["resourceType"],
        resource_id=write.resource["id"],
        patient_id=write.patient_id,
        basis=basis,
        detail={"version": write.version},
    )


def _audit_grouped(
    db: Session, actor: Actor, stored: list[StoredResource], bases: list[AccessBasis | None]
) -> None:
    """A bundle is audited once per patient it touched, with what it wrote."""
    groups: dict[str | None, tuple[AccessBasis | None, dict[str, int]]] = {}
    for item, basis in zip(stored, bases, strict=True):
        _, counts = groups.setdefault(item.patient_id, (basis, {}))
        counts[item.resource_type] = counts.get(item.resource_type, 0) + 1
    for patient_id, (basis, counts) in groups.items():
        audit.record(
            db,
            actor,
            "fhir.transaction",
            resource_type="Bundle",
            patient_id=patient_id,
            basis=basis,
            detail={"written": counts},
        )


def tombstone(current: StoredResource, ctx: WriteContext) -> Prepared:
    """The deletion version: the last content is kept in history, the indexes go."""
    from medalliance.records.indexing import IndexRows

    return Prepared(
        resource={"resourceType": current.resource_type, "id": current.id},
        patient_id=current.patient_id,
        institution_id=ctx.actor.institution_id,
        index=IndexRows(),
        method="delete",
        version=current.version + 1,
        pid=current.pid,
        raw=current.raw,
    )
