"""Auth: a token generation per user, so deactivation and changes revoke old tokens.

Revision ID: 0006_token_generation
Revises: 0005_call_truth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_token_generation"
down_revision = "0005_call_truth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("token_generation", sa.Integer(), server_default="0",
                                     nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_generation")
