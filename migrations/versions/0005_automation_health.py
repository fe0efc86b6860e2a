"""what an operator sees: an automation's health as its runs' ends decide it; the oldest slot awaiting a run

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

AWAITING = "awaiting_slot IS NOT NULL"
#: Existing automations start from their newest finished run (ok / failing), or never_run.
BACKFILL = """
UPDATE automations SET
  last_success_at = (SELECT max(r.finished_at) FROM runs r WHERE r.automation_id = automations.id
                     AND r.status IN ('succeeded', 'below_threshold')),
  health_state = COALESCE((SELECT CASE r.status WHEN 'failed' THEN 'failing' ELSE 'ok' END FROM runs r
                           WHERE r.automation_id = automations.id
                           AND r.status IN ('succeeded', 'below_threshold', 'failed')
                           ORDER BY r.scheduled_for DESC LIMIT 1), 'never_run')
"""


def upgrade() -> None:
    with op.batch_alter_table("automations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_state", sa.String(16), nullable=False,
                                      server_default="never_run"))
        batch_op.add_column(sa.Column("health_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("health_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_success_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("consecutive_failures", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("awaiting_slot", sa.DateTime(), nullable=True))
    op.execute(BACKFILL)
    op.create_index("ix_automations_health", "automations", ["health_state", "status", "health_since"])
    op.create_index("ix_automations_awaiting", "automations", ["awaiting_slot"],
                    sqlite_where=sa.text(AWAITING), postgresql_where=sa.text(AWAITING))


def downgrade() -> None:
    op.drop_index("ix_automations_awaiting", table_name="automations")
    op.drop_index("ix_automations_health", table_name="automations")
    with op.batch_alter_table("automations", schema=None) as batch_op:
        for name in ("awaiting_slot", "consecutive_failures", "last_success_at", "health_reason",
                     "health_since", "health_state"):
            batch_op.drop_column(name)
