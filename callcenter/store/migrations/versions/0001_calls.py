"""Call log: one row per call (Linkedid).

Revision ID: 0001_calls
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_calls"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("caller_number", sa.String(length=64), nullable=True),
        sa.Column("called_number", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("agent_name", sa.String(length=128), nullable=True),
        sa.Column("agent_interface", sa.String(length=128), nullable=True),
        sa.Column("ivr_path", sa.String(length=255), nullable=True),
        sa.Column("recording_file", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("end_estimated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_log")),
        sa.UniqueConstraint("linkedid", name=op.f("uq_call_log_linkedid")),
    )
    op.create_index(op.f("ix_call_log_queue"), "call_log", ["queue"], unique=False)
    op.create_index(op.f("ix_call_log_started_at"), "call_log", ["started_at"], unique=False)
    op.create_index("ix_call_log_pbx_ended_at", "call_log", ["pbx", "ended_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_call_log_pbx_ended_at", table_name="call_log")
    op.drop_index(op.f("ix_call_log_started_at"), table_name="call_log")
    op.drop_index(op.f("ix_call_log_queue"), table_name="call_log")
    op.drop_table("call_log")
