"""The tables behind each dashboard view, in the user's language: the page shows them as
the chart's table view, and the exports and the ``report`` command write them out."""

from __future__ import annotations

from medalliance.indicators.definitions import Definition
from medalliance.indicators.engine import Result
from medalliance.indicators.exports import Table, rounded
from medalliance.indicators.service import Breakdown, Overview
from medalliance.indicators.spectrum import LEVELS, Spectrum
from medalliance.web.i18n import get_locale
from medalliance.web.i18n import gettext as _


def _cells(definition: Definition, result: Result | None) -> list[object]:
    if result is None:
        return [None, None, None, _("not computed at this level")]
    digits = definition.decimals
    return [
        rounded(result.value, digits),
        rounded(result.numerator, 2),
        rounded(result.denominator, 2),
        _("light:" + result.status.value),
    ]


def overview_table(overview: Overview, scope_label: str) -> list[Table]:
    locale = get_locale()
    title = f"{_('Indicators')} {overview.period} {scope_label}".strip()
    headers = [
        _("Indicator"),
        _("Dimension"),
        _("Value"),
        _("Numerator"),
        _("Denominator"),
        _("Status"),
        _("Unit"),
        _("Target"),
        _("Numerator formula"),
        _("Denominator formula"),
    ]
    table = Table(title, headers)
    for row in overview.rows:
        d = row.definition
        value, numerator, denominator, status = _cells(d, row.result)
        table.rows.append(
            [
                d.name(locale),
                _("dimension:" + d.dimension),
                value,
                numerator,
                denominator,
                status,
                d.unit,
                d.target,
                d.numerator,
                d.denominator or "",
            ]
        )
    trend = Table(_("Trend over 12 months"), [_("Indicator"), *overview.months])
    for row in overview.rows:
        trend.rows.append(
            [row.definition.name(locale)]
            + [rounded(v, row.definition.decimals) for _m, v in row.trend]
        )
    return [table, trend]


def breakdown_table(breakdown: Breakdown) -> list[Table]:
    d = breakdown.definition
    title = f"{d.name(get_locale())} {breakdown.period}"
    headers = [
        _("Institution") if breakdown.by == "institution" else _("Township"),
        _("Level"),
        _("Value"),
        _("Numerator"),
        _("Denominator"),
        _("Status"),
    ]
    table = Table(title, headers)
    table.rows.append([_("Consortium total"), "", *_cells(d, breakdown.total)])
    for row in breakdown.rows:
        level = _("level:" + row.level) if row.level else ""
        table.rows.append([row.label, level, *_cells(d, row.result)])
    return [table]


def monthly_table(
    definition: Definition, label: str, series: list[tuple[str, Result]]
) -> list[Table]:
    title = f"{definition.name(get_locale())} {label}"
    table = Table(title, [_("Month"), _("Value"), _("Numerator"), _("Denominator"), _("Status")])
    for month, result in series:
        table.rows.append([month, *_cells(definition, result)])
    return [table]


def spectrum_tables(spectrum: Spectrum, labels: dict[str, str]) -> list[Table]:
    locale = get_locale()
    matrix = Table(
        f"{_('Disease spectrum')} {spectrum.period}",
        [_("ICD-10 chapter"), *(labels.get(g, g) for g in spectrum.groups)],
    )
    for chapter in spectrum.chapters:
        matrix.rows.append(
            [f"{chapter} {_('chapter:' + chapter)}"]
            + [spectrum.cells.get((g, chapter), 0) for g in spectrum.groups]
        )
    codes = Table(
        _("Top diagnoses"),
        [
            _("ICD-10 code"),
            _("Diagnosis"),
            _("ICD-10 chapter"),
            _("Visits"),
            *(f"{_('level:' + lv)} %" for lv in LEVELS),
        ],
    )
    for row in spectrum.codes:
        name = row.name_zh if locale == "zh_CN" else row.name_en
        codes.rows.append(
            [row.code, name, row.chapter, row.visits, *(round(row.share(lv), 1) for lv in LEVELS)]
        )
    return [matrix, codes]
