"""``run_training``: one job, from claimed to finished. Plain code, no Celery.

The Celery task is a thin shell around this function, so tests call it
directly with a session factory.
"""

import logging
from functools import partial
from typing import Any

import keras
import tensorflow as tf
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import SendJob
from datastore.artifacts import ArtifactStore
from datastore.kinds import ArrayKind
from datastore.lookup import FoundDataset, UnknownDataset, find_dataset
from diagnosis.facts import DataFacts, dataset_facts
from keras_bridge import global_state
from keras_bridge.budget import OutOfMemory, build_within_budget, is_out_of_memory
from keras_bridge.errors import SpecError, keras_message
from keras_bridge.limits import Budgets
from keras_bridge.training import compile_model, make_callbacks, optimizer_slots
from models.db import transaction
from models.enums import JobStatus, StopReason
from models.findings import Finding
from models.lifecycle import Claim, ClaimLost
from models.settings import Settings
from models.spec import JobSpec
from models.tables import Dataset, Job
from sweeps.pruning import judge_for
from sweeps.storage import storage as study_storage
from worker import job_store
from worker.auto_retry import spawn_retry, wants_retry
from worker.callbacks import RecordEpochs, StopWhen, StopWhenJudged
from worker.checkpoint import AtomicBackupAndRestore
from worker.data import DataError, PreparedData, prepare, save_scalers
from worker.devices import devices_of, job_strategy
from worker.diagnose import Diagnosis
from worker.hand_back import HandBack, StopOnShutdown
from worker.heartbeat import heartbeat
from worker.pipeline import make_dataset
from worker.speed import Speed
from worker.tensorboard import EventFiles

log = logging.getLogger(__name__)


def find_job_dataset(factory: sessionmaker[Session], store: ArtifactStore, dataset_ref: str) -> FoundDataset:
    """The job's dataset (``datastore.lookup``, the API's lookup too); gone since the job was queued: DataError."""
    with transaction(factory) as session:
        try:
            return find_dataset(store, dataset_ref, lambda dataset_id: session.get(Dataset, dataset_id))
        except UnknownDataset as exc:
            raise DataError(exc.message) from exc


