"""Tickets as hotlines run them: lateness kept, plans timed, reviews, sources, urgency,
unit kinds and parents, per-assignment facts, state periods, revisits and reworks.

Existing rows: new ticket columns get "own" / "normal" / not provisional; each unit is a
"department"; each active lead assignment takes its order's current deadlines; each order
gets one open state period from its last change (the history before is in the timeline).

Revision ID: 0007_ticket_practice
Revises: 0006_token_generation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ticket_practice"
down_revision = "0006_token_generation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _ticket_columns() -> list[sa.Column]:
    return [
        sa.Column("direct_answer_approved_by", sa.Integer(), nullable=True),
        sa.Column("external_number", sa.String(length=64), nullable=True),
        sa.Column("order_level", sa.String(length=8), nullable=False, server_default="own"),
        sa.Column("complained_party", sa.String(length=200), nullable=True),
        sa.Column("urgency", sa.String(length=16), nullable=False, server_default="normal"),
        sa.Column("overdue_since", TS, nullable=True),
        sa.Column("deadline_provisional", sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.Column("reply_due_from", TS, nullable=True),
        sa.Column("reply_due_workdays", sa.Integer(), nullable=True),
        sa.Column("plan_due_at", TS, nullable=True),
        sa.Column("plan_replied_at", TS, nullable=True),
        sa.Column("plan_on_time", sa.Boolean(), nullable=True),
        sa.Column("review_conclusion", sa.String(length=16), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
    ]


def _assignment_columns() -> list[sa.Column]:
    return [
        sa.Column("acceptance_due_at", TS, nullable=True),
        sa.Column("accepted_on_time", sa.Boolean(), nullable=True),
        sa.Column("first_contact_due_at", TS, nullable=True),
        sa.Column("first_contact_at", TS, nullable=True),
        sa.Column("first_contact_on_time", sa.Boolean(), nullable=True),
        sa.Column("reply_due_at", TS, nullable=True),
        sa.Column("replied_on_time", sa.Boolean(), nullable=True),
        sa.Column("extension_days", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rework_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("end_note", sa.Text(), nullable=True),
        sa.Column("silent_reported_at", TS, nullable=True),
    ]


def _drop_defaults(table: str, columns: list[sa.Column]) -> None:
    """The defaults only filled the existing rows; the models set every value themselves."""
    with op.batch_alter_table(table) as batch:
        for column in columns:
            if column.server_default is not None:
                batch.alter_column(column.name, server_default=None)


def upgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False,
                                   server_default="department"))
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_units_parent_id_units"), "units", ["parent_id"],
                                 ["id"])
    with op.batch_alter_table("units") as batch:
        batch.alter_column("kind", server_default=None)

    with op.batch_alter_table("tickets") as batch:
        for column in _ticket_columns():
            batch.add_column(column)
        batch.create_index("ix_tickets_provisional", ["deadline_provisional"], unique=False)
        batch.create_foreign_key(op.f("fk_tickets_direct_answer_approved_by_users"), "users",
                                 ["direct_answer_approved_by"], ["id"])
    _drop_defaults("tickets", _ticket_columns())

    with op.batch_alter_table("ticket_assignments") as batch:
        for column in _assignment_columns():
            batch.add_column(column)
    _drop_defaults("ticket_assignments", _assignment_columns())

    op.create_table(
        "ticket_state_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_state_periods_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_state_periods_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_state_periods")),
    )
    op.create_index("ix_ticket_state_periods_status_started", "ticket_state_periods",
                    ["status", "started_at"], unique=False)
    op.create_index("ix_ticket_state_periods_ticket_open", "ticket_state_periods",
                    ["ticket_id", "ended_at"], unique=False)
    op.create_table(
        "ticket_revisits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("by", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name=op.f("fk_ticket_revisits_by_users")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_revisits_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_revisits_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_revisits")),
    )
    op.create_index(op.f("ix_ticket_revisits_ticket_id"), "ticket_revisits", ["ticket_id"],
                    unique=False)
    op.create_index("ix_ticket_revisits_unit_at", "ticket_revisits", ["unit_id", "at"],
                    unique=False)
    op.create_table(
        "ticket_reworks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reply_due_at", TS, nullable=False),
        sa.Column("by", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["ticket_assignments.id"],
                                name=op.f("fk_ticket_reworks_assignment_id_ticket_assignments")),
        sa.ForeignKeyConstraint(["by"], ["users.id"], name=op.f("fk_ticket_reworks_by_users")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_ticket_reworks_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_ticket_reworks_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_reworks")),
    )
    op.create_index(op.f("ix_ticket_reworks_ticket_id"), "ticket_reworks", ["ticket_id"],
                    unique=False)
    op.create_index("ix_ticket_reworks_unit_at", "ticket_reworks", ["unit_id", "at"],
                    unique=False)
    _backfill()


def _backfill() -> None:
    """The facts existing rows already have: the lead's deadlines, one open period each."""
    op.execute(
        "UPDATE ticket_assignments SET "
        "acceptance_due_at = (SELECT t.acceptance_due_at FROM tickets t "
        "WHERE t.id = ticket_assignments.ticket_id), "
        "reply_due_at = (SELECT t.reply_due_at FROM tickets t "
        "WHERE t.id = ticket_assignments.ticket_id), "
        "first_contact_due_at = (SELECT t.first_contact_due_at FROM tickets t "
        "WHERE t.id = ticket_assignments.ticket_id), "
        "extension_days = (SELECT t.extension_days FROM tickets t "
        "WHERE t.id = ticket_assignments.ticket_id) "
        "WHERE active AND role = 'lead'")
    op.execute(
        "INSERT INTO ticket_state_periods (ticket_id, status, unit_id, started_at) "
        "SELECT id, status, lead_unit_id, updated_at FROM tickets")


def downgrade() -> None:
    op.drop_index("ix_ticket_reworks_unit_at", table_name="ticket_reworks")
    op.drop_index(op.f("ix_ticket_reworks_ticket_id"), table_name="ticket_reworks")
    op.drop_table("ticket_reworks")
    op.drop_index("ix_ticket_revisits_unit_at", table_name="ticket_revisits")
    op.drop_index(op.f("ix_ticket_revisits_ticket_id"), table_name="ticket_revisits")
    op.drop_table("ticket_revisits")
    op.drop_index("ix_ticket_state_periods_ticket_open", table_name="ticket_state_periods")
    op.drop_index("ix_ticket_state_periods_status_started", table_name="ticket_state_periods")
    op.drop_table("ticket_state_periods")
    with op.batch_alter_table("ticket_assignments") as batch:
        for column in reversed(_assignment_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("fk_tickets_direct_answer_approved_by_users"),
                              type_="foreignkey")
        batch.drop_index("ix_tickets_provisional")
        for column in reversed(_ticket_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("units") as batch:
        batch.drop_constraint(op.f("fk_units_parent_id_units"), type_="foreignkey")
        batch.drop_column("parent_id")
        batch.drop_column("kind")
