"""Folding for string search: case and accents go; Chinese characters stay."""

from __future__ import annotations

import pytest

from medalliance.kit.text import fold


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("José", "jose"),
        ("JOSÉ", "jose"),
        ("Zhāng Wěi", "zhang wei"),
        ("Straße", "strasse"),
        ("ＣＴ", "ct"),  # full-width letters: their ASCII
        ("한국", "한국"),  # Hangul recomposed, not left as jamo
    ],
)
def test_case_and_accents_go(written: str, folded: str) -> None:
    assert fold(written) == folded


@pytest.mark.parametrize(
    "chinese", ["张伟", "全血血红蛋白测定", "阿依古丽·买买提", "高血压、糖尿病。", "𠈌"]
)
def test_chinese_text_is_left_as_it_is(chinese: str) -> None:
    assert fold(chinese) == chinese
