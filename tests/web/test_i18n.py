"""The catalogues: every domain keeps its own file, merged at start-up, so a msgid
translated differently in two files would show one domain the other's words."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from medalliance.web.i18n import CATALOG_DIR, LOCALES, negotiate


@pytest.mark.parametrize("locale", LOCALES)
def test_no_msgid_is_translated_two_ways(locale: str) -> None:
    seen: dict[str, dict[str, str]] = defaultdict(dict)
    for path in sorted(Path(CATALOG_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po, locale=locale):
                if message.id and message.string:
                    seen[str(message.id)][path.stem] = str(message.string)
    conflicts = {k: v for k, v in seen.items() if len(set(v.values())) > 1}
    assert conflicts == {}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,en;q=0.5,zh;q=0.9", "zh_CN"),
        ("", "zh_CN"),
        ("de", "zh_CN"),
    ],
)
def test_browser_language_picks_the_catalogue(header: str, expected: str) -> None:
    assert negotiate(header, "zh_CN") == expected
