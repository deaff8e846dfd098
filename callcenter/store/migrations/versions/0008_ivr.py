"""IVR: run-time announcement switches, ticket PINs for phone lookups, lookup attempts.

Revision ID: 0008_ivr
Revises: 0007_ticket_practice
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_ivr"
down_revision = "0007_ticket_practice"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ivr_announcements",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"],
                                name=op.f("fk_ivr_announcements_updated_by_users")),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_ivr_announcements")),
    )
    op.create_table(
        "ivr_ticket_pins",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("pin_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ivr_ticket_pins_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ivr_ticket_pins")),
    )
    op.create_table(
        "ivr_verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("caller_number", sa.String(length=32), nullable=False),
        sa.Column("ticket_number", sa.String(length=32), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_verifications")),
    )
    op.create_index("ix_ivr_verifications_caller_at", "ivr_verifications",
                    ["caller_number", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ivr_verifications_caller_at", table_name="ivr_verifications")
    op.drop_table("ivr_verifications")
    op.drop_table("ivr_ticket_pins")
    op.drop_table("ivr_announcements")
