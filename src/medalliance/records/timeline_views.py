"""The patient timeline page (``/patients/{person_id}/timeline``): full page, or only the
list when HTMX asks for another kind; a refusal is a 403 page offering emergency access.
``/me/record`` opens a resident's own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from medalliance.auth.enums import Role
from medalliance.auth.policy import Scope, allow
from medalliance.auth.principal import Actor
from medalliance.errors import NotFound
from medalliance.kit.clock import utcnow
from medalliance.kit.http import DbSession, TransactionalRoute
from medalliance.records import timeline
from medalliance.records.timeline import Kind, TimelineRefused
from medalliance.web.templating import render

router = APIRouter(route_class=TransactionalRoute, include_in_schema=False)

# Clinicians and the referral office read with a basis; residents read their own record.
Reader = Annotated[
    Actor,
    allow(
        Role.DOCTOR,
        Role.SPECIALIST,
        Role.READER,
        Role.FAMILY_DOCTOR,
        Role.COORDINATOR,
        Role.RESIDENT,
        scope=Scope.CARE_RELATIONSHIP,
    ),
]


@router.get("/patients/{person_id}/timeline", response_class=HTMLResponse)
def timeline_page(
    request: Request, db: DbSession, actor: Reader, person_id: str, kind: Kind | None = None
) -> HTMLResponse:
    try:
        found = timeline.patient_timeline(db, actor, person_id, kind=kind, now=utcnow())
    except TimelineRefused as refused:
        # Returned, not raised: the refusal's audit row must be committed.
        context = {"person_id": refused.person_id, "may_break_glass": refused.may_break_glass}
        return render(request, "timeline/denied.html", context, actor=actor, status_code=403)
    partial = request.headers.get("HX-Request") == "true"
    template = "timeline/_items.html" if partial else "timeline/page.html"
    return render(request, template, {"t": found, "kinds": list(Kind)}, actor=actor)


@router.get("/me/record")
def own_record(
    actor: Annotated[Actor, allow(Role.RESIDENT, scope=Scope.SELF)],
) -> RedirectResponse:
    """The resident's own timeline (its read is audited like any other)."""
    if actor.person_id is None:
        raise NotFound("this account is not linked to a resident of the patient index")
    return RedirectResponse(f"/patients/{actor.person_id}/timeline", status_code=303)
