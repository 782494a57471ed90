"""sweep webhooks: a sweep's own events POSTed as a job's are (cursor and delivery records, issue 14)

Revision ID: 0008d_sweep_webhooks
Revises: 0008c_ensembles
Create Date: 2026-11-28
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.db import UTCDateTime

revision: str = "0008d_sweep_webhooks"
down_revision: str | Sequence[str] | None = "0008c_ensembles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = ("trial.started", "trial.finished", "trial.pruned", "sweep.best", "sweep.succeeded", "sweep.failed",
               "sweep.cancelled")


def upgrade() -> None:
    op.create_table(
        "sweep_webhook_cursors",
        sa.Column("sweep_id", sa.String(length=40), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_webhook_cursors_sweep_id_sweeps"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sweep_id", name=op.f("pk_sweep_webhook_cursors")),
    )
    op.create_table(
        "sweep_webhook_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_type", sa.Enum(*EVENT_TYPES, name="sweepeventtype", native_enum=False, length=32),
                  nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Enum("delivered", "failed", "gave_up", "skipped", name="deliveryoutcome",
                                     native_enum=False, length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("attempted_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["sweep_events.id"],
                                name=op.f("fk_sweep_webhook_deliveries_event_id_sweep_events"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_webhook_deliveries_sweep_id_sweeps"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_webhook_deliveries")),
    )
    with op.batch_alter_table("sweep_webhook_deliveries") as batch_op:
        batch_op.create_index(batch_op.f("ix_sweep_webhook_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_sweep_webhook_deliveries_sweep_id_id", ["sweep_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("sweep_webhook_deliveries")
    op.drop_table("sweep_webhook_cursors")
