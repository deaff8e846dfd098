"""Recordings (one row per MixMonitor file), their attachments to orders, contact attempts
(click-to-call), and the order's "caller asked not to be contacted" flag.

Revision ID: 0010_recordings
Revises: 0009_reports
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_recordings"
down_revision = "0009_reports"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=150), nullable=False),
        sa.Column("uniqueid", sa.String(length=150), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("store_key", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("stored_at", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("checked_at", TS, nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("pbx", "uniqueid", name="uq_recordings_pbx_uniqueid"),
        sa.UniqueConstraint("store_key", name=op.f("uq_recordings_store_key")),
    )
    op.create_index(op.f("ix_recordings_linkedid"), "recordings", ["linkedid"])
    op.create_index("ix_recordings_status_next_attempt_at", "recordings",
                    ["status", "next_attempt_at"])
    op.create_table(
        "contact_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("pbx", sa.String(length=64), nullable=False),
        sa.Column("linkedid", sa.String(length=150), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("handler_outcome", sa.String(length=20), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_contact_attempts_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_contact_attempts_unit_id_units")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_contact_attempts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempts")),
        sa.UniqueConstraint("pbx", "linkedid", name="uq_contact_attempts_call"),
    )
    op.create_index(op.f("ix_contact_attempts_ticket_id"), "contact_attempts", ["ticket_id"])
    op.create_table(
        "recording_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("attached_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"],
                                name=op.f("fk_recording_attachments_recording_id_recordings")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_recording_attachments_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_attachments")),
        sa.UniqueConstraint("recording_id", "ticket_id", name="uq_recording_attachments_pair"),
    )
    op.create_index(op.f("ix_recording_attachments_recording_id"), "recording_attachments",
                    ["recording_id"])
    op.create_index(op.f("ix_recording_attachments_ticket_id"), "recording_attachments",
                    ["ticket_id"])
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("no_contact", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("no_contact")
    op.drop_table("recording_attachments")
    op.drop_table("contact_attempts")
    op.drop_table("recordings")
