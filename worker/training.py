"""``run_training``: one job, from claimed to finished. Plain code, no Celery.

The Celery task is a thin shell around this function, so tests call it
directly with a session factory.
"""

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import keras
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from datastore.artifacts import ArtifactStore
from datastore.builtin import is_builtin
from datastore.reader import StoredDataset, open_dataset
from diagnosis.facts import DataFacts, dataset_facts
from keras_bridge.errors import SpecError, keras_message
from keras_bridge.layers import build_model
from keras_bridge.training import compile_model, make_callbacks
from models.db import transaction
from models.enums import JobStatus, StopReason
from models.findings import Finding
from models.settings import Settings
from models.spec import JobSpec
from models.tables import Dataset, Job
from worker import job_store
from worker.callbacks import RecordEpochs, StopWhen
from worker.checkpoint import AtomicBackupAndRestore
from worker.auto_retry import spawn_retry, wants_retry
from worker.diagnose import Diagnosis
from worker.data import DataError, PreparedData, prepare
from worker.hand_back import StopOnShutdown
from worker.heartbeat import heartbeat
from worker.holders import this_process
from worker.pipeline import make_dataset

log = logging.getLogger(__name__)


def load_arrays(factory: sessionmaker[Session], store: ArtifactStore, dataset_ref: str) -> StoredDataset:
    """The dataset, memory-mapped: nothing is read until a batch needs it."""
    if is_builtin(dataset_ref):
        return open_dataset(store, dataset_ref)
    with transaction(factory) as session:
        dataset = session.get(Dataset, dataset_ref)
        if dataset is None:
            raise DataError(f"dataset {dataset_ref} no longer exists")
        return open_dataset(store, dataset)


def _fit(
    factory: sessionmaker[Session], store: ArtifactStore, job: Job, spec: JobSpec, data: PreparedData,
    facts: DataFacts | None, stop_grace_s: float,
) -> tuple[StopReason, dict[str, Any] | None, str, Finding | None]:
    assert spec.seed is not None
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec.model)
    compile_model(model, spec.compile)
    job_dir = store.job_dir(job.id)
    user_callbacks = make_callbacks(spec.fit, job_dir)
    monitor = "val_loss" if data.validation is not None else "loss"
    stop_on_request = StopWhen(lambda: job_store.cancel_requested(factory, job.id))
    diagnosis = Diagnosis(spec, data, facts, report=lambda f: job_store.add_finding(factory, job.id, f.as_json()),
                          resolve=lambda code, epoch: job_store.resolve_finding(factory, job.id, code.value, epoch))
    watch = diagnosis.callback(model)
    callbacks = [
        # Keras's own resume-after-crash: a redelivered job continues from its last epoch.
        AtomicBackupAndRestore(backup_dir=str(job_dir / "backup")),
        RecordEpochs(partial(job_store.record_epoch, factory, job.id, monitor=monitor)),
        watch,
        stop_on_request,
        *user_callbacks,
        # Last: a worker that shuts down hands the job back once the epoch is recorded and saved.
        StopOnShutdown(stop_grace_s),
    ]
    # Batches are read from disk by tf.data (worker/pipeline.py), never the whole dataset at once.
    batches = partial(make_dataset, data, batch_size=spec.fit.batch_size, seed=spec.seed)
    validation = batches(data.validation, shuffle=False) if data.validation is not None else None
    model.fit(
        batches(data.train, shuffle=spec.data.shuffle),
        validation_data=validation,
        shuffle=False,  # the pipeline shuffles (seeded, each epoch); Keras cannot shuffle a tf.data dataset
        epochs=spec.fit.epochs,
        callbacks=callbacks,
        verbose=0,
    )
    if stop_on_request.stopped:
        reason = StopReason.cancelled
    elif watch.stopped_by is not None:
        reason = StopReason.diagnosis
    elif any(isinstance(cb, keras.callbacks.EarlyStopping) and cb.stopped_epoch > 0 for cb in user_callbacks):
        reason = StopReason.early_stopping
    else:
        reason = StopReason.completed
    best = job_dir / "best.keras"
    if best.exists():  # a "keep best" ModelCheckpoint wrote it
        model = keras.saving.load_model(best, safe_mode=True)
    test_metrics = None
    if data.test is not None and reason is not StopReason.cancelled:
        test_metrics = model.evaluate(batches(data.test, shuffle=False), verbose=0, return_dict=True)
    model_path = store.model_path(job.id)
    model.save(store.resolve(model_path))
    verdict = None
    if reason is not StopReason.cancelled:
        verdict = diagnosis.verdict([*job.findings, *(f.as_json() for f in watch.raised.values())])  # resolved ones are info
        job_store.add_finding(factory, job.id, verdict.as_json())
    return reason, test_metrics, model_path, verdict


class HeldElsewhere(Exception):
    """The job is running on a worker whose heartbeat is still fresh: try again later."""


def run_training(factory: sessionmaker[Session], job_id: str, *, settings: Settings,
                 enqueue: Callable[[str], None] | None = None) -> None:
    """Train one job to its end.

    Args:
        enqueue: sends a job id to the training queue; used by auto-repair to
            queue the next attempt (without it, no attempt is queued).

    Raises:
        HeldElsewhere: another worker holds the job; the caller retries once
            its heartbeat could have gone stale (the message of a worker that
            died is redelivered at once, before its heartbeat expires).
    """
    stale = job_store.stale_cutoff(settings.running_stale_after_s)
    job = job_store.claim(factory, job_id, worker=this_process(), stale_before=stale)
    if job is None:
        if job_store.held_elsewhere(factory, job_id):
            raise HeldElsewhere(job_id)
        log.info("job %s is not claimable (duplicate delivery, cancelled or finished)", job_id)
        return
    store = ArtifactStore(settings.artifacts)
    spec = JobSpec.model_validate(job.spec)
    try:
        with heartbeat(lambda: job_store.beat(factory, job_id), settings.heartbeat_interval_s):
            assert spec.seed is not None
            arrays = load_arrays(factory, store, job.dataset_ref)
            facts = dataset_facts(arrays, spec.data.x, spec.data.y)
            data = prepare(arrays, spec.data, spec.seed)
            job_store.set_data_summary(factory, job_id, data.summary)
            reason, test_metrics, model_path, verdict = _fit(factory, store, job, spec, data, facts,
                                                                      settings.stop_grace_s)
    except OperationalError:
        raise  # the database went away: let the task retry, the job stays claimed by this process
    except (SpecError, DataError) as exc:
        job_store.finish(factory, job_id, status=JobStatus.failed, stop_reason=StopReason.error,
                         error={"type": type(exc).__name__, "message": str(exc)})
        return
    except Exception as exc:  # Keras raised while building or fitting: the user's model, not our crash
        log.exception("job %s failed", job_id)
        job_store.finish(factory, job_id, status=JobStatus.failed, stop_reason=StopReason.error,
                         error={"type": type(exc).__name__, "message": keras_message(exc, limit=2000)})
        return
    finally:
        keras.backend.clear_session()
    status = JobStatus.cancelled if reason is StopReason.cancelled else JobStatus.succeeded
    job_store.finish(factory, job_id, status=status, stop_reason=reason, test_metrics=test_metrics, model_path=model_path)
    if enqueue is not None and wants_retry(spec, verdict):
        assert verdict is not None
        spawn_retry(factory, job_id, verdict, facts, enqueue)
