"""Preflight in the API: the data facts of a dataset, then the checks."""

import threading
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from datastore.artifacts import ArtifactStore
from datastore.builtin import is_builtin
from datastore.errors import DatasetFileError
from datastore.reader import StoredDataset, open_dataset
from datastore.rows import select_rows
from diagnosis.facts import DataFacts, data_facts
from diagnosis.preflight import run_preflight
from models.findings import Finding
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
        arrays = _arrays(session, settings, ref)
        xs, ys = select_rows(arrays, x), select_rows(arrays, y)  # column lists stacked; None for sequences, images
        facts = data_facts(xs, ys) if xs is not None and ys is not None else None
    except (DatasetFileError, OSError, ValueError):
        facts = None
    with _lock:
        if len(_facts) >= _MAX_CACHED:
            _facts.pop(next(iter(_facts)))
        _facts[key] = facts
    return facts


def preflight(spec: dict[str, Any], summary: dict[str, Any], facts: DataFacts | None) -> list[Finding]:
    return run_preflight(spec, summary, facts)
