"""Declared access policy per route: which roles may call it and how rows are scoped.

Every route declares exactly one policy through ``allow(...)`` or ``public()``; a test
walks the app's routes and fails on any route without one (issue: access matrix).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute

from medalliance.auth.enums import Role
from medalliance.auth.principal import Actor


class Scope(StrEnum):
    PUBLIC = "public"  # no login: health, login page, static
    AUTHENTICATED = "authenticated"  # any logged-in actor, own data only
    OWN_INSTITUTION = "own_institution"  # rows of the actor's institution
    CARE_RELATIONSHIP = "care_relationship"  # patient data with a basis for access
    CONSORTIUM = "consortium"  # consortium-wide reference data or administration
    AGGREGATE = "aggregate"  # counts and rates only, never patient rows
    SELF = "self"  # a resident's own record


@dataclass(frozen=True)
class Policy:
    roles: frozenset[Role] | None  # None: any role
    scope: Scope

    def permits(self, role: Role) -> bool:
        return self.roles is None or role in self.roles


POLICY_ATTR = "__medalliance_policy__"


def allow(*roles: Role, scope: Scope) -> Any:
    """Dependency giving the current actor, refused unless their role is listed."""
    from medalliance.auth.deps import require_actor  # deps imports policy for typing

    policy = Policy(frozenset(roles) if roles else None, scope)

    async def checker(request: Request) -> Actor:
        return await require_actor(request, policy)

    setattr(checker, POLICY_ATTR, policy)
    return Depends(checker)


def public() -> Any:
    def marker() -> None:
        return None

    setattr(marker, POLICY_ATTR, Policy(None, Scope.PUBLIC))
    return Depends(marker)


def route_policies(route: APIRoute) -> list[Policy]:
    found: list[Policy] = []

    def walk(dependant: Any) -> None:
        call: Callable[..., Any] | None = dependant.call
        policy = getattr(call, POLICY_ATTR, None) if call else None
        if policy is not None:
            found.append(policy)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return found


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, descending into included routers (FastAPI keeps them nested)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(api_routes(list(route.original_router.routes)))
    return found
