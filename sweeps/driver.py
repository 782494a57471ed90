"""The sweep driver: Optuna's ask/tell, one trial job at a time, exactly once.

``advance`` is the one step. Under the sweep's lock (held until the caller commits) it
1. tells Optuna the result of every trial job that ended and whose Optuna trial is still
   running (``study.tell(..., skip_if_finished=True)``);
2. starts trials while fewer than ``parallelism`` trial jobs are queued or running and fewer
   than ``trials_planned`` trials exist: first any Optuna trial that was asked but has no job
   (a driver died between the ask and its commit), then new ones (``study.ask``);
3. ends the sweep once every planned trial has ended.

A trial whose spec has ``data.folds`` is a cross-validation run: its job is the run's parent (never
trained; it carries the trial's (sweep_id, trial_number)), its K fold jobs are what is sent to workers,
and it ends when its last fold ends. A fold stopped as doomed (the diagnosis, or the pruner on fold 0:
``sweeps/pruning.py``) stops the whole trial: the next advance (the worker's, after that fold) cancels
the other folds (``lifecycle.cancel_cv_run``) and the trial is told pruned, with that fold's reason.

Why no trial is lost and none is duplicated, whoever calls it and whenever a process dies:
- Advances are serialised by the lock, and a trial is only asked under it, so an Optuna trial
  that is running without a job when the lock is taken was asked by a driver that died (or
  rolled back) before its commit: it is adopted, with the values it was given (never asked again).
- A trial job carries (sweep_id, trial_number), unique: one job per trial at most.
- A trial is told only while Optuna still holds it running, and a tell is one write in
  Optuna's storage: a driver that dies after it leaves a finished trial that the next advance
  skips; one that dies before it leaves it running, told by the next. Told exactly once.
- A trial job that loses its worker is the same job re-run by the reconciler (same trial);
  it stays "active", so no new trial replaces it.
Callers: the API when a sweep is created (and cancelled), the worker after each trial job
(``worker/sweep_hook.py``), and the reconciler for every running sweep (a worker killed
between a job's end and its advance; jobs ended by the reconciler itself).
"""

import logging
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import SendJob
from diagnosis.preflight import run_preflight
from models import lifecycle
from models.cv import fold_jobs
from models.db import lock_until_commit, transaction, utcnow
from models.enums import SweepEventType, SweepStatus
from models.ids import new_id
from models.settings import Settings
from models.spec import JobSpec
from models.sweep_spec import SweepRequest
from models.tables import EpochMetric, Job, Sweep, SweepEvent
from sweeps import outcome, space, study
from sweeps.storage import storage as storage_of

log = logging.getLogger(__name__)
RUNNING = TrialState.RUNNING


def lock(session: Session, sweep_id: str) -> Sweep | None:
    """The sweep, locked for this transaction against every other advance and cancel of it."""
    lock_until_commit(session, f"trainyard.sweep:{sweep_id}")
    return session.get(Sweep, sweep_id, populate_existing=True)


def advance(session: Session, sweep_id: str, *, storage: RDBStorage, max_queued: int,
            strict: bool = False) -> list[Job]:
    """One step of the sweep (see the module); returns the jobs it created to be trained (a trial's job, or
    a cross-validation trial's folds), to be sent once the caller has committed.

    Args:
        max_queued: the tenant's cap on queued jobs; a full queue leaves the next trials to a later advance.
        strict: raise ``lifecycle.QueueFull`` when the cap keeps every trial from starting (the API's 429).
    """
    sweep = lock(session, sweep_id)
    if sweep is None:
        return []
    request = SweepRequest.model_validate(sweep.request)
    trials = {t.number: t for t in study.load(storage, sweep_id).get_trials(deepcopy=False)}
    jobs = {job.trial_number: job for job in session.scalars(select(Job).where(Job.sweep_id == sweep_id))}
    folds = _folds(session, list(jobs.values()))
    for job in jobs.values():
        _stop_doomed_run(session, job, folds.get(job.id, []))
    best = _best(trials, request)
    for number, job in jobs.items():
        trial = trials.get(number)  # type: ignore[arg-type]
        if job.status.finished and trial is not None and trial.state is RUNNING:
            trials[trial.number] = told = _tell(session, storage, sweep_id, request, job, folds.get(job.id, []),
                                                trial)
            if told.state is TrialState.COMPLETE and (best is None or _better(told, best, request)):
                best = told
                _event(session, sweep_id, SweepEventType.best, number=told.number, job_id=job.id,
                       objective=told.value, params=told.params)
    created = [] if sweep.status.finished else _start(session, storage, sweep, request, trials, jobs,
                                                      max_queued=max_queued, strict=strict)
    if not sweep.status.finished:
        _end_if_done(session, sweep, trials, jobs)
    return created


