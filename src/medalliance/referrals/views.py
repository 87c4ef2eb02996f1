"""Referral pages: the referral office queue (HTMX polling), writing a referral with the
level recommendation, the detail with its history and actions, and "my referrals"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.care_levels import service as care_levels
from medalliance.care_levels.schemas import RecommendRequest
from medalliance.errors import Conflict, DomainError
from medalliance.kit.clock import utcnow
from medalliance.kit.fhir import Page
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.patients import service as patients
from medalliance.referrals import adapters, service
from medalliance.referrals.api import REFERRAL_ROLES
from medalliance.referrals.enums import (
    OPEN_STATUSES,
    Box,
    Direction,
    ReferralEvent,
    ReferralStatus,
    Side,
    Urgency,
)
from medalliance.referrals.repository import QueueFilter
from medalliance.referrals.schemas import Outcome, ReferralCreate, TransitionRequest
from medalliance.registry import service as registry
from medalliance.scheduling import service as scheduling
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)
Staff = Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.OWN_INSTITUTION)]
Clinician = Annotated[Actor, allow(*REFERRAL_ROLES, scope=Scope.CARE_RELATIONSHIP)]
POLL_SECONDS = 15
# Which actions the detail page offers to which side in which state (the service decides).
ACTIONS: dict[Side, list[ReferralEvent]] = {
    Side.SENDER: [ReferralEvent.SUBMIT, ReferralEvent.CANCEL],
    Side.RECEIVER: [
        ReferralEvent.RECEIVE,
        ReferralEvent.ACCEPT,
        ReferralEvent.REJECT,
        ReferralEvent.SCHEDULE,
        ReferralEvent.ARRIVE,
        ReferralEvent.COMPLETE,
        ReferralEvent.FAIL,
    ],
}


def _criteria(request: Request) -> QueueFilter:
    q = request.query_params
    box = Box(q.get("box", "")) if q.get("box") in {b.value for b in Box} else Box.INCOMING
    status = q.get("status") or "open"
    statuses = (
        sorted(OPEN_STATUSES)
        if status == "open"
        else []
        if status == "all"
        else [status]
        if status in {s.value for s in ReferralStatus}
        else sorted(OPEN_STATUSES)
    )
    return QueueFilter(
        box=box,
        statuses=statuses,
        urgency=q.get("urgency") if q.get("urgency") in {u.value for u in Urgency} else None,
        direction=q.get("direction")
        if q.get("direction") in {d.value for d in Direction}
        else None,
    )


def _queue_context(db: Session, actor: Actor, request: Request, *, mine: bool) -> dict[str, Any]:
    criteria = _criteria(request)
    page = service.queue(db, actor, criteria, now=utcnow(), limit=100, mine=mine)
    names = registry.institutions_by_ids(
        db,
        list(
            {i.referral.from_institution_id for i in page.items}
            | {i.referral.to_institution_id for i in page.items}
        ),
    )
    return {
        "page": page,
        "names": {k: v.name for k, v in names.items()},
        "criteria": criteria,
        "status_filter": request.query_params.get("status") or "open",
        "query": request.url.query,
        "poll": POLL_SECONDS,
        "statuses": list(ReferralStatus),
        "mine": mine,
    }


@router.get("/referrals", response_class=HTMLResponse)
def queue_page(request: Request, db: DbSession, actor: Staff) -> HTMLResponse:
    context = _queue_context(db, actor, request, mine=False)
    context["follow_ups"] = service.follow_ups_due(db, actor)
    context["now"] = utcnow()
    return render(request, "referrals/queue.html", context, actor=actor)


@router.get("/referrals/rows", response_class=HTMLResponse)
def queue_rows(request: Request, db: DbSession, actor: Staff) -> HTMLResponse:
    mine = request.query_params.get("mine") == "1"
    context = _queue_context(db, actor, request, mine=mine)
    return render(request, "referrals/_rows.html", context, actor=actor)


@router.get("/referrals/mine", response_class=HTMLResponse)
def my_referrals(request: Request, db: DbSession, actor: Staff) -> HTMLResponse:
    context = _queue_context(db, actor, request, mine=True)
    return render(request, "referrals/queue.html", context, actor=actor)


@router.get("/referrals/patients", response_class=HTMLResponse)
def patient_options(request: Request, db: DbSession, actor: Clinician, q: str = "") -> HTMLResponse:
    found, _ = patients.quick_search(db, actor, q, Page(count=10, offset=0))
    return render(request, "referrals/_patients.html", {"persons": found}, actor=actor)


@router.get("/referrals/attachments", response_class=HTMLResponse)
def attachment_options(
    request: Request, db: DbSession, actor: Clinician, patient_id: str = ""
) -> HTMLResponse:
    try:
        choices = adapters.patient_records(db, actor, patient_id, utcnow()) if patient_id else []
        error = None
    except DomainError as exc:  # no basis for this patient: say so in place
        choices, error = [], exc.message
    context = {"choices": choices, "error": error}
    return render(request, "referrals/_attachments.html", context, actor=actor)


@router.get("/referrals/recommend", response_class=HTMLResponse)
def recommendation(
    request: Request, db: DbSession, actor: Clinician, diagnoses: str = "", patient_id: str = ""
) -> HTMLResponse:
    codes = [c for c in diagnoses.replace("，", ",").replace(" ", ",").split(",") if c]
    context: dict[str, Any] = {"rec": None, "error": None}
    if codes:
        try:
            context["rec"] = care_levels.recommend(
                db,
                actor,
                RecommendRequest(diagnoses=codes, patient_id=patient_id or None),
                now=utcnow(),
            )
        except DomainError as exc:
            context["error"] = exc.message
    return render(request, "referrals/_recommendation.html", context, actor=actor)


def _form_context(db: Session, values: dict[str, Any]) -> dict[str, Any]:
    catalogue = care_levels.current(db)
    return {
        "values": values,
        "up_reasons": catalogue.up_reasons,
        "down_criteria": catalogue.down_criteria,
        "members": service.member_choices(db),
        "urgencies": list(Urgency),
    }


@router.get("/referrals/new", response_class=HTMLResponse)
def new_referral(request: Request, db: DbSession, actor: Clinician) -> HTMLResponse:
    values = dict(request.query_params)
    context = _form_context(db, values)
    return render(request, "referrals/new.html", context, actor=actor)


_LIST_FIELDS = ("diagnoses", "attachments")


def _parse_form(form: dict[str, str]) -> ReferralCreate:
    data: dict[str, Any] = {
        k: v for k, v in form.items() if k in ReferralCreate.model_fields and v != ""
    }
    for name in _LIST_FIELDS:
        raw = form.get(name, "")
        data[name] = [
            p.strip() for p in raw.replace("，", ",").replace("\n", ",").split(",") if p.strip()
        ]
    data["submit"] = form.get("action") != "draft"
    return ReferralCreate.model_validate(data)


@router.post("/referrals/new", response_class=HTMLResponse)
async def create_referral(request: Request, db: DbSession, actor: Clinician) -> Response:
    submitted = await request.form()
    form = {k: str(v) for k, v in submitted.items()}
    picked = [str(v) for v in submitted.getlist("attachment_pick")]
    form["attachments"] = ",".join(filter(None, [form.get("attachments", ""), *picked]))
    try:
        body = _parse_form(form)
        referral = await run_in_threadpool(service.create, db, actor, body, now=utcnow())
    except (DomainError, ValueError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        field = exc.field if isinstance(exc, DomainError) else None
        await run_in_threadpool(db.rollback)
        context = await run_in_threadpool(_form_context, db, form)
        context.update(error=message, error_field=field)
        return render(request, "referrals/new.html", context, actor=actor, status_code=422)
    return RedirectResponse(f"/referrals/{referral.id}", status_code=303)


BOOKABLE = frozenset({ReferralStatus.REQUESTED, ReferralStatus.RECEIVED, ReferralStatus.ACCEPTED})


def _detail_context(db: Session, actor: Actor, referral_id: str) -> dict[str, Any]:
    detail = service.get(db, actor, referral_id, now=utcnow())
    r = detail.referral
    names = registry.institutions_by_ids(db, [r.from_institution_id, r.to_institution_id])
    actions = [e for side in sorted(detail.sides) for e in ACTIONS.get(side, [])]
    slots = (
        scheduling.free_slots(
            db, now=utcnow(), institution_id=r.to_institution_id, department_id=r.to_department_id
        )
        # Offered while accepting too, so the office can accept and book in one step.
        if Side.RECEIVER in detail.sides and r.status in BOOKABLE
        else []
    )
    return {
        "d": detail,
        "r": r,
        "names": {k: v.name for k, v in names.items()},
        "actions": [a for a in actions if service.may(r, a, detail.sides)],
        "slots": slots,
    }


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def referral_detail(
    request: Request, referral_id: str, db: DbSession, actor: Clinician
) -> HTMLResponse:
    return render(
        request, "referrals/detail.html", _detail_context(db, actor, referral_id), actor=actor
    )


# Declared before "/referrals/{referral_id}/{event}", which would take "follow-up" as an event.
@router.post("/referrals/{referral_id}/follow-up", response_class=HTMLResponse)
async def record_follow_up(
    request: Request, referral_id: str, db: DbSession, actor: Staff
) -> Response:
    form = await request.form()
    result = str(form.get("result", ""))
    try:
        await run_in_threadpool(
            lambda: service.record_follow_up(db, actor, referral_id, result, now=utcnow())
        )
    except DomainError as exc:
        return await _detail_with_error(request, db, actor, referral_id, exc)
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)


async def _detail_with_error(
    request: Request, db: Session, actor: Actor, referral_id: str, exc: DomainError
) -> Response:
    """A fresh view of what is there now, with the reason the action did not happen."""
    await run_in_threadpool(db.rollback)
    context = await run_in_threadpool(_detail_context, db, actor, referral_id)
    context["error"] = exc.message
    status = 409 if isinstance(exc, Conflict) else exc.status
    return render(request, "referrals/detail.html", context, actor=actor, status_code=status)


@router.post("/referrals/{referral_id}/{event}", response_class=HTMLResponse)
async def referral_action(
    request: Request, referral_id: str, event: ReferralEvent, db: DbSession, actor: Staff
) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    slot = form.get("slot_id", "")
    body = TransitionRequest(
        reason=form.get("reason", ""),
        slot_id=int(slot) if slot.isdigit() else None,
        outcome=Outcome(
            kind=form.get("outcome_kind") or "discharge-summary", text=form["outcome_text"]
        )
        if form.get("outcome_text")
        else None,
    )
    version = form.get("version", "")
    try:
        await run_in_threadpool(
            lambda: service.transition(
                db,
                actor,
                referral_id,
                event,
                body,
                now=utcnow(),
                expected_version=int(version) if version.isdigit() else None,
            )
        )
    except DomainError as exc:
        return await _detail_with_error(request, db, actor, referral_id, exc)
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)
