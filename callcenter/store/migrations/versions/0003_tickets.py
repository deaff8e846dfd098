"""Tickets: work orders, unit assignments, the timeline, extensions, calls, daily counters,
search words.

Revision ID: 0003_tickets
Revises: 0002_auth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_tickets"
down_revision = "0002_auth"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ticket_daily_counters",
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_ticket_daily_counters")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("caller_name", sa.String(length=100), nullable=True),
        sa.Column("caller_phone", sa.String(length=32), nullable=True),
        sa.Column("caller_address", sa.String(length=300), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("requester_kind", sa.String(length=20), nullable=False),
        sa.Column("company_name", sa.String(length=200), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("ticket_type", sa.String(length=20), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("handling_mode", sa.String(length=20), nullable=True),
        sa.Column("lead_unit_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        _at("registered_at"),
        _at("dispatched_at"),
        _at("accepted_at"),
        _at("first_contact_at"),
        _at("replied_at"),
        _at("closed_at"),
        _at("archived_at"),
        _at("acceptance_due_at"),
        _at("first_contact_due_at"),
        _at("reply_due_at"),
        sa.Column("promised_completion_date", sa.Date(), nullable=True),
        sa.Column("extension_days", sa.Integer(), nullable=False),
        sa.Column("dispatch_count", sa.Integer(), nullable=False),
        sa.Column("return_count", sa.Integer(), nullable=False),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("not_accepted_reason", sa.String(length=32), nullable=True),
        sa.Column("revisit_result", sa.String(length=32), nullable=True),
        sa.Column("knowledge_article_id", sa.Integer(), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_tickets_created_by_users")),
        sa.ForeignKeyConstraint(["duplicate_of_id"], ["tickets.id"],
                                name=op.f("fk_tickets_duplicate_of_id_tickets")),
        sa.ForeignKeyConstraint(["lead_unit_id"], ["units.id"],
                                name=op.f("fk_tickets_lead_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
    )
    op.create_index("ix_tickets_caller_phone_created_at", "tickets",
                    ["caller_phone", "created_at"], unique=False)
    op.create_index("ix_tickets_created_at_id", "tickets", ["created_at", "id"], unique=False)
    op.create_index(op.f("ix_tickets_duplicate_of_id"), "tickets", ["duplicate_of_id"],
                    unique=False)
    op.create_index("ix_tickets_lead_unit_status", "tickets", ["lead_unit_id", "status"],
                    unique=False)
    op.create_index("ix_tickets_reply_due_at", "tickets", ["reply_due_at"], unique=False)
    op.create_index("ix_tickets_status_created_at_id", "tickets",
                    ["status", "created_at", "id"], unique=False)
    op.create_index("ix_tickets_topic_created_at_id", "tickets", ["topic", "created_at", "id"],
                    unique=False)
    op.create_index("ix_tickets_type_status_created_at_id", "tickets",
                    ["ticket_type", "status", "created_at", "id"], unique=False)
    op.create_table(
        "ticket_words",
        sa.Column("term", sa.String(length=32), nullable=False),
        _at("ticket_created_at", nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_words_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("term", "ticket_created_at", "ticket_id",
                                name=op.f("pk_ticket_words")),
    )
    op.create_table(
        "ticket_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        _at("ticket_created_at", nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _at("dispatched_at", nullable=False),
        _at("accepted_at"),
        _at("replied_at"),
        _at("ended_at"),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_assignments_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_assignments_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_assignments")),
    )
    op.create_index(op.f("ix_ticket_assignments_ticket_id"), "ticket_assignments",
                    ["ticket_id"], unique=False)
    op.create_index("ix_ticket_assignments_unit_list", "ticket_assignments",
                    ["unit_id", "active", "ticket_created_at", "ticket_id"], unique=False)
    op.create_table(
        "ticket_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("recording_ref", sa.String(length=300), nullable=True),
        _at("linked_at", nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_calls_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_calls")),
        sa.UniqueConstraint("ticket_id", "linkedid", name="uq_ticket_calls_ticket_linkedid"),
    )
    op.create_index(op.f("ix_ticket_calls_linkedid"), "ticket_calls", ["linkedid"],
                    unique=False)
    op.create_index(op.f("ix_ticket_calls_ticket_id"), "ticket_calls", ["ticket_id"],
                    unique=False)
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        _at("at", nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"],
                                name=op.f("fk_ticket_events_actor_id_users")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_events_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_events_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index("ix_ticket_events_action_unit", "ticket_events", ["action", "unit_id"],
                    unique=False)
    op.create_index("ix_ticket_events_ticket_id_id", "ticket_events", ["ticket_id", "id"],
                    unique=False)
    op.create_table(
        "ticket_extensions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        _at("requested_at", nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        _at("decided_at"),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"],
                                name=op.f("fk_ticket_extensions_decided_by_users")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"],
                                name=op.f("fk_ticket_extensions_requested_by_users")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_extensions_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_extensions_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_extensions")),
    )
    op.create_index(op.f("ix_ticket_extensions_ticket_id"), "ticket_extensions",
                    ["ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ticket_extensions_ticket_id"), table_name="ticket_extensions")
    op.drop_table("ticket_extensions")
    op.drop_index("ix_ticket_events_ticket_id_id", table_name="ticket_events")
    op.drop_index("ix_ticket_events_action_unit", table_name="ticket_events")
    op.drop_table("ticket_events")
    op.drop_index(op.f("ix_ticket_calls_ticket_id"), table_name="ticket_calls")
    op.drop_index(op.f("ix_ticket_calls_linkedid"), table_name="ticket_calls")
    op.drop_table("ticket_calls")
    op.drop_table("ticket_words")
    op.drop_index("ix_ticket_assignments_unit_list", table_name="ticket_assignments")
    op.drop_index(op.f("ix_ticket_assignments_ticket_id"), table_name="ticket_assignments")
    op.drop_table("ticket_assignments")
    for name in ("ix_tickets_type_status_created_at_id", "ix_tickets_topic_created_at_id",
                 "ix_tickets_status_created_at_id", "ix_tickets_reply_due_at",
                 "ix_tickets_lead_unit_status", "ix_tickets_created_at_id",
                 "ix_tickets_caller_phone_created_at"):
        op.drop_index(name, table_name="tickets")
    op.drop_index(op.f("ix_tickets_duplicate_of_id"), table_name="tickets")
    op.drop_table("tickets")
    op.drop_table("ticket_daily_counters")
