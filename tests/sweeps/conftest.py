from collections.abc import Iterator

import optuna
import pytest

from sweeps.storage import storage


@pytest.fixture
def optuna_storage(pg_url: str) -> Iterator[optuna.storages.RDBStorage]:
    """Optuna's storage in the test database (the driver's and the judges' studies)."""
    yield storage(pg_url)
