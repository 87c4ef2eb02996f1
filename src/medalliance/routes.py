"""Every router of the app, in matching order: specific FHIR types before generic ones.

Domains add their routers here (one line each).
"""

from __future__ import annotations

from fastapi import APIRouter

from medalliance.audit import api as audit_api
from medalliance.audit import views as audit_views
from medalliance.auth import api as auth_api
from medalliance.auth import views as auth_views
from medalliance.care_levels import api as care_levels_api
from medalliance.care_levels import views as care_levels_views
from medalliance.indicators import api as indicators_api
from medalliance.indicators import views as indicators_views
from medalliance.patients import api as patients_api
from medalliance.patients import fhir as patients_fhir
from medalliance.patients import views as patients_views
from medalliance.records import fhir as records_fhir
from medalliance.records import timeline_views as records_timeline_views
from medalliance.records.hl7 import api as records_hl7_api
from medalliance.referrals import api as referrals_api
from medalliance.referrals import fhir as referrals_fhir
from medalliance.referrals import views as referrals_views
from medalliance.registry import api as registry_api
from medalliance.registry import fhir as registry_fhir
from medalliance.registry import views as registry_views
from medalliance.scheduling import api as scheduling_api
from medalliance.scheduling import fhir as scheduling_fhir
from medalliance.scheduling import views as scheduling_views
from medalliance.web import views as web_views

# Matching walks the routers in order and every route of every router before the match
# (FastAPI's included routers test each route's regex, twice for the winning router). The
# FHIR routers go first: /fhir is the busy path of member systems, and its generic store
# (the last of them) otherwise came after all ~110 page and API routes. No other router
# has a path under /fhir, so the order of the rest cannot change what a /fhir URL matches.
FHIR_ROUTERS: list[APIRouter] = [
    registry_fhir.router,
    patients_fhir.router,
    referrals_fhir.router,
    scheduling_fhir.router,
    # Generic FHIR store (/fhir/{type}...): must stay LAST of these so specific ones win.
    records_fhir.router,
]
ROUTERS: list[APIRouter] = [
    *FHIR_ROUTERS,
    auth_api.router,
    auth_views.router,
    audit_api.router,
    audit_views.router,
    registry_api.router,
    registry_views.router,
    patients_api.router,
    patients_views.router,
    care_levels_api.router,
    care_levels_views.router,
    referrals_api.router,
    referrals_views.router,
    scheduling_api.router,
    scheduling_views.router,
    web_views.router,
    records_hl7_api.router,
    records_timeline_views.router,
    indicators_api.router,
    indicators_views.router,
]
