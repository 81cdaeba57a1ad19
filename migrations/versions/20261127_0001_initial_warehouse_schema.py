"""initial warehouse schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 17:13:07.074162
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import sfsync.warehouse.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "currency_type",
        sa.Column("iso_code", sa.String(length=3), nullable=True),
        sa.Column("conversion_rate", sa.Float(precision=53), nullable=True),
        sa.Column("decimal_places", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("is_corporate", sa.Boolean(), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_currency_type")),
    )
    with op.batch_alter_table("currency_type", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_currency_type_iso_code"), ["iso_code"], unique=False)

    op.create_table(
        "opportunity",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("account_id", sa.String(length=18), nullable=True),
        sa.Column("owner_id", sa.String(length=18), nullable=True),
        sa.Column("record_type_id", sa.String(length=18), nullable=True),
        sa.Column("stage_name", sa.String(length=255), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("amount", sa.Float(precision=53), nullable=True),
        sa.Column("currency_iso_code", sa.String(length=3), nullable=True),
        sa.Column("probability", sa.Float(precision=53), nullable=True),
        sa.Column("forecast_category_name", sa.String(length=64), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("is_won", sa.Boolean(), nullable=True),
        sa.Column("created_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("created_by_id", sa.String(length=18), nullable=True),
        sa.Column("last_modified_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("last_modified_by_id", sa.String(length=18), nullable=True),
        sa.Column("last_stage_change_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("rev_rec_terms", sa.Text(), nullable=True),
        sa.Column("instrument_flag", sa.Boolean(), nullable=True),
        sa.Column("scope_value", sa.String(length=255), nullable=True),
        sa.Column("last_human_modified_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("last_human_modified_by_id", sa.String(length=18), nullable=True),
        sa.Column(
            "last_human_assumed", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
        ),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity")),
    )
    with op.batch_alter_table("opportunity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_opportunity_open_close_date", ["is_closed", "close_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_opportunity_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index("ix_opportunity_system_modstamp", ["system_modstamp"], unique=False)

    op.create_table(
        "opportunity_history",
        sa.Column("opportunity_id", sa.String(length=18), nullable=True),
        sa.Column("stage_name", sa.String(length=255), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("amount", sa.Float(precision=53), nullable=True),
        sa.Column("probability", sa.Float(precision=53), nullable=True),
        sa.Column("forecast_category", sa.String(length=64), nullable=True),
        sa.Column("created_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("created_by_id", sa.String(length=18), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_history")),
    )
    with op.batch_alter_table("opportunity_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_opportunity_history_opp_created",
            ["opportunity_id", "created_date", "id"],
            unique=False,
        )

    op.create_table(
        "opportunity_line_item",
        sa.Column("opportunity_id", sa.String(length=18), nullable=True),
        sa.Column("product2_id", sa.String(length=18), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("quantity", sa.Float(precision=53), nullable=True),
        sa.Column("unit_price", sa.Float(precision=53), nullable=True),
        sa.Column("total_price", sa.Float(precision=53), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_line_item")),
    )
    with op.batch_alter_table("opportunity_line_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opportunity_line_item_opportunity_id"), ["opportunity_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_opportunity_line_item_product2_id"), ["product2_id"], unique=False
        )

    op.create_table(
        "opportunity_snapshot",
        sa.Column("opportunity_id", sa.String(length=18), nullable=False),
        sa.Column("captured_on", sa.Date(), nullable=False),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("stage_name", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.Float(precision=53), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("captured_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "opportunity_id", "captured_on", name=op.f("pk_opportunity_snapshot")
        ),
    )
    op.create_table(
        "opportunity_stage",
        sa.Column("api_name", sa.String(length=255), nullable=True),
        sa.Column("master_label", sa.String(length=255), nullable=True),
        sa.Column("sort_order", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("is_won", sa.Boolean(), nullable=True),
        sa.Column("default_probability", sa.Float(precision=53), nullable=True),
        sa.Column("forecast_category_name", sa.String(length=64), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_stage")),
    )
    with op.batch_alter_table("opportunity_stage", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opportunity_stage_api_name"), ["api_name"], unique=False
        )

    op.create_table(
        "organization",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("fiscal_year_start_month", sa.Integer(), nullable=True),
        sa.Column("time_zone_sid_key", sa.String(length=64), nullable=True),
        sa.Column("default_currency_iso_code", sa.String(length=3), nullable=True),
        sa.Column("is_sandbox", sa.Boolean(), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization")),
    )
    op.create_table(
        "product2",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("product_code", sa.String(length=255), nullable=True),
        sa.Column("family", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product2")),
    )
    op.create_table(
        "record_type",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("developer_name", sa.String(length=255), nullable=True),
        sa.Column("sobject_type", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_type")),
    )
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("ended_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("api_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("counts", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
    )
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index("ix_run_kind_started", ["kind", "started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_status"), ["status"], unique=False)

    op.create_table(
        "run_lock",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_run_lock")),
    )
    op.create_table(
        "sync_state",
        sa.Column("object", sa.String(length=64), nullable=False),
        sa.Column("watermark", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("watermark_field", sa.String(length=64), nullable=False),
        sa.Column("last_full_sync_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("deleted_checked_to", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("last_reconciled_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("rows", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("resume", sfsync.warehouse.types.JsonDocument(), nullable=True),
        sa.Column("described", sfsync.warehouse.types.JsonDocument(), nullable=True),
        sa.PrimaryKeyConstraint("object", name=op.f("pk_sync_state")),
    )
    op.create_table(
        "task",
        sa.Column("what_id", sa.String(length=18), nullable=True),
        sa.Column("owner_id", sa.String(length=18), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.String(length=64), nullable=True),
        sa.Column("activity_date", sa.Date(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("created_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("created_by_id", sa.String(length=18), nullable=True),
        sa.Column("last_modified_date", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("sfsync_key", sa.String(length=255), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_sfsync_key"), ["sfsync_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_what_id"), ["what_id"], unique=False)

    op.create_table(
        "user",
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        sa.Column("manager_id", sa.String(length=18), nullable=True),
        sa.Column("user_type", sa.String(length=64), nullable=True),
        sa.Column("id", sa.String(length=18), nullable=False),
        sa.Column("raw", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("system_modstamp", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("synced_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
    )
    op.create_table(
        "waiver",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("opportunity_id", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("created_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waiver")),
    )
    with op.batch_alter_table("waiver", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waiver_rule_opportunity", ["rule", "opportunity_id"], unique=False
        )

    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("opportunity_id", sa.String(length=18), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("details", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("settings_hash", sa.String(length=64), nullable=False),
        sa.Column("opened_run_id", sa.Integer(), nullable=True),
        sa.Column("resolved_run_id", sa.Integer(), nullable=True),
        sa.Column("last_seen_run_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("resolved_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.Column("opened_as_of", sa.Date(), nullable=True),
        sa.Column("resolved_as_of", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["last_seen_run_id"], ["run.id"], name=op.f("fk_finding_last_seen_run_id_run")
        ),
        sa.ForeignKeyConstraint(
            ["opened_run_id"], ["run.id"], name=op.f("fk_finding_opened_run_id_run")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_run_id"], ["run.id"], name=op.f("fk_finding_resolved_run_id_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding")),
    )
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.create_index(
            "ix_finding_opportunity_rule", ["opportunity_id", "rule"], unique=False
        )
        batch_op.create_index("ix_finding_status_rule", ["status", "rule"], unique=False)
        batch_op.create_index(
            "uq_finding_live_rule_opportunity",
            ["rule", "opportunity_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'waived')"),
            postgresql_where=sa.text("status IN ('open', 'waived')"),
        )

    op.create_table(
        "writeback_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("opportunity_id", sa.String(length=18), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("salesforce_id", sa.String(length=18), nullable=True),
        sa.Column("owner_id", sa.String(length=18), nullable=True),
        sa.Column("original_owner_id", sa.String(length=18), nullable=True),
        sa.Column("reassigned_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("payload", sfsync.warehouse.types.JsonDocument(), nullable=False),
        sa.Column("created_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("updated_at", sfsync.warehouse.types.UtcDateTime(), nullable=False),
        sa.Column("confirmed_at", sfsync.warehouse.types.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["finding_id"], ["finding.id"], name=op.f("fk_writeback_ledger_finding_id_finding")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_writeback_ledger_run_id_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback_ledger")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_writeback_ledger_idempotency_key")),
    )
    with op.batch_alter_table("writeback_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "ix_writeback_ledger_opportunity_rule", ["opportunity_id", "rule"], unique=False
        )
        batch_op.create_index("ix_writeback_ledger_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("writeback_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_writeback_ledger_state")
        batch_op.drop_index("ix_writeback_ledger_opportunity_rule")

    op.drop_table("writeback_ledger")
    with op.batch_alter_table("finding", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_finding_live_rule_opportunity",
            sqlite_where=sa.text("status IN ('open', 'waived')"),
            postgresql_where=sa.text("status IN ('open', 'waived')"),
        )
        batch_op.drop_index("ix_finding_status_rule")
        batch_op.drop_index("ix_finding_opportunity_rule")

    op.drop_table("finding")
    with op.batch_alter_table("waiver", schema=None) as batch_op:
        batch_op.drop_index("ix_waiver_rule_opportunity")

    op.drop_table("waiver")
    op.drop_table("user")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_what_id"))
        batch_op.drop_index(batch_op.f("ix_task_sfsync_key"))

    op.drop_table("task")
    op.drop_table("sync_state")
    op.drop_table("run_lock")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_status"))
        batch_op.drop_index("ix_run_kind_started")

    op.drop_table("run")
    op.drop_table("record_type")
    op.drop_table("product2")
    op.drop_table("organization")
    with op.batch_alter_table("opportunity_stage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opportunity_stage_api_name"))

    op.drop_table("opportunity_stage")
    op.drop_table("opportunity_snapshot")
    with op.batch_alter_table("opportunity_line_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opportunity_line_item_product2_id"))
        batch_op.drop_index(batch_op.f("ix_opportunity_line_item_opportunity_id"))

    op.drop_table("opportunity_line_item")
    with op.batch_alter_table("opportunity_history", schema=None) as batch_op:
        batch_op.drop_index("ix_opportunity_history_opp_created")

    op.drop_table("opportunity_history")
    with op.batch_alter_table("opportunity", schema=None) as batch_op:
        batch_op.drop_index("ix_opportunity_system_modstamp")
        batch_op.drop_index(batch_op.f("ix_opportunity_owner_id"))
        batch_op.drop_index("ix_opportunity_open_close_date")

    op.drop_table("opportunity")
    with op.batch_alter_table("currency_type", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_currency_type_iso_code"))

    op.drop_table("currency_type")
