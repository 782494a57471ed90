"""The worker's data facts (preflight of auto-retries, diagnosis) are the API's preflight facts."""

import io

import numpy as np
import pytest

from api.services.data_facts import facts_for
from api.services.datasets import find, upload_dataset
from api.tenancy import scope
from datastore.artifacts import ArtifactStore
from diagnosis.facts import dataset_facts
from tests.data_files import image_zip, npz_bytes, sequences
from worker.training import find_job_dataset


@pytest.mark.parametrize(("filename", "content"), [
    ("strokes.npz", npz_bytes(**sequences(n=30))),
    ("faces.zip", image_zip(per_class=4, size=10)),
    ("table.npz", npz_bytes(x=np.random.default_rng(0).normal(size=(30, 3)) * [1, 10, 1000], y=np.arange(30) % 2)),
])
def test_the_worker_reads_the_scale_of_x_the_api_read(db_session, session_factory, settings, filename, content):
    store = ArtifactStore(settings.artifacts)
    scope(db_session, "default")
    uploaded, _ = upload_dataset(db_session, store, filename=filename, source=io.BytesIO(content), settings=settings)
    db_session.commit()

    api = facts_for(find(db_session, store, uploaded.id), "x", "y")
    found = find_job_dataset(session_factory, store, uploaded.id)
    worker = dataset_facts(found.open(), "x", "y", found.description)

    assert api is not None and worker is not None and api.x_scale is not None
    assert (api.x_scale.abs_max, api.x_scale.min) == (worker.x_scale.abs_max, worker.x_scale.min)
    np.testing.assert_array_equal(api.x_scale.feature_std, worker.x_scale.feature_std)
    assert api.samples == worker.samples == (8 if filename == "faces.zip" else 30)
