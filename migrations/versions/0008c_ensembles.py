"""ensembles: finished jobs' models averaged into one, built on a worker (issue 14)

Revision ID: 0008c_ensembles
Revises: 0007f_jobs_tenant_indexes
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from models.db import UTCDateTime

revision: str = "0008c_ensembles"
down_revision: str | Sequence[str] | None = "0008b_cross_validation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ensembles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.Enum("queued", "running", "succeeded", "failed", name="ensemblestatus",
                                    native_enum=False, length=16), nullable=False),
        sa.Column("members", JSON, nullable=False),
        sa.Column("dataset_ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.Enum("classifier", "regression", name="taskkind", native_enum=False, length=16),
                  nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("model_path", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claim", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ensembles")),
    )
    with op.batch_alter_table("ensembles", schema=None) as batch_op:
        batch_op.create_index("ix_ensembles_tenant_id", ["tenant", "id"], unique=False)
        batch_op.create_index("ix_ensembles_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ensembles", schema=None) as batch_op:
        batch_op.drop_index("ix_ensembles_status_id")
        batch_op.drop_index("ix_ensembles_tenant_id")
    op.drop_table("ensembles")
