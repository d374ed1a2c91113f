"""The compensation log of workflow runs (the saga log): the undo actions of each run,
once per (flow_run_id, key), in recording order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Migrations use plain SQLAlchemy types (never the app's model classes), so they keep
meaning the same thing when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_compensation",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("undo", sa.String(64), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        # Also the index of a run's entries (its leading column).
        sa.UniqueConstraint("flow_run_id", "key", name="uq_workflow_compensation_key"),
    )


def downgrade() -> None:
    op.drop_table("workflow_compensation")
