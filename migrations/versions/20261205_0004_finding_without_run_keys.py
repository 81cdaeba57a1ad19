"""finding without foreign keys to run on PostgreSQL: no trigger per finding written

PostgreSQL checks a foreign key with a trigger on every row written. The audit
rewrites most findings every night (their details hold the day's figures), and each
row carries up to three references to ``run`` (opened, last seen, resolved): about
7 µs a row, a night at 1,000,000 opportunities 33 s against 26 s without them.
``run`` is an append-only log (nothing deletes from it), and the audit only writes
the id of the run it created, and committed, before it began. The columns stay; the
checks go. SQLite's own check costs nothing measurable, and dropping a constraint
there means rebuilding the table: SQLite keeps its keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("opened_run_id", "resolved_run_id", "last_seen_run_id")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.drop_constraint(f"fk_finding_{column}_run", "finding", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.create_foreign_key(f"fk_finding_{column}_run", "finding", "run", [column], ["id"])
