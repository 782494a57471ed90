"""Rows for the API benchmarks, written straight into a Postgres database: jobs by COPY
(100,000 in seconds), events one committed transaction each, as a worker writes them."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Column, create_engine, text

from api.services.event_listener import libpq_url
from models.enums import JobStatus
from models.ids import new_id
from models.spec import JobSpec
from models.tables import Job
from tests.specs import IRIS_MLP

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def create_database(prefix: str, server: str = POSTGRES) -> str:
    """A new database on ``server``, migrated to head; returns its URL."""
    from migrations import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade(f"{server}/{name}")
    return f"{server}/{name}"


def drop_database(url: str) -> None:
    server, name = url.rsplit("/", 1)
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _value(column: Column[Any], given: dict[str, Any]) -> Any:
    if column.name in given:
        value = given[column.name]
    elif column.default is not None:
        default = column.default
        value = default.arg(None) if default.is_callable else default.arg  # type: ignore[union-attr]
    else:
        value = None
    if isinstance(value, enum.Enum):
        return value.value
    return Jsonb(value) if isinstance(value, dict | list) else value


def copy_jobs(url: str, count: int, *, tenant: str, status: JobStatus = JobStatus.succeeded) -> list[str]:
    """``count`` jobs of ``tenant`` (the iris spec), by COPY; returns their ids, oldest first."""
    spec = JobSpec.model_validate(IRIS_MLP)
    common = {"tenant": tenant, "name": spec.name, "status": status, "spec": spec.model_dump(mode="json"),
              "dataset_ref": spec.dataset, "epochs": spec.fit.epochs, "findings": []}
    columns = [c for c in Job.__table__.columns if c.name in common or c.name == "id" or c.server_default is None]
    ids = [new_id("job") for _ in range(count)]
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        names = ", ".join(c.name for c in columns)
        with cur.copy(f"COPY jobs ({names}) FROM STDIN") as copy:
            for job_id in ids:
                copy.write_row([_value(c, {**common, "id": job_id}) for c in columns])
    return ids


class EventWriter:
    """Appends ``job.epoch`` events, one transaction each, and notes when each was committed."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(libpq_url(url))
        self.committed: dict[int, float] = {}  # event id -> time.monotonic() just before COMMIT

    def add(self, job_id: str, epoch: int, *, type: str = "job.epoch") -> int:
        data = {"job_id": job_id, "status": "running", "stop_reason": None, "epoch": epoch, "epochs": 10**6,
                "metrics": {"loss": 1.0 / (epoch + 1), "accuracy": 0.5}}
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO job_events (job_id, type, data, created_at) VALUES (%s, %s, %s, now()) "
                        "RETURNING id", (job_id, type, Jsonb(data)))
            row = cur.fetchone()
            assert row is not None
            sent = time.monotonic()
            self.conn.commit()
        self.committed[row[0]] = sent
        return row[0]

    def many(self, items: Iterable[tuple[str, str]]) -> None:
        """Events (job id, type) in one transaction: history, not timed."""
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO job_events (job_id, type, data, created_at) VALUES (%s, %s, %s, now())",
                            [(job_id, type, Jsonb({"job_id": job_id, "status": "running"})) for job_id, type in items])
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def finish(url: str, job_id: str) -> None:
    """Marks a job succeeded (its terminal event is the caller's)."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("UPDATE jobs SET status = 'succeeded' WHERE id = %s", (job_id,))

