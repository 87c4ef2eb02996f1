"""Every route declares exactly one access policy; the exemptions may only shrink."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from medalliance.auth.policy import Scope, api_routes, route_policies

# FastAPI's own documentation routes: they carry no data.
EXEMPT = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


def _api_routes(app: FastAPI) -> list[APIRoute]:
    return api_routes(list(app.routes))


class TestRoutePolicies:
    def test_every_route_declares_exactly_one_policy(self, app: FastAPI) -> None:
        missing = [
            f"{sorted(r.methods)} {r.path}" for r in _api_routes(app) if len(route_policies(r)) != 1
        ]
        assert missing == []

    def test_exemptions_are_only_the_documentation_routes(self, app: FastAPI) -> None:
        undeclared = {
            r.path
            for r in app.routes
            if not isinstance(r, APIRoute) and not hasattr(r, "original_router")
        } - {"/static", "/vendor/htmx", "/vendor/echarts", "/vendor/pico"}
        assert undeclared <= EXEMPT

    def test_a_route_without_policy_is_caught(self, app: FastAPI) -> None:
        @app.get("/api/unguarded")
        def unguarded() -> dict[str, str]:
            return {}

        offenders = [r.path for r in _api_routes(app) if not route_policies(r)]
        assert offenders == ["/api/unguarded"]

    def test_public_routes_are_few_and_named(self, app: FastAPI) -> None:
        public = sorted(
            r.path for r in _api_routes(app) if route_policies(r)[0].scope == Scope.PUBLIC
        )
        assert public == [
            "/api/auth/token",
            # FHIR clients read the CapabilityStatement before they authenticate (R4 3.1.0.8).
            "/fhir/metadata",
            "/health",
            "/lang/{locale}",
            "/login",
            "/login",
            "/metrics",
        ]
