"""The data facts of a dataset, for the preflight checks in the API (cached per process)."""

import threading
import numpy as np
from sqlalchemy.orm import Session

from datastore.artifacts import ArtifactStore
from datastore.builtin import is_builtin
from datastore.errors import DatasetFileError
from datastore.reader import StoredDataset, open_dataset
from diagnosis.facts import DataFacts, dataset_facts
from models.settings import Settings
from models.tables import Dataset

# Datasets never change after upload, so their facts are computed once per process.
_facts: dict[tuple[str, str, str], DataFacts | None] = {}
_lock = threading.Lock()
_MAX_CACHED = 64


def _arrays(session: Session, settings: Settings, ref: str) -> StoredDataset | dict[str, np.ndarray]:
    store = ArtifactStore(settings.artifacts)
    if is_builtin(ref):
        return open_dataset(store, ref)
    dataset = session.get(Dataset, ref)
    if dataset is None:
        return {}
    return open_dataset(store, dataset)


def facts_for(session: Session, settings: Settings, ref: str, x: str | list[str], y: str | list[str]) -> DataFacts | None:
    key = (ref, str(x), str(y))
    with _lock:
        if key in _facts:
            return _facts[key]
    try:
        facts = dataset_facts(_arrays(session, settings, ref), x, y)
    except (DatasetFileError, OSError, ValueError):
        facts = None
    with _lock:
        if len(_facts) >= _MAX_CACHED:
            _facts.pop(next(iter(_facts)))
        _facts[key] = facts
    return facts

