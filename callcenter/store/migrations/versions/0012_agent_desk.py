"""The agent desk: each agent's current screen-pop and softphone credentials.

Revision ID: 0012_agent_desk
Revises: 0011_queues
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_agent_desk"
down_revision = "0011_queues"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "queue_screen_pops",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("caller_channel", sa.String(length=128), nullable=False),
        sa.Column("agent_channel", sa.String(length=128), nullable=False),
        sa.Column("caller_number", sa.String(length=64), nullable=True),
        sa.Column("caller_name", sa.String(length=128), nullable=True),
        sa.Column("offered_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ivr_path", sa.String(length=255), nullable=True),
        sa.Column("ivr_language", sa.String(length=16), nullable=True),
        sa.Column("ivr_ticket", sa.String(length=32), nullable=True),
        sa.Column("ivr_verified", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["queue_agents.id"], ondelete="CASCADE",
                                name=op.f("fk_queue_screen_pops_agent_id_queue_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_queue_screen_pops")),
    )
    op.create_table(
        "queue_softphones",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=16), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        sa.Column("md5_cred", sa.String(length=32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["queue_agents.id"], ondelete="CASCADE",
                                name=op.f("fk_queue_softphones_agent_id_queue_agents")),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_queue_softphones")),
    )


def downgrade() -> None:
    op.drop_table("queue_softphones")
    op.drop_table("queue_screen_pops")
