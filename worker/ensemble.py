"""``run_ensemble``: build one ensemble, from claimed to finished. Plain code, no Celery.

The members' models are loaded in safe mode, each wrapped with its own scaling and
output activation (``worker.ensemble_model``); every member and the ensemble are
evaluated on the samples no member trained on (``datastore.splits.common_held_out``: each
member's split recomputed with its own seed and data spec), read a chunk at a time.
Building again gives the same ensemble, so a redelivered or re-queued build just runs again;
the model file is written under a temporary name and renamed into place.
"""

import logging
import os
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from datastore.artifacts import ArtifactStore
from datastore.rows import chunks
from datastore.splits import NoHeldOut, common_held_out, held_out_parts
from diagnosis.facts import canonical_loss
from diagnosis.task_kind import is_binary, logits_activation
from keras_bridge import global_state
from keras_bridge.errors import keras_message
from models import ensemble_lifecycle
from models.db import transaction
from models.ensemble_lifecycle import EnsembleClaim
from models.enums import EnsembleStatus
from models.holder import this_process
from models.settings import Settings
from models.spec import DataSpec
from models.tables import Ensemble, Job
from worker.data import DataError, load_scalers, sources
from worker.ensemble_metrics import held_out_metrics, loss_name
from worker.ensemble_model import Member, assemble
from worker.heartbeat import heartbeat
from worker.job_store import stale_cutoff
from worker.sources import Source
from worker.training import HeldElsewhere, find_job_dataset

log = logging.getLogger(__name__)
CHUNK_BYTES = 64 * 1024 * 1024  # held-out x read and predicted this much at a time
PREDICT_BATCH = 256


class BuildError(ValueError):
    """The members cannot make this ensemble; the message is for the user."""


@dataclass(frozen=True)
class Plan:
    """What the build reads from the database, so that no connection is held while it runs."""

    ensemble: Ensemble
    jobs: list[Job]  # the members, in the ensemble's order


def _plan(factory: sessionmaker[Session], ensemble_id: str) -> Plan:
    with transaction(factory) as session:
        ensemble = session.get_one(Ensemble, ensemble_id)
        found = {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(ensemble.members)))}
        missing = [job_id for job_id in ensemble.members if job_id not in found or found[job_id].model_path is None]
        if missing:
            raise BuildError(f"member job {missing[0]} or its model no longer exists")
        return Plan(ensemble, [found[job_id] for job_id in ensemble.members])


def _member(store: ArtifactStore, job: Job) -> Member:
    model = keras.saving.load_model(store.resolve(job.model_path or ""), safe_mode=True)
    x_scaler, y_scaler = load_scalers(store.scaler_path(job.id))
    return Member(job.id, model, x_scaler, y_scaler, logits_activation(job.spec["compile"]["loss"]))


def _predict(branches: keras.Model, x: Source, indices: np.ndarray) -> list[np.ndarray]:
    """Each output of ``branches`` on the samples ``indices`` (raw x, read a chunk at a time)."""
    outputs: list[list[np.ndarray]] = [[] for _ in branches.outputs]
    per_row = 4 * int(np.prod([d or 64 for d in x.sample_shape]))  # float32 as predicted (a sequence: 64 steps)
    for piece in chunks(indices, per_row, CHUNK_BYTES):
        predicted = branches.predict(x.fetch(piece).astype(np.float32), batch_size=PREDICT_BATCH, verbose=0)
        for out, values in zip(outputs, predicted, strict=True):
            out.append(np.asarray(values))
    return [np.concatenate(out) for out in outputs]


def build(factory: sessionmaker[Session], store: ArtifactStore, ensemble_id: str) -> tuple[dict[str, Any], str]:
    """Returns (the evaluation, the model's path in the artifact store)."""
    plan = _plan(factory, ensemble_id)
    jobs, kind = plan.jobs, plan.ensemble.kind
    arrays = find_job_dataset(factory, store, plan.ensemble.dataset_ref).open()
    x, y = sources(arrays, DataSpec.model_validate(jobs[0].spec["data"]))
    try:
        held_out = common_held_out([held_out_parts(len(x), DataSpec.model_validate(job.spec["data"]), job.spec["seed"])
                                    for job in jobs])
    except NoHeldOut as none:
        raise BuildError(str(none)) from none
    members = [_member(store, job) for job in jobs]
    ensemble, branches = assemble(members)
    *each, average = _predict(branches, x, held_out.indices)
    targets = y.fetch(held_out.indices)
    losses = [canonical_loss(job.spec["compile"]["loss"])[0] for job in jobs]
    loss = loss_name(kind, is_binary(jobs[0].spec["compile"]["loss"]), losses)
    result = {
        "held_out": {"part": held_out.part, "samples": len(held_out)},
        "loss": loss,
        "ensemble": held_out_metrics(kind, loss, average, targets),
        "members": [{"job_id": member.job_id, "metrics": held_out_metrics(kind, loss, predicted, targets)}
                    for member, predicted in zip(members, each, strict=True)],
    }
    model_path = store.ensemble_model_path(ensemble_id)
    final = store.resolve(model_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f"model.{os.getpid()}.partial.keras")  # Keras wants the suffix
    ensemble.save(partial)
    os.replace(partial, final)  # a reader sees the old file or the new one, never half of one
    return result, model_path


def run_ensemble(factory: sessionmaker[Session], ensemble_id: str, *, settings: Settings) -> None:
    """Build one ensemble to its end.

    Raises:
        HeldElsewhere: another worker is building it and its heartbeat is fresh: retry later.
    """
    with transaction(factory) as session:
        claim = ensemble_lifecycle.claim(session, ensemble_id, worker=this_process().name,
                                         stale_before=stale_cutoff(settings.running_stale_after_s))
        status = None if claim is not None else session.scalar(select(Ensemble.status).where(
            Ensemble.id == ensemble_id))
    if claim is None:
        if status is EnsembleStatus.running:
            raise HeldElsewhere(ensemble_id)
        log.info("ensemble %s is not claimable (%s)", ensemble_id, status)
        return
    global_state.reset()  # nothing an earlier job changed in Keras/TF configuration reaches this build
    store = ArtifactStore(settings.artifacts)
    try:
        with heartbeat(lambda: _beat(factory, claim), settings.heartbeat_interval_s):
            result, model_path = build(factory, store, ensemble_id)
    except OperationalError:
        raise  # the database went away: the task retries, and the claim taken by this process is taken again
    except (BuildError, DataError) as exc:
        _finish(factory, claim, status=EnsembleStatus.failed, error={"type": type(exc).__name__, "message": str(exc)})
        return
    except Exception as exc:  # Keras raised on a member's model or data: the build fails, the worker goes on
        log.exception("ensemble %s failed", ensemble_id)
        _finish(factory, claim, status=EnsembleStatus.failed,
                error={"type": type(exc).__name__, "message": keras_message(exc, limit=2000)})
        return
    finally:
        keras.backend.clear_session()
    _finish(factory, claim, status=EnsembleStatus.succeeded, result=result, model_path=model_path)


def _beat(factory: sessionmaker[Session], claim: EnsembleClaim) -> None:
    with transaction(factory) as session:
        ensemble_lifecycle.beat(session, claim)


def _finish(factory: sessionmaker[Session], claim: EnsembleClaim, **outcome: Any) -> None:
    with transaction(factory) as session:
        if not ensemble_lifecycle.finish(session, claim, **outcome):
            log.warning("ensemble %s: not finished by this worker, which lost its claim meanwhile", claim.ensemble_id)
