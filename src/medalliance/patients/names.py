"""Chinese names as the matcher sees them: toneless pinyin with the surname first.

``to_pinyin("王晓明") == "wang xiaoming"``: homophones typed with a pinyin IME (王小明) share
it, which is why both blocking and comparison work on pinyin as well as on characters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from pypinyin import Style, lazy_pinyin

from medalliance.kit.text import fold

# Surname readings that differ from the character's everyday reading.
_SURNAME_READINGS: Final = {"曾": "zeng", "覃": "qin", "单": "shan", "解": "xie", "仇": "qiu"}
# Two-character surnames: the first token of the pinyin covers both characters.
COMPOUND_SURNAMES: Final = frozenset({"欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟"})
_NOT_LETTERS: Final = re.compile(r"[^a-z ]+")
# Names a clerk gives before the person's own is known: an unidentified emergency patient
# (无名氏, 无名男2, 无名氏(女), 急诊无名氏, 未知男性) or a newborn named after the mother
# (王芳之子, 王芳之女, 王芳男婴, 王芳大宝, 王芳双胎1). Two such records share the name
# without being one person. Matched after brackets and spaces are taken out.
_UNIDENTIFIED: Final = re.compile(
    r"^(急诊|门诊|住院)?(无名氏?|未知|不详|未名|姓名不详|unknown|johndoe|janedoe)"
    r"(男性?|女性?)?([0-9a-z]+|[甲乙丙丁一二三四五六七八九十]+)?(男性?|女性?)?$"
)
_NEWBORN: Final = re.compile(
    r"(之子|之女|之婴|男婴|女婴|婴儿|新生儿|双胎|双胞胎)[0-9一二三大小]*$"
    r"|^..+(大宝|二宝|小宝)[0-9]*$"  # the mother's full name first: 王大宝 is a name
)
_BRACKETED: Final = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]|[\s\-_#.·]")


def normalise_name(raw: str) -> str:
    """Full-width folded, inner whitespace removed for Chinese, single spaces for Latin."""
    folded = unicodedata.normalize("NFKC", raw).strip()
    if is_latin(folded):
        return " ".join(folded.split())
    return "".join(folded.split())


def to_pinyin(name: str) -> str:
    """``surname given`` in toneless lower-case pinyin; Latin names are folded (case and
    accents gone: "José" is jose, "Zhāng Wěi" zhang wei), as name search folds them."""
    name = normalise_name(name)
    if not name:
        return ""
    if is_latin(name):
        return _NOT_LETTERS.sub("", fold(name)).strip()
    split = 2 if name[:2] in COMPOUND_SURNAMES else 1
    surname, given = name[:split], name[split:]
    head = _SURNAME_READINGS.get(surname) or "".join(_syllables(surname))
    tail = "".join(_syllables(given))
    return f"{head} {tail}".strip()


def surname_length(name: str) -> int:
    """How many leading characters of a Chinese name are the surname."""
    return 2 if name[:2] in COMPOUND_SURNAMES else 1


def surname_key(pinyin: str) -> str:
    """The blocking key of a pinyin name: its first token."""
    return pinyin.split(" ", 1)[0]


def compact(pinyin: str) -> str:
    return pinyin.replace(" ", "")


@lru_cache(maxsize=65536)
def _syllables(text: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(text, style=Style.NORMAL, errors="ignore"))


def is_latin(text: str) -> bool:
    """Written in Latin letters, accented ones included ("José García"): no character
    from the CJK blocks on."""
    return all(ord(ch) < 0x2E80 for ch in text)


def is_provisional(name: str) -> bool:
    """A placeholder name (see ``_UNIDENTIFIED``, ``_NEWBORN``), not the person's own."""
    folded = _BRACKETED.sub("", normalise_name(name).lower())
    return bool(_UNIDENTIFIED.match(folded) or _NEWBORN.search(folded))
