"""Revisit text messages (the survey sent when every call went unanswered) and 1-5 stars on
revisits and on the ticket's revisit records.

Revision ID: 0017_revisit_messages
Revises: 0016_revisit
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_revisit_messages"
down_revision = "0016_revisit"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "revisit_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revisit_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("scale", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_at", TS, nullable=False),
        sa.Column("lease_token", sa.Integer(), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("reply", sa.String(length=16), nullable=True),
        sa.Column("replied_at", TS, nullable=True),
        sa.Column("recorded_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["revisit_id"], ["revisits.id"],
                                name=op.f("fk_revisit_messages_revisit_id_revisits")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_revisit_messages_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_messages")),
        sa.UniqueConstraint("revisit_id", name=op.f("uq_revisit_messages_revisit_id")),
    )
    with op.batch_alter_table("revisit_messages", schema=None) as batch_op:
        batch_op.create_index("ix_revisit_messages_state_next", ["state", "next_at"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_revisit_messages_ticket_id"), ["ticket_id"],
                              unique=False)
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stars", sa.Integer(), nullable=True))
    with op.batch_alter_table("ticket_revisits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stars", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket_revisits", schema=None) as batch_op:
        batch_op.drop_column("stars")
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.drop_column("stars")
    with op.batch_alter_table("revisit_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisit_messages_ticket_id"))
        batch_op.drop_index("ix_revisit_messages_state_next")
    op.drop_table("revisit_messages")
