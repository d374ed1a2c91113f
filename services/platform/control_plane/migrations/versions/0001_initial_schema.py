"""Initial schema: applications, environments, secrets and bindings, the event log,
workflow-run outcomes and idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Migrations use plain SQLAlchemy types (never the app's model classes), so they keep
meaning the same thing when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str = "id", *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(64), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "application",
        _id(),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.String(500), nullable=True),
        _id("last_flow_run_id", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_application_status", "application", ["status"])

    op.create_table(
        "application_environment",
        _id(),
        sa.Column("application_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("repository", sa.String(100), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.String(500), nullable=True),
        _id("last_flow_run_id", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_application_environment_application_id", "application_environment", ["application_id"]
    )
    op.create_index("ix_application_environment_status", "application_environment", ["status"])

    op.create_table(
        "secret",
        _id(),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_ref", sa.String(128), nullable=False),
        sa.Column("project", sa.String(128), nullable=True),
        sa.Column("rotatable", sa.Boolean(), nullable=False),
        sa.Column("rotation_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_reason", sa.String(500), nullable=True),
        _timestamp("last_rotated_at", nullable=True),
        _timestamp("next_rotation_at", nullable=True),
        sa.Column("stored_backend", sa.String(64), nullable=True),
        sa.Column("stored_path", sa.String(300), nullable=True),
        sa.Column("stored_version", sa.Integer(), nullable=True),
        _id("lock_holder", nullable=True),
        _timestamp("lock_acquired_at", nullable=True),
        _id("last_flow_run_id", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_secret_next_rotation_at", "secret", ["next_rotation_at"])

    op.create_table(
        "secret_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        _id("secret_id"),
        _id("environment_id"),
        sa.Column("target", sa.String(200), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(["environment_id"], ["application_environment.id"]),
        sa.ForeignKeyConstraint(["secret_id"], ["secret.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_id", "environment_id", "target", name="uq_secret_binding"),
    )
    op.create_index("ix_secret_binding_secret_id", "secret_binding", ["secret_id"])
    op.create_index("ix_secret_binding_environment_id", "secret_binding", ["environment_id"])

    op.create_table(
        "domain_event",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("aggregate", sa.String(32), nullable=False),
        _id("aggregate_id"),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _id("flow_run_id", nullable=True),
        _timestamp("occurred_at"),
        _timestamp("recorded_at"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_domain_event_aggregate", "domain_event", ["aggregate", "aggregate_id"])
    op.create_index("ix_domain_event_name", "domain_event", ["name"])
    op.create_index("ix_domain_event_occurred_at", "domain_event", ["occurred_at"])

    op.create_table(
        "workflow_run",
        _id("flow_run_id"),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        _timestamp("reported_at"),
        sa.PrimaryKeyConstraint("flow_run_id"),
    )

    op.create_table(
        "idempotency_record",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_record",
        "workflow_run",
        "domain_event",
        "secret_binding",
        "secret",
        "application_environment",
        "application",
    ):
        op.drop_table(table)
