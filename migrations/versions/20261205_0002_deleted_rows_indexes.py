"""deleted rows indexes: count live rows without reading the rows

Each synced object table gets a partial index over the rows marked deleted
(``is_deleted``), which are few. With it, live rows are counted as every row,
through the table's smallest index, less the rows in this one: a nightly sync of
a changed table no longer reads every row for its ``is_deleted``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The object tables as this revision knows them (not imported from the models, which
# move on).
TABLES = (
    "organization",
    "user",
    "record_type",
    "opportunity_stage",
    "currency_type",
    "product2",
    "opportunity",
    "opportunity_line_item",
    "opportunity_history",
    "task",
)


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_deleted",
            table,
            ["id"],
            unique=False,
            sqlite_where=sa.text("is_deleted = 1"),
            postgresql_where=sa.text("is_deleted"),
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_deleted", table_name=table)
