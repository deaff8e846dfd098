"""Call truth: queue outcome, IVR end node, hold and transfers, estimated times, back-filled
rows, one Linkedid per server (two Asterisk servers may reuse one), per-agent attempts.

Revision ID: 0005_call_truth
Revises: 0004_supervision
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_call_truth"
down_revision = "0004_supervision"
branch_labels = None
depends_on = None

def _new_columns() -> tuple[sa.Column, ...]:
    """Fresh objects each time: a Column belongs to one table once added."""
    return (
        sa.Column("queue_outcome", sa.String(length=16), nullable=True),
        sa.Column("transfer_type", sa.String(length=16), nullable=True),
        sa.Column("transferred_to", sa.String(length=128), nullable=True),
        sa.Column("ivr_node", sa.String(length=64), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=False, server_default="0"),
        sa.Column("start_estimated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("answer_estimated", sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column("backfilled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def upgrade() -> None:
    # batch mode: SQLite can only change constraints by rebuilding the table
    with op.batch_alter_table("call_log") as batch:
        for column in _new_columns():
            batch.add_column(column)
        batch.drop_constraint("uq_call_log_linkedid", type_="unique")
        batch.create_unique_constraint("uq_call_log_pbx_linkedid", ["pbx", "linkedid"])
    # the defaults only filled the existing rows; the models set every value themselves
    with op.batch_alter_table("call_log") as batch:
        for column in _new_columns():
            if column.server_default is not None:
                batch.alter_column(column.name, server_default=None)
    op.create_table(
        "call_agent_attempt",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("agent_name", sa.String(length=128), nullable=False),
        sa.Column("interface", sa.String(length=128), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ring_seconds", sa.Float(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("complete_reason", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_agent_attempt")),
        sa.UniqueConstraint("pbx", "linkedid", "interface", "called_at",
                            name="uq_call_agent_attempt_key"),
    )
    op.create_index("ix_call_agent_attempt_agent_called_at", "call_agent_attempt",
                    ["agent_name", "called_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_call_agent_attempt_agent_called_at", table_name="call_agent_attempt")
    op.drop_table("call_agent_attempt")
    with op.batch_alter_table("call_log") as batch:
        batch.drop_constraint("uq_call_log_pbx_linkedid", type_="unique")
        batch.create_unique_constraint("uq_call_log_linkedid", ["linkedid"])
        for column in reversed(_new_columns()):
            batch.drop_column(column.name)
