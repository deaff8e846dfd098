"""Screen-pops of calls transferred to an agent's phone name who passed them on.

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


def downgrade() -> None:
    with op.batch_alter_table("queue_screen_pops") as batch:
        batch.drop_column("transferred_by")
