"""patients: the pinyin of a name written in Latin letters is folded (case and accents
gone), no longer stripped of its accented letters ("José García" was "jos garca", now
"jose garcia"), so that Patient name search, which folds the value searched as the
records' string search does, finds it

Only persons whose name is in Latin letters with some beyond ASCII are read (a Chinese
name's pinyin is unchanged). Their ``updated_at`` moves: the pinyin is one of the names
their Patient resource shows.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-27 10:30:00.000000
"""

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import medalliance.db

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_NOT_LETTERS = re.compile(r"[^a-z ]+")
# ``names._is_latin``: every character below the CJK radicals.
_LATIN_END = 0x2E80

persons = sa.table(
    "person",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("pinyin", sa.String),
    sa.column("updated_at", medalliance.db.UTCDateTime(timezone=True)),
)


def latin_pinyin(name: str) -> str:
    """``names.to_pinyin`` of a Latin name as of this revision (it may change later)."""
    decomposed = unicodedata.normalize("NFKD", _normal(name))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_LETTERS.sub("", unicodedata.normalize("NFC", bare.casefold())).strip()


def _stripped_pinyin(name: str) -> str:
    """The pinyin of a Latin name before this revision: accented letters dropped."""
    return _NOT_LETTERS.sub("", _normal(name).lower()).strip()


def _normal(name: str) -> str:
    """``names.normalise_name`` of a Latin name."""
    return " ".join(unicodedata.normalize("NFKC", name).split())


def _is_latin(name: str) -> bool:
    return all(ord(ch) < _LATIN_END for ch in _normal(name))


def _maybe_latin_beyond_ascii(dialect: str) -> sa.ColumnElement[bool]:
    """Names with a character beyond ASCII and none past the Latin ones, full-width forms
    aside (NFKC makes them ASCII): a superset of those whose pinyin changes."""
    beyond_ascii = "[\x80-\u2e7f\uff00-\uffef]"
    not_latin = "[\u2e80-\ufeff\ufff0-\U0010ffff]"
    name = persons.c.name
    if dialect == "postgresql":
        return sa.and_(
            name.op("~", is_comparison=True)(beyond_ascii),
            name.op("!~", is_comparison=True)(not_latin),
        )
    return sa.and_(
        name.op("GLOB", is_comparison=True)(f"*{beyond_ascii}*"),
        sa.not_(name.op("GLOB", is_comparison=True)(f"*{not_latin}*")),
    )


def upgrade() -> None:
    _repinyin(latin_pinyin)


def downgrade() -> None:
    _repinyin(_stripped_pinyin)


def _repinyin(pinyin_of: Callable[[str], str]) -> None:
    bind = op.get_bind()
    candidates = _maybe_latin_beyond_ascii(bind.dialect.name)
    update = (
        persons.update()
        .where(persons.c.id == sa.bindparam("b_id"))
        .values(pinyin=sa.bindparam("new_pinyin"), updated_at=datetime.now(UTC))
    )
    after = ""
    while True:
        batch = bind.execute(
            sa.select(persons.c.id, persons.c.name, persons.c.pinyin)
            .where(persons.c.id > after, candidates)
            .order_by(persons.c.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        changed = [
            {"b_id": p.id, "new_pinyin": new}
            for p in batch
            if _is_latin(p.name) and (new := pinyin_of(p.name)) != p.pinyin
        ]
        if changed:
            bind.execute(update, changed)
        after = batch[-1].id
