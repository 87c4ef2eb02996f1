"""Text as string search compares it: without case or accents (FHIR R4 string search)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """``text`` with case and accents gone, as R4 string search matches ("José", "JOSE"
    and "jose" fold alike): compatibility-decomposed (NFKD: full-width forms become their
    ASCII, as the patient index folds them), combining marks dropped, case-folded, then
    recomposed (NFC: Hangul stays syllables). Chinese characters are left as they are."""
    if text.isascii():  # most values: lower-casing is all there is to do
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare.casefold())
