"""MPI pages: patient search, the patient card (identifiers, members, consent, emergency
access), the review queue with its side-by-side compare page, and a resident's own consent
and access log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medalliance.access import service as access
from medalliance.access.enums import ConsentStatus
from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import Page
from medalliance.kit.http import DbSession, PageOffset, TransactionalRoute
from medalliance.patients import service
from medalliance.patients.api import CONSENT_RECORDERS, IDENTITY_STEWARDS
from medalliance.patients.enums import ReviewDecision, ReviewStatus
from medalliance.patients.service import IDENTIFYING_ROLES
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)

Staff = Annotated[Actor, allow(*IDENTIFYING_ROLES, scope=Scope.CARE_RELATIONSHIP)]
Steward = Annotated[Actor, allow(*IDENTITY_STEWARDS, scope=Scope.CONSORTIUM)]
Resident = Annotated[Actor, allow(Role.RESIDENT, scope=Scope.SELF)]
PAGE_SIZE = 20


@router.get("/patients", response_class=HTMLResponse)
def search_page(
    request: Request, db: DbSession, actor: Staff, q: str = "", offset: PageOffset = 0
) -> HTMLResponse:
    persons, total = service.quick_search(db, actor, q, Page(PAGE_SIZE, max(offset, 0)))
    context = {"q": q, "persons": persons, "total": total, "offset": offset, "size": PAGE_SIZE}
    return render(request, "patients/search.html", context, actor=actor)


@router.get("/patients/reviews", response_class=HTMLResponse)
def review_queue_page(
    request: Request,
    db: DbSession,
    actor: Steward,
    status: ReviewStatus = ReviewStatus.OPEN,
    offset: PageOffset = 0,
) -> HTMLResponse:
    queue = service.review_queue(db, actor, status, Page(PAGE_SIZE, max(offset, 0)))
    context = {"queue": queue, "status": status.value, "offset": offset, "size": PAGE_SIZE}
    return render(request, "patients/reviews.html", context, actor=actor)


@router.get("/patients/reviews/{review_id}", response_class=HTMLResponse)
def review_page(request: Request, db: DbSession, actor: Steward, review_id: int) -> HTMLResponse:
    detail = service.review_detail(db, actor, review_id)
    return render(
        request,
        "patients/compare.html",
        {"d": detail, "fields": service.COMPARED_FIELDS},
        actor=actor,
    )


@router.post("/patients/reviews/{review_id}")
def decide_review(
    db: DbSession,
    actor: Steward,
    review_id: int,
    decision: Annotated[ReviewDecision, Form()],
    reason: Annotated[str, Form(min_length=4, max_length=500)],
) -> Response:
    service.decide_review(db, actor, review_id=review_id, decision=decision, reason=reason)
    return RedirectResponse("/patients/reviews", status_code=303)


@router.get("/patients/{person_id}", response_class=HTMLResponse)
def card_page(request: Request, db: DbSession, actor: Staff, person_id: str) -> HTMLResponse:
    card = service.patient_card(db, actor, person_id)
    # Emergency access is offered only to whom has no other basis to read the record.
    basis = access.clinical_basis(db, actor, card.person.id, utcnow())
    context = {
        "card": card,
        "basis": basis,
        "may_record_consent": actor.role in CONSENT_RECORDERS,
        "may_break_glass": actor.role in access.BREAK_GLASS_ROLES and basis is None,
        # The timeline itself decides on the basis (and offers emergency access without one).
        "may_open_record": actor.role in access.CLINICAL_ROLES,
    }
    return render(request, "patients/card.html", context, actor=actor)


@router.post("/patients/{person_id}/consent")
def consent_submit(
    db: DbSession,
    actor: Annotated[Actor, allow(*CONSENT_RECORDERS, scope=Scope.CARE_RELATIONSHIP)],
    person_id: str,
    status: Annotated[ConsentStatus, Form()],
    source_document: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    service.record_consent(
        db, actor, person_id, status=status, source_document=source_document, note=note
    )
    return RedirectResponse(f"/patients/{person_id}", status_code=303)


@router.post("/patients/{person_id}/break-glass")
def break_glass_submit(
    db: DbSession,
    actor: Annotated[
        Actor,
        allow(Role.DOCTOR, Role.SPECIALIST, Role.FAMILY_DOCTOR, scope=Scope.CARE_RELATIONSHIP),
    ],
    person_id: str,
    reason: Annotated[str, Form(max_length=500)],
) -> Response:
    service.break_glass(db, actor, person_id, reason=reason, now=utcnow())
    return RedirectResponse(f"/patients/{person_id}", status_code=303)


@router.get("/me/consent", response_class=HTMLResponse)
def own_consent_page(request: Request, db: DbSession, actor: Resident) -> HTMLResponse:
    mine = service.own_consent(db, actor, now=utcnow())
    return render(request, "patients/own_consent.html", {"mine": mine}, actor=actor)


@router.post("/me/consent")
def own_consent_submit(
    db: DbSession, actor: Resident, status: Annotated[ConsentStatus, Form()]
) -> Response:
    service.record_own_consent(db, actor, status=status)
    return RedirectResponse("/me/consent", status_code=303)
