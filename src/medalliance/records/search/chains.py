"""Chains into the types other domains own (``patient.identifier=…``), resolved before the
query is built: the MPI and the registry find their rows by identifier, and the chain
becomes a plain reference to what they found (``patient=Patient/p…``). A chain on the
patient is then checked and audited as naming that patient is."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.orm import Session

from medalliance.patients import service as patients
from medalliance.records import links
from medalliance.records.search.criteria import OWNED_CHAIN_PARAMS, Criterion, Query


def resolve_owned(db: Session, query: Query) -> Query:
    if not any(_is_owned_chain(c) for c in query.criteria):
        return query
    criteria = [_resolved(db, c) if _is_owned_chain(c) else c for c in query.criteria]
    return replace(query, criteria=criteria)


def _is_owned_chain(c: Criterion) -> bool:
    return c.chain is not None and c.chain.target_type in OWNED_CHAIN_PARAMS


def _resolved(db: Session, c: Criterion) -> Criterion:
    """The chain as a reference to every row found (none found: values are empty, and
    the criterion matches nothing)."""
    assert c.chain is not None
    target_type, inner = c.chain.target_type, c.chain.criterion
    found: set[str] = set()
    for value in inner.values:
        if inner.name == "_id":
            owned = links.resolve_owned(db, target_type, value)
            found |= {owned} if owned else set()
        else:  # identifier: system|value, value (any system) or |value (no system)
            system, bar, code = value.rpartition("|")
            if bar and not system:
                continue  # every identifier of the MPI and the registry has a system
            found |= set(links.identifier_matches(db, target_type, system or None, code))
    if target_type == "Patient" and c.name != "patient":
        # Other references keep the id they were written with: after a merge, the ids
        # merged into the person name them too (``patient`` follows merges by itself).
        found |= {m for p in list(found) for m in patients.absorbed_ids(db, p)}
    return Criterion(c.param, c.name, None, tuple(f"{target_type}/{i}" for i in sorted(found)))
