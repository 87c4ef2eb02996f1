"""ICD-10 chapters (WHO 2019 ranges): the disease spectrum groups codes by chapter."""

from __future__ import annotations

from typing import Final

# (chapter, first code, last code): a code belongs to the chapter whose range holds its
# first three characters.
CHAPTERS: Final = (
    ("I", "A00", "B99"),
    ("II", "C00", "D48"),
    ("III", "D50", "D89"),
    ("IV", "E00", "E90"),
    ("V", "F00", "F99"),
    ("VI", "G00", "G99"),
    ("VII", "H00", "H59"),
    ("VIII", "H60", "H95"),
    ("IX", "I00", "I99"),
    ("X", "J00", "J99"),
    ("XI", "K00", "K93"),
    ("XII", "L00", "L99"),
    ("XIII", "M00", "M99"),
    ("XIV", "N00", "N99"),
    ("XV", "O00", "O99"),
    ("XVI", "P00", "P96"),
    ("XVII", "Q00", "Q99"),
    ("XVIII", "R00", "R99"),
    ("XIX", "S00", "T98"),
    ("XX", "V01", "Y98"),
    ("XXI", "Z00", "Z99"),
    ("XXII", "U00", "U99"),
)
CHAPTER_ORDER: Final = tuple(c for c, _, _ in CHAPTERS)


def chapter(code: str) -> str:
    head = code.strip().upper()[:3]
    if len(head) < 3:
        return ""
    for name, first, last in CHAPTERS:
        if first <= head <= last:
            return name
    return ""
