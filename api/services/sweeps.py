"""Sweeps: accept (every trial spec the space can make checked as a job submit checks it), read, cancel.

Returns rows and plain values; the routes build the response schemas.
"""

import json
import secrets
from typing import Any

import optuna
from optuna.storages import RDBStorage
from pydantic import ValidationError
from sqlalchemy import select

from api.deps import Page, Rows, UnitOfWork
from api.errors import Conflict, Invalid, NotFound, PayloadTooLarge, TooManyRequests, detail, validation_details
from api.limits import check_tenant_limits
from api.queue import TrainingQueue
from api.services.jobs import CheckedJob, check_job, reject_on_errors
from api.services.webhooks import check_webhook
from api.tenancy import current_tenant
from api.validation.pool import ProcessPool
from datastore.artifacts import ArtifactStore
from models import lifecycle
from models.ids import new_id
from models.settings import Settings
from models.spec import JobSpec
from models.sweep_spec import Choice, SweepRequest
from models.tables import Job, Sweep
from sweeps import driver, space, study


def _check_shape(request: SweepRequest) -> None:
    """What the space and objective must be, whatever the values."""
    for path, dist in request.space.items():
        if space.reserved_path(path):
            raise Invalid(f"the space may not vary {path}", [detail(("space", path), (
                f"'{path.split('.')[0]}' is the sweep's own: name, dataset, webhook, diagnosis (set by "
                "pruning.stop_on) and force cannot be searched"))])
        if request.sampler == "grid" and not isinstance(dist, Choice):
            raise Invalid("a grid needs choices", [detail(("space", path), (
                'the grid sampler takes {"choice": [...]} only; use sampler "random" or "tpe" for a range. '
                f"Received: {json.dumps(dist.model_dump())}"))])
    metric = request.objective.metric
    spec = request.spec
    if metric.startswith("val_") and spec.data.validation_split == 0 and spec.data.folds is None:
        raise Invalid("the objective needs a validation split", [detail(("objective", "metric"), (
            f"{metric} is only measured with data.validation_split > 0 or data.folds (each fold validates on "
            f"its held-out part). Received: metric={metric!r}"))])
    named = {m for m in spec.compile.metrics if isinstance(m, str)}
    only_names = len(named) == len(spec.compile.metrics)  # a metric object's log name is Keras's to choose
    if only_names and metric.removeprefix("val_") not in {"loss", *named}:
        known = sorted({"loss", "val_loss", *named, *(f"val_{m}" for m in named)})
        raise Invalid("the objective is not a metric of this spec", [detail(("objective", "metric"), (
            f"expected one of {known} (compile.metrics). Received: metric={metric!r}"))])


def _named(point: dict[str, Any]) -> str:
    return ", ".join(f"{path}={value!r}" for path, value in point.items())


def _check(uow: UnitOfWork, spec: JobSpec, *, settings: Settings, validator: ProcessPool,
           store: ArtifactStore) -> CheckedJob:
    """One spec, checked as POST /v1/jobs checks it before inserting the job (preflight errors and the
    per-job size limit included)."""
    checked = check_job(uow.session, spec, settings, validator, store)
    reject_on_errors(checked.findings, spec.force)
    check_tenant_limits(uow.session, checked.spec, checked.samples, settings, current_tenant(uow.session))
    return checked


