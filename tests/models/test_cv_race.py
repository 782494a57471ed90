"""A run's folds ending at the same moment, each in its own transaction (workers on several hosts):
the run ends exactly once, on Postgres and on SQLite."""

import threading
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models import lifecycle
from models.db import transaction, utcnow
from models.enums import JobStatus, StopReason
from models.lifecycle import Claim
from models.tables import Job, JobEvent
from tests.models.test_cv_lifecycle import HOLDER, new_run
from tests.models.test_submit_lock import factory  # noqa: F401  (the fixture: Postgres and SQLite, committed)

FOLDS = 6


def test_folds_that_end_together_end_the_run_once(factory: sessionmaker[Session]):  # noqa: F811
    parent_id, folds = new_run(factory, k=FOLDS)
    claims = []
    for fold in folds:
        with transaction(factory) as session:
            job = lifecycle.claim(session, fold, holder=HOLDER, stale_before=utcnow() - timedelta(hours=1))
            claims.append(Claim.of(job))
    barrier = threading.Barrier(FOLDS)
    errors: list[BaseException] = []

    def end(claim: Claim) -> None:
        try:
            with factory() as session:
                barrier.wait(timeout=60)
                assert lifecycle.finish(session, claim, status=JobStatus.succeeded, stop_reason=StopReason.completed)
                time.sleep(0.05)  # the window between a fold's end and its commit
                session.commit()
        except BaseException as exc:  # noqa: BLE001  (reported below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=end, args=(claim,)) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with transaction(factory) as session:
        assert session.get_one(Job, parent_id).status is JobStatus.succeeded
        types = [e.value for e in session.scalars(
            select(JobEvent.type).where(JobEvent.job_id == parent_id).order_by(JobEvent.id))]
    assert types == ["job.queued", "job.started", "job.succeeded"]
