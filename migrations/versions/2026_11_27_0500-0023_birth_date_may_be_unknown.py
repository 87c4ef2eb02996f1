"""patients: a person's and a local record's birth date may be unknown (an unidentified
patient registered in the emergency room), instead of refusing the registration

Before, an ADT for 无名氏 with an empty PID-7 was an AE, and interface engines rarely
resend an AE: the visit never reached the shared record.

On SQLite, making a column nullable recreates the table (Alembic's batch mode). Dropping
``person``, which every clinical row refers to, fails while foreign keys are enforced, so
they are off around the recreation; the pragma only takes effect outside a transaction.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("person", "local_record")


def upgrade() -> None:
    _birth_date_nullable(True)


def downgrade() -> None:
    """Fails while a birth date is unknown: there is no date to put in its place."""
    _birth_date_nullable(False)


def _birth_date_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        _alter(nullable)
        return
    if op.get_bind().execute(sa.text("SELECT 1 FROM person LIMIT 1")).first() is None:
        # No person, so no row refers to one: nothing to break (and the caller, e.g. the
        # tests, may hold this connection in a transaction of its own).
        _alter(nullable)
        return
    context = op.get_context()
    with context.autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    try:
        _alter(nullable)
    finally:
        with context.autocommit_block():
            op.execute("PRAGMA foreign_keys=ON")


def _alter(nullable: bool) -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("birth_date", existing_type=sa.Date(), nullable=nullable)
