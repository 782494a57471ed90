"""Jobs: submit (validate, check against Keras and the data, enqueue), read, cancel.

Returns rows (``Job``) and plain values; the routes build the response schemas."""

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import Page, Rows, UnitOfWork
from api.errors import Conflict, Invalid, NotFound, TooManyRequests, detail
from api.limits import check_tenant_limits
from api.queue import TrainingQueue
from api.services.cv import check_folds
from api.services.data_facts import facts_for
from api.services.datasets import find, role_shapes
from api.services.webhooks import check_webhook
from api.tenancy import current_tenant
from api.validation.pool import ChildFailed, PoolBusy, ProcessPool
from datastore.artifacts import ArtifactStore
from diagnosis.preflight import run_preflight
from models import lifecycle
from models.cv import fold_jobs
from models.db import utcnow
from models.enums import JobStatus
from models.findings import Finding
from models.ids import new_id
from models.settings import Settings
from models.spec import JobSpec, LayersModel
from models.tables import EpochMetric, Job


def _keras_check(validator: ProcessPool, spec: JobSpec, tenant: str, settings: Settings) -> dict[str, Any]:
    """The model summary, from a validator process (this one imports no Keras)."""
    # Python mode: pydantic's JSON mode refuses values nested past ~255 levels, which
    # pydantic accepted on the way in; the pool's json.dumps takes them. The webhook
    # stays here: a check needs no secrets.
    payload = {"spec": spec.model_dump(mode="python", exclude={"webhook"}), "budgets": settings.budgets()}
    try:
        answer = validator.run(payload, tenant=tenant)
    except PoolBusy as busy:
        raise TooManyRequests(busy.message, retry_after_s=busy.retry_after_s) from busy
    except ChildFailed as failed:
        raise Invalid(f"the spec could not be checked: {failed}", [
            detail(("model",), f"checking this model with Keras failed: {failed}")
        ]) from failed
    if "issues" in answer:
        details = [detail(i["loc"], i["message"]) for i in answer["issues"]]
        raise Invalid(f"the spec does not work with Keras: {details[0]['path']}: {details[0]['message']}", details)
    return answer["summary"]


def _shape_fits(expected: list[int | None], actual: list[int]) -> bool:
    return len(expected) == len(actual) and all(e is None or e == a for e, a in zip(expected, actual, strict=True))


def _data_check(arrays: dict[str, Any], spec: JobSpec, summary: dict[str, Any], settings: Settings) -> int:
    """Returns the number of samples."""
    # Column lists stacked, images at the spec's image_size/color_mode, sequences as [n, None, ...].
    x, y = role_shapes(arrays, spec.data)
    if x["shape"][0] != y["shape"][0]:
        raise Invalid("x and y differ in length",
                      [detail(("data",), f"x has {x['shape'][0]} samples but y has {y['shape'][0]}")])
    expected = spec.model.input_shape if isinstance(spec.model, LayersModel) else summary["input_shape"][1:]
    if not _shape_fits(list(expected), x["shape"][1:]):
        loc = ("model", "input_shape") if isinstance(spec.model, LayersModel) else ("model", "keras")
        raise Invalid("the model input does not match the data", [
            detail(loc, f"the model takes samples of shape {list(expected)} "
                        f"but x holds samples of shape {x['shape'][1:]}")
        ])
    if spec.fit.epochs > settings.max_epochs:
        raise Invalid("too many epochs", [
            detail(("fit", "epochs"), f"at most {settings.max_epochs}. Received: epochs={spec.fit.epochs}")])
    return int(x["shape"][0])


def check_resources(spec: JobSpec, settings: Settings) -> None:
    """A job that asks for more GPUs than any host offers (``max_job_gpus``, when set) would wait
    forever: refuse it now. Unset, it is queued and waits for such a host (README, Job slots)."""
    gpus = spec.resources.gpus
    if settings.max_job_gpus is not None and gpus > settings.max_job_gpus:
        raise Invalid("no worker offers that many GPUs", [
            detail(("resources", "gpus"), f"at most {settings.max_job_gpus} (TRAINYARD_MAX_JOB_GPUS). "
                                          f"Received: gpus={gpus}")])


