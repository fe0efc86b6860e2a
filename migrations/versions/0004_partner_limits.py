"""partner limits: a connection's rate_limits override; a run's budget wait, 429s received and resume_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integration_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_limits", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_wait_ms", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("throttled", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("resume_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("resume_at")
        batch_op.drop_column("throttled")
        batch_op.drop_column("budget_wait_ms")
    with op.batch_alter_table("integration_connections", schema=None) as batch_op:
        batch_op.drop_column("rate_limits")
