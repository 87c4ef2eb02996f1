"""Care-level API (/api/care-levels): the catalogue, its edits, recommendations, pathways."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from medalliance.auth.enums import STAFF_ROLES, Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.care_levels import service
from medalliance.care_levels.enums import Pathway
from medalliance.care_levels.schemas import (
    Catalogue,
    CatalogueUpdate,
    EmergencyRoute,
    Recommendation,
    RecommendRequest,
)
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute

router = APIRouter(prefix="/api/care-levels", tags=["care-levels"], route_class=TransactionalRoute)
CLINICAL = (Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, Role.COORDINATOR, Role.SYSTEM)


@router.get("/catalogue", response_model=Catalogue)
def read_catalogue(
    db: DbSession, actor: Annotated[Actor, allow(*STAFF_ROLES, Role.SYSTEM, scope=Scope.CONSORTIUM)]
) -> Catalogue:
    return service.current(db)


@router.put(
    "/catalogue",
    response_model=Catalogue,
    responses={403: {"description": "Not the consortium administrator"}},
)
def replace_catalogue(
    body: CatalogueUpdate,
    db: DbSession,
    actor: Annotated[Actor, allow(Role.ADMIN, scope=Scope.CONSORTIUM)],
) -> Catalogue:
    return service.save(db, actor, body.catalogue, note=body.note, now=utcnow())


@router.post(
    "/recommend",
    response_model=Recommendation,
    responses={403: {"description": "No basis for this patient"}, 422: {"description": "Bad code"}},
)
def recommend(
    body: RecommendRequest,
    db: DbSession,
    actor: Annotated[Actor, allow(*CLINICAL, scope=Scope.CARE_RELATIONSHIP)],
) -> Recommendation:
    return service.recommend(db, actor, body, now=utcnow())


@router.get(
    "/emergency/{pathway}",
    response_model=EmergencyRoute,
    responses={404: {"description": "No designated centre"}},
)
def emergency_route(
    pathway: Pathway,
    db: DbSession,
    actor: Annotated[Actor, allow(*CLINICAL, scope=Scope.CONSORTIUM)],
    institution_id: str | None = None,
) -> EmergencyRoute:
    return service.emergency_route(db, actor, pathway, institution_id)
