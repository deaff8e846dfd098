"""Speech-to-text: one transcript row per recording (claim, attempts, outcome, JSON) and the
draft suggestions made from it, with the agent's verdict.

Revision ID: 0014_speech
Revises: 0014_transfer_pops
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_speech"
down_revision = "0014_transfer_pops"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "speech_transcripts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audio_ref", sa.String(length=300), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("linkedid", sa.String(length=150), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("content", sa.JSON(), nullable=True),
        sa.Column("audio_seconds", sa.Float(), nullable=True),
        sa.Column("decode_seconds", sa.Float(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_speech_transcripts_recording_id_recordings"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_speech_transcripts_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_transcripts")),
        sa.UniqueConstraint("audio_ref", name=op.f("uq_speech_transcripts_audio_ref")),
    )
    with op.batch_alter_table("speech_transcripts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_speech_transcripts_linkedid"), ["linkedid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_speech_transcripts_recording_id"), ["recording_id"], unique=False
        )
        batch_op.create_index(
            "ix_speech_transcripts_status_lease", ["status", "lease_until"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_speech_transcripts_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "speech_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("span_start", sa.Float(), nullable=False),
        sa.Column("span_end", sa.Float(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("needs_confirmation", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("corrected_value", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_speech_suggestions_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_speech_suggestions_ticket_id_tickets")
        ),
        sa.ForeignKeyConstraint(
            ["transcript_id"],
            ["speech_transcripts.id"],
            name=op.f("fk_speech_suggestions_transcript_id_speech_transcripts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_suggestions")),
    )
    with op.batch_alter_table("speech_suggestions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_speech_suggestions_ticket_id"), ["ticket_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_speech_suggestions_transcript_id"), ["transcript_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("speech_suggestions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_speech_suggestions_transcript_id"))
        batch_op.drop_index(batch_op.f("ix_speech_suggestions_ticket_id"))

    op.drop_table("speech_suggestions")
    with op.batch_alter_table("speech_transcripts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_speech_transcripts_ticket_id"))
        batch_op.drop_index("ix_speech_transcripts_status_lease")
        batch_op.drop_index(batch_op.f("ix_speech_transcripts_recording_id"))
        batch_op.drop_index(batch_op.f("ix_speech_transcripts_linkedid"))

    op.drop_table("speech_transcripts")
