"""job_events: NOTIFY trainyard_job_events with the job id on every insert (Postgres only)

Revision ID: 0007e_event_notify
Revises: 0006b_job_claims
Create Date: 2026-11-28

A trigger, so every writer of an event (the API, the worker, the reconciler, a
script) wakes the API processes' streams, and only once its transaction commits:
Postgres delivers a NOTIFY at commit and drops it on rollback. Notifications of
one transaction with the same payload are folded into one. SQLite (embedded mode)
has no NOTIFY: its streams poll.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0007e_event_notify"
down_revision: str | Sequence[str] | None = "0006b_job_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "trainyard_job_events"  # models/events.py EVENTS_CHANNEL; a migration keeps its own copy


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION trainyard_notify_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', NEW.job_id);
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER job_events_notify AFTER INSERT ON job_events "
               "FOR EACH ROW EXECUTE FUNCTION trainyard_notify_job_event()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS job_events_notify ON job_events")
    op.execute("DROP FUNCTION IF EXISTS trainyard_notify_job_event()")
