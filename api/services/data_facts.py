"""The data facts of the datasets that jobs name, for the API's preflight checks: a per-process cache."""

import threading

from datastore.errors import DatasetFileError
from datastore.lookup import FoundDataset
from diagnosis.facts import DataFacts, dataset_facts

# Datasets never change after upload, so their facts are computed once per process.
_facts: dict[tuple[str, str, str], DataFacts | None] = {}
_lock = threading.Lock()
_MAX_CACHED = 64


def facts_for(dataset: FoundDataset, x: str | list[str], y: str | list[str]) -> DataFacts | None:
    """The facts of ``x`` and ``y`` of a dataset found by ``api.services.datasets.find`` (so it exists
    for this tenant); None where its files cannot be read, which skips the data checks."""
    key = (dataset.ref, str(x), str(y))
    with _lock:
        if key in _facts:
            return _facts[key]
    try:
        facts = dataset_facts(dataset.open(), x, y, dataset.description)
    except (DatasetFileError, OSError, ValueError):
        facts = None
    with _lock:
        if len(_facts) >= _MAX_CACHED:
            _facts.pop(next(iter(_facts)))
        _facts[key] = facts
    return facts
