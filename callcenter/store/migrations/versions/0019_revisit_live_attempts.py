"""Revisit attempts still holding a line are indexed on their own: every claim counts them,
and a campaign's attempts only ever grow.

Revision ID: 0019_revisit_live_attempts
Revises: 0018_revisit_appeals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_revisit_live_attempts"
down_revision = "0018_revisit_appeals"
branch_labels = None
depends_on = None

LIVE = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_revisit_attempts_live", "revisit_attempts", ["revisit_id"],
                    unique=False, postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade() -> None:
    op.drop_index("ix_revisit_attempts_live", table_name="revisit_attempts")
