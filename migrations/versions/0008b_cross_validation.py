"""jobs: cross-validation runs (data.folds): cv_folds on the parent, cv_parent_id and fold on each fold job

Revision ID: 0008b_cross_validation
Revises: 0007f_jobs_tenant_indexes
Create Date: 2026-11-28

All nullable: existing jobs are neither parents nor folds.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008b_cross_validation"
down_revision: str | Sequence[str] | None = "0008a_sweeps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cv_folds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cv_parent_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("fold", sa.Integer(), nullable=True))
        batch_op.create_index("ix_jobs_cv_parent_id", ["cv_parent_id"], unique=False)
        batch_op.create_foreign_key("fk_jobs_cv_parent_id_jobs", "jobs", ["cv_parent_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_jobs_cv_parent_id_jobs", type_="foreignkey")
        batch_op.drop_index("ix_jobs_cv_parent_id")
        batch_op.drop_column("fold")
        batch_op.drop_column("cv_parent_id")
        batch_op.drop_column("cv_folds")
