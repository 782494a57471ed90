"""jobs.claim (the fencing token) and jobs.holder (host, pid, process start)

Revision ID: 0006b_job_claims
Revises: 0005_tenants
Create Date: 2026-11-28

Existing jobs start with claim = attempts: tokens only ever grow.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006b_job_claims"
down_revision: str | Sequence[str] | None = "0005_tenants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("holder", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True))
    op.execute("UPDATE jobs SET claim = attempts")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("holder")
        batch_op.drop_column("claim")
