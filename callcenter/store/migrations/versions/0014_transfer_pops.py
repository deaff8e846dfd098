"""Screen-pops of calls transferred to an agent's phone name who passed them on; each stay
of a caller in a queue (a visit) is kept, as Asterisk counts its queues.

Revision ID: 0014_transfer_pops
Revises: 0013_queue_history
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_transfer_pops"
down_revision = "0013_queue_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_screen_pops") as batch:
        batch.add_column(sa.Column("transferred_by", sa.String(length=128), nullable=True))
    op.create_table(
        "queue_visits",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("linkedid", sa.String(length=150), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("agent_interface", sa.String(length=128), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("hold_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_visits")),
    )
    op.create_index(op.f("ix_queue_visits_linkedid"), "queue_visits", ["linkedid"])
    op.create_index(op.f("ix_queue_visits_joined_at"), "queue_visits", ["joined_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_queue_visits_joined_at"), table_name="queue_visits")
    op.drop_index(op.f("ix_queue_visits_linkedid"), table_name="queue_visits")
    op.drop_table("queue_visits")
    with op.batch_alter_table("queue_screen_pops") as batch:
        batch.drop_column("transferred_by")
