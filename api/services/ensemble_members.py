"""Whether jobs can be averaged into one ensemble: every rule names the member that breaks it.

Rows first (this tenant's succeeded jobs with a model, one dataset, the same x and y,
one kind), then the saved models' shapes (read by a validator child: this process
imports no Keras), then the held-out part they share (``datastore.splits``, the split rule
the worker trains by). Each refusal is a 422 at ``jobs[i]``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import Invalid, NotFound, TooManyRequests, Unavailable, detail
from api.services.datasets import find, role_shapes
from api.services.jobs import model_file
from api.validation.pool import ChildFailed, PoolBusy, ProcessPool
from datastore.artifacts import ArtifactStore
from datastore.kinds import ArrayKind
from datastore.splits import NoHeldOut, common_held_out, held_out_parts
from diagnosis.task_kind import task_kind
from models.enums import JobStatus, TaskKind
from models.spec import DataSpec
from models.tables import Job

# The data options that decide what x and y a member was fed: they must agree.
SAME_DATA = ("x", "y", "image_size", "color_mode")


@dataclass(frozen=True)
class Members:
    jobs: list[Job]  # in the request's order
    dataset_ref: str
    kind: TaskKind
    held_out_samples: int


def refuse(index: int, job_id: str, message: str) -> Invalid:
    return Invalid(f"jobs[{index}] ('{job_id}'): {message}", [detail(("jobs", index), f"job '{job_id}': {message}")])


def _rows(session: Session, ids: list[str]) -> list[Job]:
    found = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(ids)))}  # this tenant's only
    jobs = []
    for index, job_id in enumerate(ids):
        if job_id in ids[:index]:
            raise refuse(index, job_id, f"listed twice (also jobs[{ids.index(job_id)}])")
        job = found.get(job_id)
        if job is None:
            raise refuse(index, job_id, "no such job")
        if job.status is not JobStatus.succeeded:
            raise refuse(index, job_id, f"the job is {job.status.value}: only succeeded jobs can be members")
        if job.model_path is None:
            raise refuse(index, job_id, "the job has no saved model")
        jobs.append(job)
    return jobs


def _kind(index: int, job: Job) -> TaskKind:
    kind = task_kind(job.spec["compile"]["loss"])
    if kind is None:
        raise refuse(index, job.id, f"its loss {job.spec['compile']['loss']!r} is neither a classifier's "
                                    "(cross-entropy) nor a regressor's: it cannot be averaged")
    return kind


def _agree(jobs: list[Job]) -> TaskKind:
    first = jobs[0]
    kind = _kind(0, first)
    for index, job in enumerate(jobs[1:], start=1):
        if job.dataset_ref != first.dataset_ref:
            raise refuse(index, job.id, f"dataset: trained on '{job.dataset_ref}', the first member on "
                                        f"'{first.dataset_ref}'")
        for option in SAME_DATA:
            mine, theirs = job.spec["data"].get(option), first.spec["data"].get(option)
            if mine != theirs:
                raise refuse(index, job.id, f"data.{option}: {mine!r}, the first member's is {theirs!r}")
        if (other := _kind(index, job)) is not kind:
            raise refuse(index, job.id, f"kind: a {other.value} ({job.spec['compile']['loss']!r}), the first member "
                                        f"is a {kind.value}")
    return kind


def _model_io(validator: ProcessPool, paths: list[Path], tenant: str) -> list[dict[str, Any]]:
    try:
        return validator.run({"kind": "model_io", "models": [str(p) for p in paths]}, tenant=tenant)["models"]
    except PoolBusy as busy:
        raise TooManyRequests(busy.message, retry_after_s=busy.retry_after_s) from busy
    except ChildFailed as failed:
        raise Unavailable(f"the members' models could not be read: {failed}") from failed


def check_shapes(jobs: list[Job], shapes: list[dict[str, Any]]) -> None:
    """One input and one output each, of the first member's shapes."""
    for index, (job, io) in enumerate(zip(jobs, shapes, strict=True)):
        for role in ("input_shape", "output_shape"):
            if io[role] and isinstance(io[role][0], list):
                raise refuse(index, job.id, f"{role}: the model has {len(io[role])} {role.split('_')[0]}s; "
                                            "an ensemble averages models of one input and one output")
            if io[role] != shapes[0][role]:
                raise refuse(index, job.id, f"{role}: {io[role]}, the first member's is {shapes[0][role]}")


def _held_out(session: Session, store: ArtifactStore, jobs: list[Job]) -> int:
    """How many samples no member trained on (the worker recomputes the same part)."""
    dataset = find(session, store, jobs[0].dataset_ref)
    x, _ = role_shapes(dataset.arrays, DataSpec.model_validate(jobs[0].spec["data"]))
    samples = int(x["shape"][0])
    if x["kind"] == ArrayKind.sequence:
        for index, job in enumerate(jobs):
            if job.spec["data"].get("scale_x") is not None:
                # Training scales a sequence's real steps, then pads with 0.0 (what Masking masks); a
                # Normalization layer inside the ensemble would scale the padding too.
                raise refuse(index, job.id, "data.scale_x on variable-length sequences: the ensemble model cannot "
                                            "scale the steps without its padding; use members trained without it")
    parts = [held_out_parts(samples, DataSpec.model_validate(job.spec["data"]), job.spec["seed"]) for job in jobs]
    try:
        return len(common_held_out(parts))
    except NoHeldOut as none:
        if none.member is not None:
            raise refuse(none.member, jobs[none.member].id, str(none)) from none
        raise Invalid(f"jobs: {none}", [detail(("jobs",), str(none))]) from none


def _model_path(index: int, job: Job, store: ArtifactStore) -> Path:
    try:
        return model_file(job, store)
    except NotFound as gone:
        raise refuse(index, job.id, gone.message) from gone


def check_members(session: Session, ids: list[str], *, store: ArtifactStore, validator: ProcessPool) -> Members:
    """The members of an ensemble, checked (the first member is the reference each other one is held to)."""
    jobs = _rows(session, ids)
    kind = _agree(jobs)
    held_out = _held_out(session, store, jobs)
    paths = [_model_path(index, job, store) for index, job in enumerate(jobs)]
    tenant = jobs[0].tenant
    session.commit()  # the reads are done: no database connection is held while the models are read
    check_shapes(jobs, _model_io(validator, paths, tenant))
    return Members(jobs, jobs[0].dataset_ref, kind, held_out)
