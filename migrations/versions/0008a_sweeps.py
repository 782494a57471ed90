"""sweeps: the sweeps and sweep_events tables, a trial job's sweep_id and trial_number, and Optuna's schema (Postgres)

Revision ID: 0008a_sweeps
Revises: 0007f_jobs_tenant_indexes
Create Date: 2026-11-28

Optuna keeps its studies in the service's database, in tables of its own that it creates
itself, with an Alembic revision of its own in a table called ``alembic_version``: on
Postgres they live in the schema ``optuna`` (``sweeps/storage.py`` sets its connections'
search_path), created here so that the service's database user needs no CREATE on the
database at run time. SQLite (embedded) keeps them in a file of its own instead.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.db import JSONType, UTCDateTime

revision: str = "0008a_sweeps"
down_revision: str | Sequence[str] | None = "0007f_jobs_tenant_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPTUNA_SCHEMA = "optuna"  # sweeps.storage.OPTUNA_SCHEMA at the time of writing


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.Enum("running", "succeeded", "failed", "cancelled", name="sweepstatus",
                                    native_enum=False, length=16), nullable=False),
        sa.Column("request", JSONType, nullable=False),
        sa.Column("trials_planned", sa.Integer(), nullable=False),
        sa.Column("summary", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.create_index("ix_sweeps_tenant_id", ["tenant", "id"], unique=False)
    op.create_table(
        "sweep_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sweep_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.Enum("trial.started", "trial.finished", "trial.pruned", "sweep.best", "sweep.succeeded",
                                  "sweep.failed", "sweep.cancelled", name="sweepeventtype", native_enum=False,
                                  length=32), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], name=op.f("fk_sweep_events_sweep_id_sweeps"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep_events")),
    )
    with op.batch_alter_table("sweep_events", schema=None) as batch_op:
        batch_op.create_index("ix_sweep_events_sweep_id_id", ["sweep_id", "id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sweep_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("trial_number", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_sweep_id"), ["sweep_id"], unique=False)
        batch_op.create_unique_constraint(batch_op.f("uq_jobs_sweep_id"), ["sweep_id", "trial_number"])
        batch_op.create_foreign_key(batch_op.f("fk_jobs_sweep_id_sweeps"), "sweeps", ["sweep_id"], ["id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {OPTUNA_SCHEMA} CASCADE")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_jobs_sweep_id_sweeps"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_jobs_sweep_id"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_jobs_sweep_id"))
        batch_op.drop_column("trial_number")
        batch_op.drop_column("sweep_id")
    with op.batch_alter_table("sweep_events", schema=None) as batch_op:
        batch_op.drop_index("ix_sweep_events_sweep_id_id")
    op.drop_table("sweep_events")
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index("ix_sweeps_tenant_id")
    op.drop_table("sweeps")