def _folds(session: Session, trial_jobs: list[Job]) -> dict[str, list[Job]]:
    """The folds of the cross-validation trials among ``trial_jobs``, by parent id, in fold order."""
    parents = [job.id for job in trial_jobs if job.cv_folds is not None]
    out: dict[str, list[Job]] = {}
    if parents:
        for fold in session.scalars(select(Job).where(Job.cv_parent_id.in_(parents)).order_by(Job.fold)):
            out.setdefault(fold.cv_parent_id, []).append(fold)  # type: ignore[arg-type]
    return out


def _stop_doomed_run(session: Session, job: Job, folds: list[Job]) -> None:
    """A cross-validation trial one of whose folds was stopped as doomed stops whole: its other folds are
    cancelled (queued ones at once, running ones within an epoch). Once, whichever advance comes first."""
    if job.status.finished or job.cancel_requested or not any(outcome.doomed(fold) for fold in folds):
        return
    stop = outcome.speaker(job, folds)
    if lifecycle.cancel_cv_run(session, job):
        log.info("sweep %s: trial %s fold %s stopped (%s, %s): its other folds are cancelled", job.sweep_id,
                 job.trial_number, stop.fold, stop.stop_reason, outcome.stopped_by(stop))


def _tell(session: Session, storage: RDBStorage, sweep_id: str, request: SweepRequest, job: Job, folds: list[Job],
          trial: FrozenTrial) -> FrozenTrial:
    if folds:
        found = outcome.cv_best(job, folds, request.objective)
    else:
        curve = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job.id)).all()
        found = outcome.best(curve, request.objective)
    stop = outcome.speaker(job, folds)
    state = outcome.state(job, found, stop)
    attributes = outcome.attributes(job, found, stop)
    for key, value in attributes.items():
        storage.set_trial_user_attr(trial._trial_id, key, value)
    told = study.load(storage, sweep_id).tell(trial.number, found.value if state is TrialState.COMPLETE else None,
                                              state=state, skip_if_finished=True)
    kind = SweepEventType.trial_pruned if state is TrialState.PRUNED else SweepEventType.trial_finished
    _event(session, sweep_id, kind, number=trial.number, state=state.name.lower(), objective=found.value,
           **attributes)
    log.info("sweep %s: trial %d (job %s) told %s, objective %s", sweep_id, trial.number, job.id, told.state.name,
             found.value)
    return told


def _start(session: Session, storage: RDBStorage, sweep: Sweep, request: SweepRequest,
           trials: dict[int, FrozenTrial], jobs: dict[int | None, Job], *, max_queued: int, strict: bool) -> list[Job]:
    active = sum(not job.status.finished for job in jobs.values())
    orphans = sorted(n for n, t in trials.items() if t.state is RUNNING and n not in jobs)
    created: list[Job] = []
    while active < request.parallelism and (orphans or len(trials) < sweep.trials_planned):
        sampled = study.load(storage, sweep.id, sampler=study.sampler(request, asked=len(trials)))
        trial = optuna.Trial(sampled, trials[orphans.pop(0)]._trial_id) if orphans else sampled.ask()
        params = study.params_of(trial, request)
        trials[trial.number] = storage.get_trial(trial._trial_id)
        try:
            job, trained = create_trial_job(session, sweep, request, trial.number, params, max_queued=max_queued)
        except lifecycle.QueueFull:
            if strict and not created:
                raise
            log.info("sweep %s: the tenant's queue is full; trial %d starts at a later advance", sweep.id, trial.number)
            break  # the trial stays asked without a job: the next advance adopts it
        except (ValidationError, space.SpacePathError) as exc:
            # The values are inside ranges whose ends were checked; should a point between them still not make a
            # valid spec, the trial fails and the sweep goes on.
            log.warning("sweep %s: trial %d makes an invalid spec: %s", sweep.id, trial.number, exc)
            storage.set_trial_user_attr(trial._trial_id, "error", str(exc)[:1000])
            trials[trial.number] = sampled.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            continue
        jobs[trial.number] = job
        created.extend(trained)
        _event(session, sweep.id, SweepEventType.trial_started, number=trial.number, job_id=job.id, params=params)
        active += 1
    return created


def _event(session: Session, sweep_id: str, kind: SweepEventType, **data: Any) -> None:
    """A sweep event, in the advance's transaction (under the sweep's lock: ids grow in commit order)."""
    session.add(SweepEvent(sweep_id=sweep_id, type=kind, data=data))


