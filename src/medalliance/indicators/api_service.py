"""The JSON API's view of the indicator service (one call per endpoint)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from medalliance.auth.principal import Actor
from medalliance.config import get_settings
from medalliance.indicators import pages, service
from medalliance.indicators.enums import Level
from medalliance.indicators.schemas import DefinitionSaved, DefinitionWrite, OverviewRead, ValueRead
from medalliance.web.i18n import get_locale


def overview(
    db: Session, period: str | None, level: Level, key: str | None, *, now: datetime
) -> OverviewRead:
    today = now.astimezone(ZoneInfo(get_settings().timezone)).date()
    page = pages.overview_page(db, period, level, key, today)
    ov = page.overview
    locale = get_locale()
    return OverviewRead(
        period=str(ov.period),
        level=ov.scope.level.value,
        key=ov.scope.key,
        indicators=[
            ValueRead(
                id=r.definition.id,
                name=r.definition.name(locale),
                unit=r.definition.unit,
                value=r.result.value if r.result else None,
                numerator=r.result.numerator if r.result else None,
                denominator=r.result.denominator if r.result else None,
                target=r.definition.target,
                status=r.result.status.value if r.result else None,
                trend=r.trend,
            )
            for r in ov.rows
        ],
    )


def save_definition(
    db: Session, actor: Actor, indicator_id: str, body: DefinitionWrite, *, now: datetime
) -> DefinitionSaved:
    saved = service.save_definition(
        db, actor, indicator_id, body.definition, note=body.note, now=now
    )
    return DefinitionSaved(
        id=indicator_id, version=saved.version, definition=saved.definition.model_dump(mode="json")
    )
