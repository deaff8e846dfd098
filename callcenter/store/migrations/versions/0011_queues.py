"""Queues: agents (a user with a softphone), their skills per queue, and every state period.

Revision ID: 0011_queues
Revises: 0010_recordings
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_queues"
down_revision = "0010_recordings"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "queue_agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("member_name", sa.String(length=128), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("interface", sa.String(length=128), nullable=True),
        sa.Column("logged_in", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.String(length=64), nullable=True),
        sa.Column("state_queue", sa.String(length=64), nullable=True),
        sa.Column("state_linkedid", sa.String(length=64), nullable=True),
        sa.Column("state_since", TS, nullable=True),
        sa.Column("after_call_work_until", TS, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_queue_agents_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_agents")),
        sa.UniqueConstraint("interface", name=op.f("uq_queue_agents_interface")),
        sa.UniqueConstraint("user_id", name=op.f("uq_queue_agents_user_id")),
    )
    op.create_table(
        "queue_agent_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["queue_agents.id"], ondelete="CASCADE",
                                name=op.f("fk_queue_agent_periods_agent_id_queue_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_agent_periods")),
    )
    op.create_index("ix_queue_agent_periods_agent_started", "queue_agent_periods",
                    ["agent_id", "started_at"])
    op.create_index("ix_queue_agent_periods_started", "queue_agent_periods", ["started_at"])
    op.create_table(
        "queue_agent_skills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["queue_agents.id"], ondelete="CASCADE",
                                name=op.f("fk_queue_agent_skills_agent_id_queue_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_agent_skills")),
        sa.UniqueConstraint("agent_id", "queue", name="uq_queue_agent_skills"),
    )


def downgrade() -> None:
    op.drop_table("queue_agent_skills")
    op.drop_index("ix_queue_agent_periods_started", table_name="queue_agent_periods")
    op.drop_index("ix_queue_agent_periods_agent_started", table_name="queue_agent_periods")
    op.drop_table("queue_agent_periods")
    op.drop_table("queue_agents")
