"""retries: jobs.repair_root_id, jobs.origin

Revision ID: 0003c_diagnosis
Revises: 0002
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003c_diagnosis"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repair_root_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                                      nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_repair_root_id"), ["repair_root_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_repair_root_id"))
        batch_op.drop_column("origin")
        batch_op.drop_column("repair_root_id")
