"""finding fillfactor: room on each page for the nightly rewrite of findings

Every night an audit rewrites most live findings: their details hold the day's
figures (today, days since a change, days open). On PostgreSQL a new row version
that fits on its own page is a heap-only update, which writes no index entry; a
full page sends it to another page and updates all four indexes of ``finding``.
Pages filled to 70 % leave that room (measured at 1,000,000 opportunities: a
night's audit 41 s instead of 57 s). The setting is a catalog change: pages written
from now on keep the room, existing ones as their rows are rewritten. SQLite
rewrites rows in place and has no such setting.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE finding SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE finding RESET (fillfactor)")
