"""Router order: the FHIR routers come first, which is only safe while no other router
has a path under /fhir."""

from __future__ import annotations

from medalliance.routes import FHIR_ROUTERS, ROUTERS


class TestRouterOrder:
    def test_fhir_routers_come_first(self) -> None:
        assert ROUTERS[: len(FHIR_ROUTERS)] == FHIR_ROUTERS

    def test_no_other_router_has_a_path_under_fhir(self) -> None:
        others = [router for router in ROUTERS if router not in FHIR_ROUTERS]
        paths = [route.path for router in others for route in router.routes]
        assert not [p for p in paths if p == "/fhir" or p.startswith(("/fhir/", "/{"))]
