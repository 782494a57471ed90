"""Ensemble builds are re-sent when their message or worker was lost, and claimed once (fenced)."""

from datetime import timedelta

import pytest

from models import ensemble_lifecycle
from models.db import transaction, utcnow
from models.enums import EnsembleStatus, TaskKind
from models.ids import new_id
from models.tables import Ensemble
from worker.ensemble_reconciler import reconcile_ensembles


def make(factory, **columns) -> str:
    with transaction(factory) as session:
        ensemble = ensemble_lifecycle.create(session, Ensemble(
            id=new_id("ens"), tenant="t", members=["job_a", "job_b"], dataset_ref="builtin:iris",
            kind=TaskKind.classifier), max_unfinished=100)
        for name, value in columns.items():
            setattr(ensemble, name, value)
        return ensemble.id


def test_lost_builds_are_re_sent_and_hopeless_ones_failed(session_factory, db_session, settings):
    old = utcnow() - timedelta(hours=1)
    lost_message = make(session_factory, enqueued_at=old)
    fresh = make(session_factory)
    dead_worker = make(session_factory, status=EnsembleStatus.running, heartbeat_at=old, attempts=1, claim=1)
    alive = make(session_factory, status=EnsembleStatus.running, heartbeat_at=utcnow(), attempts=1, claim=1)
    too_many = make(session_factory, status=EnsembleStatus.running, heartbeat_at=old, claim=3,
                    attempts=settings.max_attempts)
    sent: list[str] = []

    resent = reconcile_ensembles(session_factory, settings, sent.append)

    assert sorted(resent) == sorted(sent) == sorted([lost_message, dead_worker])
    db_session.expire_all()
    assert db_session.get(Ensemble, dead_worker).status is EnsembleStatus.queued
    assert db_session.get(Ensemble, fresh).status is EnsembleStatus.queued
    assert db_session.get(Ensemble, alive).status is EnsembleStatus.running
    failed = db_session.get(Ensemble, too_many)
    assert failed.status is EnsembleStatus.failed and failed.error["type"] == "WorkerLost"


def test_one_claim_wins_and_a_taken_over_builder_writes_nothing(session_factory, db_session):
    ensemble_id = make(session_factory)
    long_ago, soon = utcnow() - timedelta(hours=1), utcnow() + timedelta(seconds=1)
    with transaction(session_factory) as session:
        first = ensemble_lifecycle.claim(session, ensemble_id, worker="a:1", stale_before=long_ago)
        assert ensemble_lifecycle.claim(session, ensemble_id, worker="b:1", stale_before=long_ago) is None
    with transaction(session_factory) as session:  # a's heartbeat is stale by then: b takes it over
        second = ensemble_lifecycle.claim(session, ensemble_id, worker="b:1", stale_before=soon)
    assert first is not None and second is not None and second.token == first.token + 1
    with transaction(session_factory) as session:
        assert not ensemble_lifecycle.finish(session, first, status=EnsembleStatus.failed, error={"type": "x"})
        assert ensemble_lifecycle.finish(session, second, status=EnsembleStatus.succeeded, result={"ok": 1})
    db_session.expire_all()
    done = db_session.get(Ensemble, ensemble_id)
    assert done.status is EnsembleStatus.succeeded and done.result == {"ok": 1} and done.attempts == 2


def test_a_tenant_has_at_most_its_cap_of_builds_queued_or_running(session_factory):
    def new() -> Ensemble:
        return Ensemble(id=new_id("ens"), tenant="capped", members=["job_a", "job_b"], dataset_ref="builtin:iris",
                        kind=TaskKind.classifier)

    with transaction(session_factory) as session:
        first = ensemble_lifecycle.create(session, new(), max_unfinished=2)
        ensemble_lifecycle.create(session, new(), max_unfinished=2)
        with pytest.raises(ensemble_lifecycle.TooManyBuilds, match="already has 2"):
            ensemble_lifecycle.create(session, new(), max_unfinished=2)
        first.status = EnsembleStatus.failed  # a finished build no longer counts
        session.flush()
        ensemble_lifecycle.create(session, new(), max_unfinished=2)