class CheckedJob(NamedTuple):
    spec: JobSpec  # as it will run: the seed fixed
    summary: dict[str, Any]  # the model summary
    findings: list[Finding]  # preflight
    samples: int  # in the dataset


def check_job(session: Session, spec: JobSpec, settings: Settings, validator: ProcessPool,
              store: ArtifactStore) -> CheckedJob:
    """Everything short of training.

    The Keras check comes first, before the session's first query: a request that
    waits for a validator process holds no database connection meanwhile.
    """
    if spec.seed is None:  # fix it now, so the stored spec reruns identically
        spec = spec.model_copy(update={"seed": secrets.randbelow(2**31)})
    check_resources(spec, settings)
    summary = _keras_check(validator, spec, current_tenant(session), settings)
    dataset = find(session, store, spec.dataset)  # unknown: 422 at "dataset"
    samples = _data_check(dataset.arrays, spec, summary, settings)
    check_webhook(spec.webhook, settings)
    facts = facts_for(dataset, spec.data.x, spec.data.y)
    check_folds(spec, facts)
    return CheckedJob(spec, summary, run_preflight(spec.model_dump(mode="json"), summary, facts), samples)


def reject_on_errors(findings: list[Finding], force: bool) -> None:
    errors = [f for f in findings if f.severity == "error"]
    if errors and not force:
        raise Invalid(
            f"preflight found {len(errors)} error(s): {errors[0].message} "
            "Fix the spec, or resubmit with \"force\": true.",
            [{**detail(("preflight", f.code.value), f.message), "finding": f.as_json()} for f in errors],
        )


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def create_job(
    uow: UnitOfWork, spec: JobSpec, *, settings: Settings, queue: TrainingQueue, validator: ProcessPool,
    store: ArtifactStore, idempotency_key: str | None, parent_id: str | None = None,
) -> tuple[Job, dict[str, Any] | None, bool]:
    """Returns the job, the model summary, and whether it is new (False: an idempotent replay).

    A spec with ``data.folds`` makes a cross-validation run (``api.services.cv``): the job returned is
    its parent, and its K fold jobs are queued."""
    session = uow.session
    body_hash = _request_hash(spec.model_dump(mode="python"))  # the JSON mode's text, without its depth limit
    if idempotency_key is not None:
        idempotency_key = f"{current_tenant(session)}:{idempotency_key}"  # one namespace per tenant
    if (existing := _replayed(session, idempotency_key, body_hash)) is not None:
        return existing, None, False
    # Nothing is written yet: end the transaction so that its connection goes back to
    # the pool while a validator process checks the spec (seconds, for a big model).
    session.commit()
    spec, summary, findings, samples = check_job(session, spec, settings, validator, store)
    reject_on_errors(findings, spec.force)
    # From here to the commit this tenant's other submissions wait, so the cap below is exact. A request
    # with the same key may have committed meanwhile: its job is the answer (never a 429).
    lifecycle.lock_submissions(session, current_tenant(session))
    if (existing := _replayed(session, idempotency_key, body_hash)) is not None:
        return existing, None, False
    check_tenant_limits(session, spec, samples, settings, current_tenant(session))
    now = utcnow()
    job = Job(
        id=new_id("job"), tenant=current_tenant(session), name=spec.name, spec=spec.model_dump(mode="json"),
        dataset_ref=spec.dataset, parent_id=parent_id, idempotency_key=idempotency_key, request_sha256=body_hash,
        epochs=spec.fit.epochs, findings=[f.as_json() for f in findings], created_at=now, enqueued_at=now,
        cv_folds=spec.data.folds,
    )
    folds = fold_jobs(job) if job.cv_folds is not None else []
    try:
        with session.begin_nested():
            lifecycle.create_job_or_run(session, job, folds, max_queued=settings.max_queued_jobs_per_tenant)
    except lifecycle.QueueFull as exc:
        raise TooManyRequests(str(exc)) from exc
    except IntegrityError:
        # The same key raced us: the other request's job is the answer.
        if (existing := _replayed(session, idempotency_key, body_hash)) is None:
            raise
        return existing, None, False
    for trained in folds or [job]:  # a CV parent itself is never trained
        uow.after_commit(lambda trained=trained: queue.send(trained.id, trained.spec.get("resources")))
    return job, summary, True


