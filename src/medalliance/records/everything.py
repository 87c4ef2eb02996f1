"""Patient/$everything (R4 OperationDefinition Patient-everything): the Patient from the
master patient index, then the live resources of its compartment in creation order,
narrowed by ``_since``, ``_type`` and the care dates ``start`` and ``end``. As any search
here, it warns of a parameter it does not read, or refuses it under strict handling."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache

from sqlalchemy.orm import Session

from medalliance.access import service as access
from medalliance.auth.principal import Actor
from medalliance.errors import DomainError, NotFound
from medalliance.kit.fhir import unknown_parameter, unread_parameters
from medalliance.patients import service as patients
from medalliance.records import links, repository
from medalliance.records.repository import CompartmentScope
from medalliance.records.search.criteria import IGNORED_PARAMS
from medalliance.records.search.engine import SearchResult
from medalliance.records.searchparams import all_resource_types
from medalliance.records.store import StoredResource, dump, from_row

# What the route reads (``_cursor``: the paging cursor of the next links it gives), and
# the format parameters every search here accepts.
PARAMETERS = frozenset({"_since", "_type", "start", "end", "_count", "_cursor", *IGNORED_PARAMS})
EVERYTHING = "Patient/$everything"


def ignored_parameters(params: Sequence[tuple[str, str]], *, strict: bool) -> list[tuple[str, str]]:
    """The (key, value) pairs $everything does not read, to warn of and leave out of its
    links; under strict handling the first of them is a 400 instead, as is a parameter
    it reads given twice."""
    ignored = unread_parameters(params, PARAMETERS, EVERYTHING, strict=strict)
    _refuse_repeats(params)
    return ignored


def _refuse_repeats(params: Sequence[tuple[str, str]]) -> None:
    """A single-valued parameter given twice (``start=…&start=…``) is a 400: taking one of
    them silently would answer another question than the client asked."""
    given = [key for key, _ in params if key in PARAMETERS and key != "_type"]
    for key in dict.fromkeys(given):
        if given.count(key) > 1:
            raise DomainError(f"{key} may be given once to Patient/$everything", field=key)


def patient_everything(
    db: Session,
    actor: Actor,
    patient_id: str,
    *,
    now: datetime,
    since: datetime | None = None,
    types: Collection[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    count: int = 100,
    cursor: int | None = None,
    ignored: Sequence[tuple[str, str]] = (),
) -> SearchResult:
    """A page of ``count`` entries (the Patient heads the first, ``cursor`` None, and
    counts as one of them); ``count`` 0 answers the total alone. ``start``/``end``: care
    dates, in scope when a resource's clinical date (a period: any of it) falls between
    them (resources without one are always in scope). ``ignored``: from
    ``ignored_parameters``, warned of in the result."""
    scope = CompartmentScope(since, _stored_types(types), care_from=start, care_to=end)
    warned = [f"{unknown_parameter(key, EVERYTHING)}; ignored" for key, _ in ignored]
    person = links.person_id(db, patient_id)
    if person is None:
        raise NotFound(f"Patient/{patient_id} is not known to the master patient index")
    basis = access.require_clinical_access(db, actor, person, now)
    access.audit_read(db, actor, patient_id=person, basis=basis, resource_type="Patient$everything")
    patient = _patient_entry(db, person) if types is None or "Patient" in types else None
    if patient is not None and since is not None and patient.last_updated < since:
        patient = None  # _since: only what was updated since
    if count == 0:
        total = repository.count_patient_resources(db, person, scope)
        total += patient is not None
        return SearchResult(matches=[], total=total, warnings=warned, ignored=[*ignored])
    head = [patient] if patient is not None and cursor is None else []
    room = count - len(head)
    rows = repository.patient_resources(db, person, scope, after_pid=cursor or 0, limit=room + 1)
    page = [from_row(r) for r in rows[:room]]
    following = None
    if len(rows) > room:
        # "0" after a page holding the Patient alone: the next starts the compartment.
        following = str(page[-1].pid if page else 0)
    matches = [*head, *page]
    return SearchResult(matches, next_cursor=following, warnings=warned, ignored=[*ignored])


def _stored_types(types: Collection[str] | None) -> frozenset[str] | None:
    """The stored types of ``_type`` (the Patient comes from the MPI); a type $everything
    never returns is a 400, not an empty answer the client would take for "none"."""
    if types is None:
        return None
    for name in types:
        if name not in _returned_types():
            raise DomainError(_not_returned(name), field="_type")
    return frozenset(types) - {"Patient"}


@cache
def _returned_types() -> frozenset[str]:
    return frozenset({"Patient", *(t for t in all_resource_types() if t not in links.HOMES)})


def _not_returned(name: str) -> str:
    if name in links.HOMES:
        return f"_type: $everything does not return {name} (served by {links.HOMES[name]})"
    return f"_type: {name} is not an R4 resource type this server stores"


def _patient_entry(db: Session, person_id: str) -> StoredResource:
    person = patients.get_person(db, person_id)
    resource = patients.patient_resource(db, person)
    return StoredResource(
        resource_type="Patient",
        id=person.id,
        version=1,
        last_updated=person.updated_at,
        patient_id=person.id,
        institution_id=None,
        raw=dump(resource),
    )
