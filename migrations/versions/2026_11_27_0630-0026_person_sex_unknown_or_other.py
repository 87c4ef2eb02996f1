"""patients: a person's and a local record's sex may be unknown or other (FHIR
administrative-gender), instead of refusing the registration

Before, an ADT with PID-8 U (an unconscious patient) and no ID number to read the sex
from was an AE, which interface engines rarely resend.

As in 0023, SQLite recreates the tables to change a check constraint, with foreign keys
off around it when persons exist.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-27 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("person", "local_record")
_WIDE = "sex IN ('male', 'female', 'other', 'unknown')"
_NARROW = "sex IN ('male', 'female')"


def upgrade() -> None:
    _sex_check(_WIDE)


def downgrade() -> None:
    """Fails while a sex is unknown or other."""
    _sex_check(_NARROW)


def _sex_check(condition: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        _replace(condition)
        return
    if op.get_bind().execute(sa.text("SELECT 1 FROM person LIMIT 1")).first() is None:
        _replace(condition)  # nothing refers to a person: nothing to break
        return
    context = op.get_context()
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    try:
        _replace(condition)
    finally:
        with context.autocommit_block():
            op.execute("PRAGMA foreign_keys=ON")


def _replace(condition: str) -> None:
    for table in _TABLES:
        name = op.f(f"ck_{table}_sex_valid")
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(name, type_="check")
            batch.create_check_constraint(name, condition)