def _replayed(session: Session, key: str | None, body_hash: str) -> Job | None:
    """The job this (tenant-scoped) Idempotency-Key already made, if any; 409 if it was for another body."""
    if key is None:
        return None
    existing = session.scalar(select(Job).where(Job.idempotency_key == key))
    return None if existing is None else _replay(existing, body_hash, key)


def _replay(existing: Job, body_hash: str, key: str) -> Job:
    if existing.request_sha256 != body_hash:
        key = key.split(":", 1)[-1]
        raise Conflict(f"Idempotency-Key '{key}' was already used with a different request body (job {existing.id})")
    return existing


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job with id '{job_id}'")
    return job


def model_file(job: Job, store: ArtifactStore) -> Path:
    """The saved model of a finished job: 409 while it runs, 404 when it finished without one."""
    if job.model_path is None:
        if job.cv_folds is not None:
            raise NotFound(f"job '{job.id}' is a cross-validation run, which trains no model of its own; "
                           "each of its folds (GET /v1/jobs/{id}: folds[].job_id) has one")
        if not job.status.finished:
            raise Conflict(f"job '{job.id}' is {job.status.value}; its model is saved when it finishes")
        raise NotFound(f"job '{job.id}' has no model ({job.status.value})")
    path = store.resolve(job.model_path)
    if not path.exists():
        raise NotFound(f"the model file of job '{job.id}' is missing from the artifact store")
    return path


def list_jobs(session: Session, page: Page, *, status: JobStatus | None, name: str | None, dataset: str | None,
              parent_id: str | None, cv_parent_id: str | None = None, sweep_id: str | None = None) -> Rows[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(page.limit + 1)
    if page.cursor:
        query = query.where(Job.id < page.cursor)
    filters = ((Job.status, status), (Job.name, name), (Job.dataset_ref, dataset), (Job.parent_id, parent_id),
               (Job.cv_parent_id, cv_parent_id), (Job.sweep_id, sweep_id))
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    return page.of(session.scalars(query).all(), lambda job: job.id)


class Family(NamedTuple):
    """The jobs around one job, for its detail: what was retried from it, its repair chain."""

    children: list[str]  # ids, oldest first
    repair_root_id: str | None
    repair_chain: list[Job]  # the root and every attempt, oldest first (empty outside a chain)


def family_of(session: Session, job: Job) -> Family:
    children = list(session.scalars(select(Job.id).where(Job.parent_id == job.id).order_by(Job.id)))
    root = job.repair_root_id
    chain: list[Job] = []
    if root is not None:
        chain = list(session.scalars(
            select(Job).where((Job.repair_root_id == root) | (Job.id == root)).order_by(Job.id)).all())
    return Family(children, root, chain)


def cancel_job(session: Session, job_id: str) -> Job:
    """Cancel a job, or a cross-validation run with all its unfinished folds."""
    job = get_job(session, job_id)
    if job.cv_folds is not None:
        if not lifecycle.cancel_cv_run(session, job) and job.status.finished:
            raise Conflict(f"job '{job_id}' already finished ({job.status.value})")
        return job
    session.refresh(job, with_for_update=True)
    if job.status.finished:
        raise Conflict(f"job '{job_id}' already finished ({job.status.value})")
    lifecycle.cancel(session, job)  # under the row lock: it cannot have finished since the check above
    return job


def curves(session: Session, job_id: str) -> dict[str, list[Any]]:
    get_job(session, job_id)
    rows = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch)).all()
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row.metrics if k not in keys]
    ordered = sorted(keys, key=lambda k: (k.startswith("val_"), k != "loss" and k != "val_loss", k))
    columns: dict[str, list[Any]] = {"epoch": [r.epoch for r in rows]}
    for key in ordered:
        columns[key] = [r.metrics.get(key) for r in rows]
    columns["duration_s"] = [round(r.duration_s, 4) for r in rows]
    return columns
