"""The disease spectrum: which diagnoses (ICD-10 chapters and codes) the residents of
each township, age band or sex are seen for, and at which level they are treated."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.orm import Session

from medalliance.care_levels import service as care_levels
from medalliance.errors import ValidationFailed
from medalliance.indicators import repository
from medalliance.indicators.icd import CHAPTER_ORDER
from medalliance.indicators.periods import Period
from medalliance.registry.enums import InstitutionLevel

GROUPS: Final = {"township": "township_code", "age_band": "age_band", "sex": "sex"}
LEVELS: Final = tuple(level.value for level in InstitutionLevel)


@dataclass(frozen=True)
class CodeRow:
    code: str
    name_zh: str
    name_en: str
    chapter: str
    visits: int
    by_level: dict[str, int]

    def share(self, level: str) -> float:
        return self.by_level.get(level, 0) / self.visits * 100 if self.visits else 0.0


@dataclass
class Spectrum:
    period: Period
    by: str
    groups: list[str] = field(default_factory=list)
    chapters: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], int] = field(default_factory=dict)
    codes: list[CodeRow] = field(default_factory=list)
    total: int = 0


def spectrum(
    db: Session,
    period: Period,
    by: str,
    *,
    age_band: str | None = None,
    sex: str | None = None,
    top: int = 20,
) -> Spectrum:
    if by not in GROUPS:
        raise ValidationFailed(f"by: one of {', '.join(GROUPS)}", field="by")
    rows = repository.spectrum_rows(db, period.months, GROUPS[by], age_band=age_band, sex=sex)
    result = Spectrum(period, by)
    codes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    chapters: dict[str, str] = {}
    for group, chapter, code, level, visits in rows:
        key = (group, chapter)
        result.cells[key] = result.cells.get(key, 0) + visits
        codes[code][level] += visits
        chapters[code] = chapter
        result.total += visits
    result.groups = sorted({g for g, _ in result.cells})
    present = {c for _, c in result.cells}
    result.chapters = [c for c in CHAPTER_ORDER if c in present] + sorted(
        present - set(CHAPTER_ORDER)
    )
    result.codes = _top_codes(db, codes, chapters, top)
    return result


def _top_codes(
    db: Session, codes: dict[str, dict[str, int]], chapters: dict[str, str], top: int
) -> list[CodeRow]:
    catalogue = care_levels.current(db)
    ranked = sorted(codes.items(), key=lambda item: (-sum(item[1].values()), item[0]))[:top]
    found = []
    for code, by_level in ranked:
        entry = care_levels.lookup(catalogue, code)
        found.append(
            CodeRow(
                code,
                entry.name_zh if entry else "",
                entry.name_en if entry else "",
                chapters[code],
                sum(by_level.values()),
                dict(by_level),
            )
        )
    return found