def _fit(
    factory: sessionmaker[Session], store: ArtifactStore, job: Job, spec: JobSpec, data: PreparedData,
    facts: DataFacts | None, settings: Settings, strategy: tf.distribute.Strategy,
) -> tuple[StopReason, dict[str, Any] | None, str, Finding | None]:
    """Raises ClaimLost (from the callbacks' writes) as soon as the job is no longer this worker's."""
    claim = Claim.of(job)
    assert spec.seed is not None
    keras.utils.set_random_seed(spec.seed)
    speed = Speed.resolve(spec.fit.speed, train_samples=len(data.train), batch_size=spec.fit.batch_size)
    speed.apply_policy()
    # Outside any strategy: it takes a step on a throw-away weight, which MirroredStrategy only
    # allows inside strategy.run.
    slots = optimizer_slots(spec.compile.optimizer)
    # Under MirroredStrategy the variables are created and the optimizer is set up in its scope
    # (worker/devices.py); fit, evaluate and the diagnosis probe then run the model as they are.
    with strategy.scope():
        # The budgets again, from shapes, before any weight is allocated (settings of this worker).
        model, estimate = build_within_budget(spec, Budgets.from_settings(settings), slots, materialize=True)
        compile_model(model, spec.compile, **speed.compile_args())
    job_dir = store.job_dir(job.id)
    user_callbacks = make_callbacks(spec.fit, job_dir)
    monitor = "val_loss" if data.validation is not None else "loss"
    stop_on_request = StopWhen(lambda: job_store.cancel_requested(factory, claim))
    diagnosis = Diagnosis(spec, data, facts, report=lambda f: job_store.add_finding(factory, claim, f.as_json()),
                          resolve=lambda code, epoch: job_store.resolve_finding(factory, claim, code.value, epoch))
    backup = job_dir / "backup"
    watch = diagnosis.callback(model, state_path=backup / "monitor.json")
    # Keras runs callbacks in this order. An epoch is recorded, its findings reported and the
    # monitor's memory saved before it is checkpointed: whatever fails in between, the resumed
    # run trains that epoch again instead of skipping it (a record that did commit stands).
    epochs = RecordEpochs(partial(job_store.record_epoch, factory, claim, monitor=monitor))
    pruning = _pruning(factory, job, settings)
    callbacks = [
        epochs,
        watch,
        *([pruning] if pruning is not None else []),  # after the diagnosis: its stop is the one reported
        EventFiles(store.tensorboard_dir(job.id), watch),  # after the monitor: it reads the epoch's probe
        stop_on_request,
        *user_callbacks,
        # Keras's own resume-after-crash: a redelivered job continues after its last checkpointed epoch
        # (saved every settings.checkpoint_interval_s, and before a hand-back: worker/checkpoint.py).
        AtomicBackupAndRestore(backup_dir=str(backup), min_interval_s=settings.checkpoint_interval_s),
        # Last: a worker that shuts down hands the job back once the epoch is recorded and saved.
        StopOnShutdown(settings.stop_grace_s),
    ]
    # Batches are read from disk by tf.data (worker/pipeline.py), never the whole dataset at once.
    batches = partial(make_dataset, data, seed=spec.seed)
    # Validation and test: forward passes only, in larger batches where memory allows (worker/speed.py).
    # Not sequences: they are padded per batch, and a model without masking sees the longer padding.
    if data.x.kind is not ArrayKind.sequence:
        forward_samples = max((len(split) for split in (data.validation, data.test) if split is not None), default=0)
        speed = speed.with_forward_batch(estimate, forward_samples)
    forward = partial(batches, batch_size=speed.forward_batch_size or spec.fit.batch_size, shuffle=False)
    validation = forward(data.validation) if data.validation is not None else None
    try:
        model.fit(
            batches(data.train, batch_size=spec.fit.batch_size, shuffle=spec.data.shuffle),
            validation_data=validation,
            shuffle=False,  # the pipeline shuffles (seeded, each epoch); Keras cannot shuffle a tf.data dataset
            epochs=spec.fit.epochs,
            callbacks=callbacks,
            verbose=0,
        )
    except Exception as exc:
        if is_out_of_memory(exc):
            raise OutOfMemory(estimate, exc) from exc
        raise
    # How it ran: the settings, and the first epoch's tracing apart from the training time.
    job_store.set_data_summary(factory, claim, {"speed": speed.as_json(), "timing": epochs.timing()})
    if stop_on_request.stopped:
        reason = StopReason.cancelled
    elif watch.stopped_by is not None:
        reason = StopReason.diagnosis
    elif pruning is not None and pruning.stopped:
        reason = StopReason.pruned
    elif any(isinstance(cb, keras.callbacks.EarlyStopping) and cb.stopped_epoch > 0 for cb in user_callbacks):
        reason = StopReason.early_stopping
    else:
        reason = StopReason.completed
    best = job_dir / "best.keras"
    if best.exists():  # a "keep best" ModelCheckpoint wrote it
        model = keras.saving.load_model(best, safe_mode=True)
    test_metrics = None
    if data.test is not None and reason is not StopReason.cancelled:
        test_metrics = model.evaluate(forward(data.test), verbose=0, return_dict=True)
    model_path = store.model_path(job.id)
    model.save(store.resolve(model_path))
    verdict = None
    if reason is not StopReason.cancelled:
        # The training findings as the monitor holds them (resolved ones are info; a resumed run restored them).
        findings = [*(f for f in job.findings if f["phase"] != "training"),
                    *(f.as_json() for f in watch.raised.values())]
        verdict = diagnosis.verdict(findings)
        job_store.add_finding(factory, claim, verdict.as_json())
    return reason, test_metrics, model_path, verdict


def _pruning(factory: sessionmaker[Session], job: Job, settings: Settings) -> StopWhenJudged | None:
    """A sweep trial's pruning callback (its epochs reported to the Optuna trial; a cross-validation trial's
    fold 0 reports for it: ``sweeps/pruning.py``); None for other jobs."""
    if job.sweep_id is None and job.cv_parent_id is None:
        return None
    with transaction(factory) as session:
        judge = judge_for(session, study_storage(settings.database_dsn), job)
    return None if judge is None else StopWhenJudged(judge)


class HeldElsewhere(Exception):
    """The job is running on a worker whose heartbeat is still fresh: try again later."""


