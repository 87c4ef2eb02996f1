"""records: string search ignores accents as well as case (R4: "case-insensitive and
accent-insensitive"): a string index row's value is folded (NFKD, combining marks
dropped, case-folded), not only lower-cased; ``cased`` keeps the value as written when
folding changed it (``:exact``)

Only rows whose value holds a character outside those that folding leaves alone (ASCII,
Chinese characters, CJK punctuation: most of a Chinese store) are read, and only those
that fold differently are rewritten. A row is folded from what it holds: the value as
written (``cased``), or its lower-cased value when it has none (which folds the same). A
value cut at 255 characters whose kept part loses marks ends a few characters shorter
than a new write of it would (a prefix search of that length, or ``:exact`` of a value
that long, may miss it).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-27 10:00:00.000000
"""

import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_MAX_TEXT = 255

strings = sa.table(
    "fhir_idx_string",
    sa.column("pid", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("value", sa.String),
    sa.column("cased", sa.String),
)
# Characters a lower-cased value may hold that folding leaves as they are (tested): a row
# made of these alone is not read.
LEFT_ALONE = (
    (0x0001, 0x007F),  # ASCII
    (0x00B7, 0x00B7),  # the middle dot of minority names (阿依古丽·买买提)
    (0x2012, 0x2016),  # dashes
    (0x2018, 0x2023),  # quotation marks, bullets
    (0x3001, 0x3029),  # CJK punctuation (、。《》「」【】〔〕)
    (0x3400, 0x9FFF),  # Chinese characters
    (0x20000, 0x2F7FF),  # rarer Chinese characters (extensions B to F, in names)
)
Row = tuple[int, str, str, str | None]
# A row (pid, name, value, cased) rewritten: its new (value, cased).
Refold = Callable[[Row], tuple[str, str | None]]


def fold(text: str) -> str:
    """``medalliance.kit.text.fold`` as of this revision (it may change later)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare.casefold())


def _may_change(dialect: str) -> sa.ColumnElement[bool]:
    kept = "".join(f"{chr(first)}-{chr(last)}" for first, last in LEFT_ALONE)
    if dialect == "postgresql":
        return strings.c.value.op("~", is_comparison=True)(f"[^{kept}]")
    return strings.c.value.op("GLOB", is_comparison=True)(f"*[^{kept}]*")


def _folded(row: Row) -> tuple[str, str | None]:
    _, name, value, cased = row
    if name.endswith(":text"):  # a code's words: searched folded, never kept as written
        return (fold(value)[:_MAX_TEXT], None)
    written = value if cased is None else cased
    folded = fold(written)[:_MAX_TEXT]
    return (folded, None if written == folded else written)


def _lowered(row: Row) -> tuple[str, str | None]:
    _, _, value, cased = row
    if cased is None:  # folding left it as written: lower-casing does too
        return (value, None)
    lowered = cased.lower()[:_MAX_TEXT]
    return (lowered, None if cased == lowered else cased)


def upgrade() -> None:
    bind = op.get_bind()
    _rewrite(bind, _may_change(bind.dialect.name), _folded)


def downgrade() -> None:
    # A code's words (``:text`` rows) stay folded: what they said is not kept. They are
    # then found by a search without its accents only.
    _rewrite(op.get_bind(), strings.c.cased.is_not(None), _lowered)


def _rewrite(bind: sa.Connection, candidates: sa.ColumnElement[bool], refold: Refold) -> None:
    """Rewrites the ``candidates`` rows that ``refold`` changes, a batch of resources
    (pids) at a time: the table has no key, so a row is named by all it holds."""
    update = (
        strings.update()
        .where(
            strings.c.pid == sa.bindparam("b_pid"),
            strings.c.name == sa.bindparam("b_name"),
            strings.c.value == sa.bindparam("b_value"),
            strings.c.cased.is_not_distinct_from(sa.bindparam("b_cased", type_=sa.String)),
        )
        .values(value=sa.bindparam("new_value"), cased=sa.bindparam("new_cased"))
    )
    after = 0
    while True:
        pids = bind.scalars(
            sa.select(strings.c.pid)
            .where(strings.c.pid > after, candidates)
            .distinct()
            .order_by(strings.c.pid)
            .limit(_BATCH)
        ).all()
        if not pids:
            return
        rows = bind.execute(
            sa.select(strings.c.pid, strings.c.name, strings.c.value, strings.c.cased).where(
                strings.c.pid.in_(pids), candidates
            )
        ).all()
        changes = [_change((r.pid, r.name, r.value, r.cased), refold) for r in rows]
        found = [c for c in changes if c is not None]
        if found:
            bind.execute(update, found)
        after = pids[-1]


def _change(row: Row, refold: Refold) -> dict[str, Any] | None:
    pid, name, value, cased = row
    new_value, new_cased = refold(row)
    if (new_value, new_cased) == (value, cased):
        return None
    return {
        "b_pid": pid,
        "b_name": name,
        "b_value": value,
        "b_cased": cased,
        "new_value": new_value,
        "new_cased": new_cased,
    }
