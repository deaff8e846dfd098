"""Supervision: notifications outbox, supervision flags and runs, ticket terms, knowledge
base; and the daily scan's indexes on tickets.

Revision ID: 0004_supervision
Revises: 0003_tickets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_supervision"
down_revision = "0003_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervision_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("places", sa.JSON(), nullable=False),
        sa.Column("ticket_ids", sa.JSON(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["status_by"], ["users.id"],
                                name=op.f("fk_supervision_flags_status_by_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_supervision_flags_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_flags")),
    )
    op.create_index("ix_supervision_flags_kind_status", "supervision_flags",
                    ["kind", "status", "unit_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("recipient_unit_id", sa.Integer(), nullable=True),
        sa.Column("recipient_role", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("flag_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["flag_id"], ["supervision_flags.id"],
                                name=op.f("fk_notifications_flag_id_supervision_flags")),
        sa.ForeignKeyConstraint(["read_by"], ["users.id"],
                                name=op.f("fk_notifications_read_by_users")),
        sa.ForeignKeyConstraint(["recipient_unit_id"], ["units.id"],
                                name=op.f("fk_notifications_recipient_unit_id_units")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_notifications_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index(op.f("ix_notifications_delivered_at"), "notifications", ["delivered_at"],
                    unique=False)
    op.create_index(op.f("ix_notifications_ticket_id"), "notifications", ["ticket_id"],
                    unique=False)
    op.create_index("ix_notifications_role_read", "notifications",
                    ["recipient_role", "read_at", "id"], unique=False)
    op.create_index("ix_notifications_unit_read", "notifications",
                    ["recipient_unit_id", "read_at", "id"], unique=False)
    op.create_table(
        "supervision_runs",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_supervision_runs")),
    )
    op.create_table(
        "ticket_terms",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("places", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_terms_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_ticket_terms")),
    )
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"],
                                name=op.f("fk_knowledge_articles_updated_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
    )
    op.create_index(op.f("ix_knowledge_articles_topic"), "knowledge_articles", ["topic"],
                    unique=False)
    op.create_table(
        "knowledge_terms",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["knowledge_articles.id"], ondelete="CASCADE",
            name=op.f("fk_knowledge_terms_article_id_knowledge_articles")),
        sa.PrimaryKeyConstraint("article_id", "term", name=op.f("pk_knowledge_terms")),
    )
    op.create_index("ix_knowledge_terms_term", "knowledge_terms", ["term", "article_id"],
                    unique=False)
    # The daily scan reads open orders near or past a deadline, never the archive.
    op.create_index("ix_tickets_status_reply_due_at", "tickets", ["status", "reply_due_at"],
                    unique=False)
    op.create_index("ix_tickets_status_acceptance_due_at", "tickets",
                    ["status", "acceptance_due_at"], unique=False)
    op.create_index("ix_tickets_status_first_contact", "tickets",
                    ["status", "first_contact_at", "first_contact_due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_status_first_contact", table_name="tickets")
    op.drop_index("ix_tickets_status_acceptance_due_at", table_name="tickets")
    op.drop_index("ix_tickets_status_reply_due_at", table_name="tickets")
    op.drop_index("ix_knowledge_terms_term", table_name="knowledge_terms")
    op.drop_table("knowledge_terms")
    op.drop_index(op.f("ix_knowledge_articles_topic"), table_name="knowledge_articles")
    op.drop_table("knowledge_articles")
    op.drop_table("ticket_terms")
    op.drop_table("supervision_runs")
    op.drop_index("ix_notifications_unit_read", table_name="notifications")
    op.drop_index("ix_notifications_role_read", table_name="notifications")
    op.drop_index(op.f("ix_notifications_ticket_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_delivered_at"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_supervision_flags_kind_status", table_name="supervision_flags")
    op.drop_table("supervision_flags")