def run_training(factory: sessionmaker[Session], job_id: str, *, settings: Settings,
                 enqueue: SendJob | None = None) -> None:
    """Train one job to its end.

    Args:
        enqueue: sends a job id to the queue of its resources; used by auto-repair to
            queue the next attempt (without it, no attempt is queued).

    Raises:
        HeldElsewhere: another worker holds the job and is not known dead (a holder
            on this host whose process is gone is taken over at once); the caller
            retries once its heartbeat could have gone stale (the message of a
            worker that died is redelivered at once, before its heartbeat expires).
    """
    stale = job_store.stale_cutoff(settings.running_stale_after_s)
    job = job_store.claim(factory, job_id, stale_before=stale)
    if job is None:
        if job_store.held_elsewhere(factory, job_id):
            raise HeldElsewhere(job_id)
        log.info("job %s is not claimable (duplicate delivery, cancelled or finished)", job_id)
        return
    claim = Claim.of(job)
    store = ArtifactStore(settings.artifacts)
    spec = JobSpec.model_validate(job.spec)
    global_state.reset()  # nothing an earlier job changed in Keras/TF configuration reaches this one
    try:
        with heartbeat(lambda: job_store.beat(factory, claim), settings.heartbeat_interval_s):
            assert spec.seed is not None
            dataset = find_job_dataset(factory, store, job.dataset_ref)
            arrays = dataset.open()  # memory-mapped: read a batch at a time
            facts = dataset_facts(arrays, spec.data.x, spec.data.y, dataset.description)  # as the API's preflight
            labels = facts.fold_labels(job.spec["compile"]["loss"]) if facts and spec.data.folds else None
            data = prepare(arrays, spec.data, spec.seed, fold=job.fold, labels=labels)
            save_scalers(data, store.scaler_path(job.id))  # /predict scales new rows with them
            strategy = job_strategy(spec.resources.gpus)
            job_store.set_data_summary(factory, claim, {**data.summary, "devices": devices_of(strategy)})
            reason, test_metrics, model_path, verdict = _fit(factory, store, job, spec, data, facts, settings,
                                                             strategy)
    except OperationalError:
        raise  # the database went away: let the task retry, the job stays claimed by this process
    except ClaimLost:
        log.warning("job %s: this worker lost its claim (requeued, failed or taken over); it stops here", job_id)
        return
    except HandBack:
        # This worker is shutting down: the job goes back to the queue (its epochs recorded and
        # checkpointed); the caller sends it again so that another worker resumes it at once.
        # A job whose cancel was asked meanwhile is cancelled instead (no claim would take it).
        try:
            if job_store.cancel_requested(factory, claim):
                _finish(factory, claim, status=JobStatus.cancelled, stop_reason=StopReason.cancelled)
                return
        except ClaimLost:
            return
        if job_store.release(factory, claim):
            raise
        return
    except (SpecError, DataError, OutOfMemory) as exc:
        _finish(factory, claim, status=JobStatus.failed, stop_reason=StopReason.error,
                error={"type": type(exc).__name__, "message": str(exc)})
        return
    except Exception as exc:  # Keras raised while building or fitting: the user's model, not our crash
        log.exception("job %s failed", job_id)
        kind = "OutOfMemory" if is_out_of_memory(exc) else type(exc).__name__  # e.g. while loading the data
        _finish(factory, claim, status=JobStatus.failed, stop_reason=StopReason.error,
                error={"type": kind, "message": keras_message(exc, limit=2000)})
        return
    finally:
        keras.backend.clear_session()
    status = JobStatus.cancelled if reason is StopReason.cancelled else JobStatus.succeeded
    if not _finish(factory, claim, status=status, stop_reason=reason, test_metrics=test_metrics, model_path=model_path):
        return
    if enqueue is not None and wants_retry(spec, verdict):
        assert verdict is not None
        spawn_retry(factory, job_id, verdict, facts, enqueue, max_queued=settings.max_queued_jobs_per_tenant)


def _finish(factory: sessionmaker[Session], claim: Claim, **outcome: Any) -> bool:
    if job_store.finish(factory, claim, **outcome):
        return True
    log.warning("job %s: not finished by this worker, which lost its claim meanwhile", claim.job_id)
    return False
