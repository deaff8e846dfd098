"""Queue history: statistics per queue and per agent for each 15-minute interval.

Revision ID: 0013_queue_history
Revises: 0012_agent_desk
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_queue_history"
down_revision = "0012_agent_desk"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "queue_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("interval_start", TS, nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.Column("timeouts", sa.Integer(), nullable=False),
        sa.Column("other_exits", sa.Integer(), nullable=False),
        sa.Column("answered_within_target", sa.Integer(), nullable=False),
        sa.Column("wait_seconds", sa.Float(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("hold_seconds", sa.Float(), nullable=False),
        sa.Column("wrap_seconds", sa.Float(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_intervals")),
        sa.UniqueConstraint("queue", "interval_start", name="uq_queue_intervals"),
    )
    op.create_index(op.f("ix_queue_intervals_interval_start"), "queue_intervals",
                    ["interval_start"])
    op.create_table(
        "queue_agent_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("interval_start", TS, nullable=False),
        sa.Column("login_seconds", sa.Float(), nullable=False),
        sa.Column("available_seconds", sa.Float(), nullable=False),
        sa.Column("ringing_seconds", sa.Float(), nullable=False),
        sa.Column("on_call_seconds", sa.Float(), nullable=False),
        sa.Column("on_hold_seconds", sa.Float(), nullable=False),
        sa.Column("after_call_work_seconds", sa.Float(), nullable=False),
        sa.Column("paused_seconds", sa.Float(), nullable=False),
        sa.Column("paused_by_reason", sa.JSON(), nullable=False),
        sa.Column("calls_offered", sa.Integer(), nullable=False),
        sa.Column("calls_answered", sa.Integer(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["queue_agents.id"], ondelete="CASCADE",
                                name=op.f("fk_queue_agent_intervals_agent_id_queue_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_agent_intervals")),
        sa.UniqueConstraint("agent_id", "interval_start", name="uq_queue_agent_intervals"),
    )
    op.create_index(op.f("ix_queue_agent_intervals_interval_start"), "queue_agent_intervals",
                    ["interval_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_queue_agent_intervals_interval_start"),
                  table_name="queue_agent_intervals")
    op.drop_table("queue_agent_intervals")
    op.drop_index(op.f("ix_queue_intervals_interval_start"), table_name="queue_intervals")
    op.drop_table("queue_intervals")
