"""Ensembles: create (check the members, queue the build), read, list, the model file.

Returns rows (``Ensemble``); the routes build the response schemas. The build itself
(loading the members' models, evaluating them) runs on a worker (``worker.ensemble``).
"""

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import Page, Rows, UnitOfWork
from api.errors import Conflict, NotFound, TooManyRequests
from api.queue import TrainingQueue
from api.services.ensemble_members import check_members
from api.tenancy import current_tenant
from api.validation.pool import ProcessPool
from datastore.artifacts import ArtifactStore
from models import ensemble_lifecycle
from models.ids import new_id
from models.settings import Settings
from models.tables import Ensemble


def create_ensemble(uow: UnitOfWork, job_ids: list[str], name: str | None, *, settings: Settings,
                    queue: TrainingQueue, store: ArtifactStore, validator: ProcessPool) -> Ensemble:
    """Check the members, insert the ensemble as queued, send its build once committed.

    A tenant has at most ``max_queued_jobs_per_tenant`` ensembles queued or being built (429 past it)."""
    session = uow.session
    members = check_members(session, job_ids, store=store, validator=validator)
    try:
        ensemble = ensemble_lifecycle.create(session, Ensemble(
            id=new_id("ens"), tenant=current_tenant(session), name=name, members=[job.id for job in members.jobs],
            dataset_ref=members.dataset_ref, kind=members.kind), max_unfinished=settings.max_queued_jobs_per_tenant)
    except ensemble_lifecycle.TooManyBuilds as exc:
        raise TooManyRequests(str(exc)) from exc
    uow.after_commit(lambda: queue.send_ensemble(ensemble.id))
    return ensemble


def get_ensemble(session: Session, ensemble_id: str) -> Ensemble:
    ensemble = session.get(Ensemble, ensemble_id)
    if ensemble is None:
        raise NotFound(f"no ensemble with id '{ensemble_id}'")
    return ensemble


def list_ensembles(session: Session, page: Page) -> Rows[Ensemble]:
    query = select(Ensemble).order_by(Ensemble.id.desc()).limit(page.limit + 1)
    if page.cursor:
        query = query.where(Ensemble.id < page.cursor)
    return page.of(session.scalars(query).all(), lambda ensemble: ensemble.id)


def model_file(ensemble: Ensemble, store: ArtifactStore) -> Path:
    """The ensemble's saved model: 409 while it is built, 404 when the build failed."""
    if ensemble.model_path is None:
        if not ensemble.status.finished:
            raise Conflict(f"ensemble '{ensemble.id}' is {ensemble.status.value}; its model is saved once it is built")
        raise NotFound(f"ensemble '{ensemble.id}' has no model ({ensemble.status.value})")
    path = store.resolve(ensemble.model_path)
    if not path.exists():
        raise NotFound(f"the model file of ensemble '{ensemble.id}' is missing from the artifact store")
    return path
