"""``medalliance indicators ...``: demo facts, refresh and rebuild, and the report export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Appraisal indicators", no_args_is_help=True)


@app.command("demo")
def demo(
    months: Annotated[int, typer.Option(help="months of history")] = 24,
    last_month: Annotated[str, typer.Option(help="last month (YYYY-MM); default: last month")] = "",
    residents: Annotated[int, typer.Option(help="at most this many demo residents")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
) -> None:
    """Generate synthetic facts for the demo residents (replaces earlier demo facts)."""
    from medalliance.db import unit_of_work
    from medalliance.indicators import demo as generator
    from medalliance.indicators.periods import add_months, month_of
    from medalliance.kit.clock import utcnow

    last = last_month or add_months(month_of(utcnow().date()), -1)
    with unit_of_work() as db:
        report = generator.load(db, seed=seed, months=months, last_month=last, residents=residents)
    typer.echo(
        f"indicator demo: {report.encounters} encounters, {report.referrals} referrals, "
        f"{report.settlements} settlements, {report.aggregates} aggregate rows"
    )


@app.command("refresh")
def refresh() -> None:
    """Turn source rows changed since the watermarks into facts (what the worker does)."""
    from medalliance.db import unit_of_work
    from medalliance.indicators import sources

    with unit_of_work() as db:
        done = sources.refresh(db)
    typer.echo(f"indicators: {done} facts refreshed")


@app.command("rebuild")
def rebuild() -> None:
    """Recompute facts (from the sources) and every aggregate from scratch."""
    from medalliance.db import unit_of_work
    from medalliance.indicators import sources

    with unit_of_work() as db:
        report = sources.rebuild(db)
    typer.echo(
        f"indicators rebuilt: {report['facts']} facts from sources, "
        f"{report['aggregates']} aggregate rows"
    )


@app.command("report")
def report(
    period: Annotated[str, typer.Option(help="2026-07, 2026-Q3 or 2026")],
    output: Annotated[Path, typer.Option(help="file to write")],
    format: Annotated[str, typer.Option(help="xlsx or csv")] = "xlsx",
    level: Annotated[
        str, typer.Option(help="institution, township, county or consortium")
    ] = "consortium",
    key: Annotated[str, typer.Option(help="institution id or division code")] = "",
    locale: Annotated[str, typer.Option(help="zh_CN or en")] = "zh_CN",
) -> None:
    """Write the overview (values, numerators, denominators, 12-month trend) to a file."""
    from medalliance.db import unit_of_work
    from medalliance.errors import DomainError
    from medalliance.indicators import exports, pages
    from medalliance.indicators.enums import Level
    from medalliance.kit.clock import utcnow
    from medalliance.web import i18n

    i18n.set_locale(locale)
    try:
        with unit_of_work() as db:
            page = pages.overview_page(db, period, Level(level), key or None, utcnow().date())
        body = exports.render(page.tables, format)
    except (DomainError, ValueError) as exc:
        raise typer.BadParameter(getattr(exc, "message", str(exc))) from exc
    output.write_bytes(body)
    typer.echo(f"wrote {output} ({len(page.overview.rows)} indicators, {page.overview.period})")
