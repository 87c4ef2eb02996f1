"""Jinja2 environment shared by every domain's views."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from medalliance.auth.deps import csrf_token
from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.web import i18n
from medalliance.web.navigation import nav_for

TEMPLATE_DIR = Path(__file__).parent / "templates"

templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times are stored in UTC; people read them in the consortium's zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


def birth_date(value: date | None) -> str:
    """A birth date, or that it is not known yet (an unidentified patient)."""
    return value.isoformat() if value is not None else i18n.gettext("birth date unknown")


templates.env.filters["local_time"] = local_time
templates.env.filters["birth_date"] = birth_date


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    base: dict[str, Any] = {
        "actor": actor,
        "nav": nav_for(actor.role) if actor else [],
        "locale": i18n.get_locale(),
        "csrf_token": csrf_token(request),
        "path": request.url.path,
    }
    return templates.TemplateResponse(
        request, template, {**base, **(context or {})}, status_code=status_code
    )
