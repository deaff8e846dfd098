"""Revisit appeals carry evidence (text and attachment references), who filed them and the
office's decision note; a unit's appeals are listed by filing time.

Revision ID: 0018_revisit_appeals
Revises: 0017_revisit_messages
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_revisit_appeals"
down_revision = "0017_revisit_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("revisit_appeals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", sa.Text(), nullable=True))
        # the default only fills the appeals filed before; the model sets every value
        batch_op.add_column(sa.Column("attachments", sa.JSON(), nullable=False,
                                      server_default="[]"))
        batch_op.add_column(sa.Column("filed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decision_note", sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_revisit_appeals_filed_by_users"), "users",
                                    ["filed_by"], ["id"])
        batch_op.create_index("ix_revisit_appeals_unit_filed", ["unit_id", "filed_at"],
                              unique=False)
    with op.batch_alter_table("revisit_appeals", schema=None) as batch_op:
        batch_op.alter_column("attachments", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("revisit_appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_revisit_appeals_unit_filed")
        batch_op.drop_constraint(batch_op.f("fk_revisit_appeals_filed_by_users"),
                                 type_="foreignkey")
        batch_op.drop_column("decision_note")
        batch_op.drop_column("filed_by")
        batch_op.drop_column("attachments")
        batch_op.drop_column("evidence")
