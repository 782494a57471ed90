"""Periodic housekeeping of the artifact store, run by the control worker's beat.

``trainyard.sweep_uploads`` removes what interrupted uploads left behind (see
``datastore.sweep``): part files and staging folders untouched for the grace
period, and dataset folders that no row references. The API sweeps once at
start-up too; this catches what a running API's crashes leave.
"""

from celery import shared_task

from broker.tasks import SWEEP_UPLOADS_TASK
from datastore.artifacts import ArtifactStore
from datastore.sweep import sweep
from models.dataset_files import claims, referenced_contents
from models.db import make_engine, make_session_factory
from models.settings import get_settings


@shared_task(name=SWEEP_UPLOADS_TASK, ignore_result=True)
def sweep_uploads() -> dict[str, list[str]]:
    settings = get_settings()
    engine = make_engine(settings.database_dsn)
    try:
        factory = make_session_factory(engine)
        swept = sweep(ArtifactStore(settings.artifacts), settings.upload_grace_s, claims(factory),
                      lambda: referenced_contents(factory))
    finally:
        engine.dispose()
    return {"uploads": swept.uploads, "datasets": swept.datasets}