def _best(trials: dict[int, FrozenTrial], request: SweepRequest) -> FrozenTrial | None:
    best: FrozenTrial | None = None
    for trial in trials.values():
        if trial.state is TrialState.COMPLETE and (best is None or _better(trial, best, request)):
            best = trial
    return best


def _better(trial: FrozenTrial, than: FrozenTrial, request: SweepRequest) -> bool:
    assert trial.value is not None and than.value is not None
    return trial.value < than.value if request.objective.direction == "minimize" else trial.value > than.value


def create_trial_job(session: Session, sweep: Sweep, request: SweepRequest, number: int, params: dict[str, object],
                     *, max_queued: int) -> tuple[Job, list[Job]]:
    """The one way a trial's job is made: the trial's spec, its preflight findings, and the row, queued
    through ``lifecycle.create`` like every submitted job (the tenant's cap included); with ``data.folds``
    a cross-validation run through ``lifecycle.create_cv_run``, as a submitted spec with folds is.

    Returns:
        The trial's job (a run's parent), and the jobs to send to workers (itself, or the run's K folds).

    Raises:
        ValidationError, SpacePathError: the values do not make a valid spec.
        lifecycle.QueueFull: the tenant's queue is full.
    """
    base = request.spec.model_dump(mode="json")
    name = f"{sweep.name or 'sweep'} #{number}"
    spec = JobSpec.model_validate(space.trial_spec(base, params, stop_on=list(request.pruning.stop_on), name=name))
    spec_json = spec.model_dump(mode="json")
    # The Keras summary of the base spec (checked when the sweep was accepted): the spec-level checks
    # (learning rate, batch size, activations) see the trial's own values; the data-level ones were
    # run on the values at the ends of each range then.
    findings = run_preflight(spec_json, sweep.summary, None)
    now = utcnow()
    job = Job(id=new_id("job"), tenant=sweep.tenant, name=name, spec=spec_json, dataset_ref=spec.dataset,
              sweep_id=sweep.id, trial_number=number, epochs=spec.fit.epochs,
              findings=[f.as_json() for f in findings], created_at=now, enqueued_at=now, cv_folds=spec.data.folds)
    folds = fold_jobs(job) if job.cv_folds is not None else []
    with session.begin_nested():  # a full queue leaves this transaction as it was
        lifecycle.create_job_or_run(session, job, folds, max_queued=max_queued, sweep_id=sweep.id, trial=number)
    return job, folds or [job]


def _end_if_done(session: Session, sweep: Sweep, trials: dict[int, FrozenTrial], jobs: dict[int | None, Job]) -> None:
    if len(trials) < sweep.trials_planned or any(t.state is RUNNING for t in trials.values()):
        return
    if any(not job.status.finished for job in jobs.values()):
        return
    scored = any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.value is not None for t in trials.values())
    sweep.status = SweepStatus.succeeded if scored else SweepStatus.failed
    sweep.finished_at = utcnow()
    _event(session, sweep.id, SweepEventType(f"sweep.{sweep.status.value}"), trials=len(trials))


def cancel(session: Session, sweep_id: str) -> Sweep | None:
    """Cancel a sweep: no trial starts any more; its queued trials are cancelled at once, its running ones
    stop within an epoch (``lifecycle.cancel``); each is told to Optuna by the advance after it ends."""
    sweep = lock(session, sweep_id)
    if sweep is None or sweep.status.finished:
        return sweep
    for job in session.scalars(select(Job).where(Job.sweep_id == sweep_id)).all():
        if not job.status.finished:
            if job.cv_folds is not None:
                lifecycle.cancel_cv_run(session, job)  # its folds; the run follows them
            else:
                lifecycle.cancel(session, job)
    sweep.status = SweepStatus.cancelled
    sweep.finished_at = utcnow()
    _event(session, sweep_id, SweepEventType.cancelled)
    return sweep


def running_sweeps(session: Session) -> list[str]:
    return list(session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.running).order_by(Sweep.id)))


def advance_and_send(factory: sessionmaker[Session], sweep_id: str, *, settings: Settings, send: SendJob) -> list[str]:
    """``advance`` in a transaction of its own, then the new trial jobs sent: the worker's and the
    reconciler's call. Returns the ids of the jobs it created."""
    with transaction(factory) as session:
        created = advance(session, sweep_id, storage=storage_of(settings.database_dsn),
                          max_queued=settings.max_queued_jobs_per_tenant)
        messages = [(job.id, job.spec.get("resources")) for job in created]
    for job_id, resources in messages:
        send(job_id, resources)
    return [job_id for job_id, _ in messages]
