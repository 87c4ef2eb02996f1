"""Chinese and English catalogues (Babel .po files compiled in memory at start-up)."""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: Final = ("zh_CN", "en")
CATALOG_DIR = Path(__file__).parent / "i18n"
_current: ContextVar[str] = ContextVar("locale", default="zh_CN")


@cache
def translations(locale: str) -> NullTranslations:
    """Every ``*.po`` of the locale merged: each domain keeps its own catalogue file."""
    merged: Translations | None = None
    for po_path in sorted((CATALOG_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=locale)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = Translations(buffer)
        merged = loaded if merged is None else merged.merge(loaded)
    return merged or NullTranslations()


def set_locale(locale: str) -> None:
    _current.set(locale if locale in LOCALES else LOCALES[0])


def get_locale() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return str(translations(get_locale()).gettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    return str(translations(get_locale()).ngettext(singular, plural, n))


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick zh_CN or en from an Accept-Language header, honouring q-values."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return default
