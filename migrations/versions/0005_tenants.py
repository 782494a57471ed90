"""tenants: api_keys, jobs.tenant, datasets.tenant (unique per tenant and content)

Revision ID: 0005_tenants
Revises: 0004_merge
Create Date: 2026-11-23

Rows that exist before this migration belong to the tenant "default".
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.db

revision: str = "0005_tenants"
down_revision: str | Sequence[str] | None = "0004_merge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("sha256", name=op.f("uq_api_keys_sha256")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant"), ["tenant"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=64), nullable=False, server_default="default"))
        batch_op.create_index(batch_op.f("ix_jobs_tenant"), ["tenant"], unique=False)
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=64), nullable=False, server_default="default"))
        batch_op.drop_constraint("uq_datasets_sha256", type_="unique")
        batch_op.create_index(batch_op.f("ix_datasets_tenant"), ["tenant"], unique=False)
        batch_op.create_index(batch_op.f("ix_datasets_sha256"), ["sha256"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_datasets_tenant"), ["tenant", "sha256"])
    # The default only fills existing rows: new rows always name their tenant.
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("tenant", server_default=None)
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.alter_column("tenant", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_datasets_tenant"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_datasets_sha256"))
        batch_op.drop_index(batch_op.f("ix_datasets_tenant"))
        batch_op.create_unique_constraint("uq_datasets_sha256", ["sha256"])
        batch_op.drop_column("tenant")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_tenant"))
        batch_op.drop_column("tenant")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant"))
    op.drop_table("api_keys")
