"""Where the worker moves sweeps on: after each trial job it ran, and at each reconcile for every running
sweep (``sweeps.driver.advance``, idempotent and serialised per sweep, so calling it more often than
needed costs a lock and a read)."""

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import SendJob
from models.db import transaction
from models.settings import Settings
from models.tables import Job
from sweeps import driver

log = logging.getLogger(__name__)


def after_job(factory: sessionmaker[Session], job_id: str, *, settings: Settings, send: SendJob) -> None:
    """The trial job (or trial fold) ``job_id`` was run (ended, or lost its claim): tell its sweep and start
    the next trials.

    Never raises: the job itself is done; a sweep that could not advance now advances at the next reconcile."""
    try:
        with transaction(factory) as session:
            sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == job_id))
            if sweep_id is None:  # a fold of a cross-validation trial: its run is the trial
                parent = select(Job.cv_parent_id).where(Job.id == job_id).scalar_subquery()
                sweep_id = session.scalar(select(Job.sweep_id).where(Job.id == parent))
        if sweep_id is not None:
            driver.advance_and_send(factory, sweep_id, settings=settings, send=send)
    except Exception:  # noqa: BLE001 - any failure leaves the advance to the reconciler
        log.exception("job %s: its sweep could not advance now; the reconciler will", job_id)


def advance_running(factory: sessionmaker[Session], *, settings: Settings, send: SendJob) -> None:
    """Every running sweep, one step: what a killed worker or the reconciler's own transitions left untold."""
    with transaction(factory) as session:
        sweep_ids = driver.running_sweeps(session)
    for sweep_id in sweep_ids:
        try:
            driver.advance_and_send(factory, sweep_id, settings=settings, send=send)
        except Exception:  # noqa: BLE001 - one sweep's failure must not stop the others or the reconciler
            log.exception("sweep %s could not advance", sweep_id)
