"""Revisit campaigns: campaigns, revisits (claims fenced by a token), every dial attempt with
its ChannelId, the do-not-call list and per-order opt-outs.

Revision ID: 0016_revisit
Revises: 0014_speech
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_revisit"
down_revision = "0014_speech"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "revisit_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("claim_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_revisit_campaigns_name")),
    )
    op.create_table(
        "revisits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_outcome", sa.String(length=16), nullable=True),
        sa.Column("lease_token", sa.Integer(), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("score", sa.String(length=4), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("comment_file", sa.String(length=300), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["revisit_campaigns.id"],
                                name=op.f("fk_revisits_campaign_id_revisit_campaigns")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_revisits_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisits")),
    )
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.create_index("ix_revisits_campaign_state_due",
                              ["campaign_id", "state", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_revisits_ticket_id"), ["ticket_id"], unique=False)
    op.create_table(
        "revisit_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revisit_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["revisit_id"], ["revisits.id"],
                                name=op.f("fk_revisit_attempts_revisit_id_revisits")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_attempts")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_revisit_attempts_channel_id")),
    )
    with op.batch_alter_table("revisit_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revisit_attempts_revisit_id"), ["revisit_id"],
                              unique=False)
    op.create_table(
        "revisit_do_not_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["users.id"],
                                name=op.f("fk_revisit_do_not_call_added_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_do_not_call")),
        sa.UniqueConstraint("phone", name=op.f("uq_revisit_do_not_call_phone")),
    )
    op.create_table(
        "revisit_opt_outs",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("by", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_revisit_opt_outs_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name=op.f("fk_revisit_opt_outs_by_users")),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_revisit_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("revisit_opt_outs")
    op.drop_table("revisit_do_not_call")
    with op.batch_alter_table("revisit_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisit_attempts_revisit_id"))
    op.drop_table("revisit_attempts")
    with op.batch_alter_table("revisits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revisits_ticket_id"))
        batch_op.drop_index("ix_revisits_campaign_state_due")
    op.drop_table("revisits")
    op.drop_table("revisit_campaigns")
