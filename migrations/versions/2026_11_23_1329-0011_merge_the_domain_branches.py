"""merge the domain branches

Revision ID: 0011
Revises: 0005, 0006, 0007, 0008, 0009, 0010
Create Date: 2026-11-23 13:29:55.641288
"""

from collections.abc import Sequence

revision: str = "0011"
down_revision: str | tuple[str, ...] | None = ("0005", "0006", "0007", "0008", "0009", "0010")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
