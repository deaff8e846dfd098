"""Reports: frozen months (versions with their changes), revisit appeals, typical cases,
and the indexes the monthly figures read the tickets tables by.

Revision ID: 0009_reports
Revises: 0008_ivr
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_reports"
down_revision = "0008_ivr"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("frozen_at", TS, nullable=False),
        sa.Column("frozen_by", sa.Integer(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["frozen_by"], ["users.id"],
                                name=op.f("fk_report_snapshots_frozen_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_snapshots")),
        sa.UniqueConstraint("month", "version", name="uq_report_snapshots_month"),
    )
    op.create_index(op.f("ix_report_snapshots_month"), "report_snapshots", ["month"])
    op.create_table(
        "revisit_appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revisit_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("filed_at", TS, nullable=False),
        sa.Column("upheld", sa.Boolean(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"],
                                name=op.f("fk_revisit_appeals_decided_by_users")),
        sa.ForeignKeyConstraint(["revisit_id"], ["ticket_revisits.id"],
                                name=op.f("fk_revisit_appeals_revisit_id_ticket_revisits")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_revisit_appeals_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_revisit_appeals_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisit_appeals")),
        sa.UniqueConstraint("revisit_id", name=op.f("uq_revisit_appeals_revisit_id")),
    )
    op.create_index(op.f("ix_revisit_appeals_ticket_id"), "revisit_appeals", ["ticket_id"])
    op.create_table(
        "report_typical_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("chosen_by", sa.Integer(), nullable=True),
        sa.Column("chosen_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["chosen_by"], ["users.id"],
                                name=op.f("fk_report_typical_cases_chosen_by_users")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_report_typical_cases_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_typical_cases")),
        sa.UniqueConstraint("month", "ticket_id", name="uq_typical_cases_month"),
    )
    op.create_index(op.f("ix_report_typical_cases_month"), "report_typical_cases", ["month"])
    # Access paths of the monthly figures on the tickets tables.
    op.create_index("ix_ticket_assignments_dispatched_at", "ticket_assignments",
                    ["dispatched_at"])
    op.create_index("ix_tickets_registered_at", "tickets", ["registered_at"])
    op.create_index("ix_ticket_revisits_at", "ticket_revisits", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_revisits_at", table_name="ticket_revisits")
    op.drop_index("ix_tickets_registered_at", table_name="tickets")
    op.drop_index("ix_ticket_assignments_dispatched_at", table_name="ticket_assignments")
    op.drop_index(op.f("ix_report_typical_cases_month"), table_name="report_typical_cases")
    op.drop_table("report_typical_cases")
    op.drop_index(op.f("ix_revisit_appeals_ticket_id"), table_name="revisit_appeals")
    op.drop_table("revisit_appeals")
    op.drop_index(op.f("ix_report_snapshots_month"), table_name="report_snapshots")
    op.drop_table("report_snapshots")