def _check_point(uow: UnitOfWork, request: SweepRequest, point: dict[str, Any], *, settings: Settings,
                 validator: ProcessPool, store: ArtifactStore) -> None:
    """One trial spec, checked as POST /v1/jobs checks a spec; errors name the space path and the value."""
    at = ("space", next(iter(point)))
    try:
        body = space.trial_spec(request.spec.model_dump(mode="json"), point,
                                stop_on=list(request.pruning.stop_on), name=request.spec.name)
        spec = JobSpec.model_validate(body)
    except space.SpacePathError as exc:
        raise Invalid(f"space path {exc.path} leads nowhere in the spec", [detail(("space", exc.path), exc.message)]
                      ) from exc
    except ValidationError as exc:
        first = validation_details(list(exc.errors()))[0]
        raise Invalid(f"{_named(point)} makes an invalid spec: {first['path']}: {first['message']}", [detail(
            at, f"{_named(point)} makes an invalid spec: {first['path']}: {first['message']}")]) from exc
    try:
        _check(uow, spec, settings=settings, validator=validator, store=store)
    except PayloadTooLarge as exc:
        raise PayloadTooLarge(f"{_named(point)}: {exc.message}", [detail(at, exc.message)]) from exc
    except Invalid as exc:
        raise Invalid(f"{_named(point)} makes a spec that does not check out: {exc.message}", [
            {**d, **detail(at, f"{_named(point)}: {d['path']}: {d['message']}")} for d in exc.details]) from exc


def create_sweep(uow: UnitOfWork, request: SweepRequest, *, settings: Settings, queue: TrainingQueue,
                 validator: ProcessPool, store: ArtifactStore, storage: RDBStorage) -> Sweep:
    """Check the base spec and every point of ``space.points_to_check``, store the sweep with its Optuna study,
    and queue its first trials (at most ``parallelism``): 429 when the tenant's queue has no room for one."""
    _check_shape(request)
    check_webhook(request.webhook, settings)
    points = space.points_to_check(request)
    if len(points) > space.MAX_CHECKED_POINTS:
        raise Invalid("the space has too many values to check", [detail(("space",), (
            f"every choice value and both ends of every range are checked before a sweep starts: at most "
            f"{space.MAX_CHECKED_POINTS}. Received: {len(points)} (use a range instead of a long choice list)"))])
    if request.spec.seed is None:  # one seed for every trial: they differ by their parameters only
        request = request.model_copy(update={"spec": request.spec.model_copy(
            update={"seed": secrets.randbelow(2**31)})})
    session = uow.session
    session.commit()  # hold no connection while validator processes check the specs
    base = _check(uow, request.spec, settings=settings, validator=validator, store=store)
    for point in points:
        _check_point(uow, request, point, settings=settings, validator=validator, store=store)
    sweep = Sweep(id=new_id("swp"), tenant=current_tenant(session), name=request.name or request.spec.name,
                  request=request.model_dump(mode="json"), trials_planned=space.planned_trials(request),
                  summary=base.summary)
    session.add(sweep)
    session.flush()
    study.create(storage, sweep.id, request)
    try:
        created = driver.advance(session, sweep.id, storage=storage,
                                 max_queued=settings.max_queued_jobs_per_tenant, strict=True)
    except lifecycle.QueueFull as exc:
        optuna.delete_study(study_name=sweep.id, storage=storage)  # the sweep is rolled back: leave no study
        raise TooManyRequests(f"{exc} (a sweep's trials count as queued jobs)") from exc
    for job in created:
        uow.after_commit(lambda job_id=job.id, resources=job.spec.get("resources"): queue.send(job_id, resources))
    return sweep


def get_sweep(uow: UnitOfWork, sweep_id: str) -> Sweep:
    sweep = uow.session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"no sweep with id '{sweep_id}'")
    return sweep


def trial_jobs(uow: UnitOfWork, sweep_id: str) -> list[Job]:
    return list(uow.session.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.trial_number)))


def list_sweeps(uow: UnitOfWork, page: Page) -> Rows[Sweep]:
    query = select(Sweep).order_by(Sweep.id.desc()).limit(page.limit + 1)
    if page.cursor:
        query = query.where(Sweep.id < page.cursor)
    return page.of(uow.session.scalars(query).all(), lambda sweep: sweep.id)


def cancel_sweep(uow: UnitOfWork, sweep_id: str) -> Sweep:
    if get_sweep(uow, sweep_id).status.finished:  # 404 for another tenant's (the lock below is by id)
        raise Conflict(f"sweep '{sweep_id}' already finished")
    sweep = driver.cancel(uow.session, sweep_id)
    assert sweep is not None
    return sweep
