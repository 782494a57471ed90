"""jobs: list indexes that start with the tenant, (tenant, id) and (tenant, status, id)

Revision ID: 0007f_jobs_tenant_indexes
Revises: 0007e_event_notify
Create Date: 2026-11-28

Every list is one tenant's, newest first (``WHERE tenant = :t [AND status = :s]
[AND id < :cursor] ORDER BY id DESC LIMIT n``). With 100,000 jobs, a tenant of
2,000 among them took 64 ms for its first page (a backward scan of the primary key
filtering the others' rows) and 0.09 ms with (tenant, id). (tenant, id) also serves
what the tenant-only index served, so that one goes.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0007f_jobs_tenant_indexes"
down_revision: str | Sequence[str] | None = "0007e_event_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_tenant_id", ["tenant", "id"], unique=False)
        batch_op.create_index("ix_jobs_tenant_status_id", ["tenant", "status", "id"], unique=False)
        batch_op.drop_index("ix_jobs_tenant")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_tenant", ["tenant"], unique=False)
        batch_op.drop_index("ix_jobs_tenant_status_id")
        batch_op.drop_index("ix_jobs_tenant_id")
