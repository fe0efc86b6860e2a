"""the run's promises under faults: watermark compare-and-set and records ahead of it; unfinished runs index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNFINISHED = "status IN ('running', 'deferred')"


def upgrade() -> None:
    with op.batch_alter_table("automations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watermark_ahead", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("watermark_version", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_runs_unfinished", "runs", ["automation_id", "scheduled_for"], unique=False,
                    sqlite_where=sa.text(UNFINISHED), postgresql_where=sa.text(UNFINISHED))


def downgrade() -> None:
    op.drop_index("ix_runs_unfinished", table_name="runs")
    with op.batch_alter_table("automations", schema=None) as batch_op:
        batch_op.drop_column("watermark_version")
        batch_op.drop_column("watermark_ahead")
