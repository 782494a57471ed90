"""Where Optuna keeps its studies: the service's own database, apart from the service's tables.

Optuna's ``RDBStorage`` creates its tables (``studies``, ``trials``, ...) and stamps its
own Alembic revision in a table named ``alembic_version``, the very name of the service's
Alembic table. In one namespace it would find the service's revision there, call its
schema incompatible and refuse to start (or, on an empty database, stamp its revision
where ``trainyard migrate`` looks for the service's). So:

- Postgres: Optuna's connections set ``search_path`` to the schema ``optuna`` (created by
  migration 0008a; in the URL, ``?options=-csearch_path=optuna``, so that Optuna's own Alembic,
  which makes its engine from the URL alone, sees it too), so every one of its tables,
  ``alembic_version`` included, lives there,
  in the same database and server as the jobs, shared by every API and worker process.
- SQLite (embedded): a file of its own next to the service's (``trainyard-optuna.db``
  beside ``trainyard.db``). A second file also keeps Optuna's writes off the service's one
  write lock, which the sweep driver holds while it asks Optuna for a trial.

``tests/sweeps/test_storage.py`` holds both to it.
"""

from functools import cache
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url

OPTUNA_SCHEMA = "optuna"

optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one INFO line per trial in the service's logs


def optuna_location(database_dsn: str) -> tuple[str, dict[str, Any]]:
    """The URL and engine arguments of Optuna's storage for the service database ``database_dsn``."""
    url = make_url(database_dsn)
    if url.get_backend_name() == "sqlite":
        assert url.database, "the embedded database is a file"
        path = Path(url.database)
        return str(url.set(database=str(path.with_name(f"{path.stem}-optuna{path.suffix}")))), {
            "connect_args": {"timeout": 30}}
    # In the URL, not in the engine's arguments: Optuna's own Alembic (RDBStorage.upgrade, `optuna storage
    # upgrade`) makes an engine from the URL alone, and without the search_path it would read the service's
    # alembic_version.
    options = " ".join(filter(None, [url.query.get("options"), f"-csearch_path={OPTUNA_SCHEMA}"]))  # type: ignore[list-item]
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False), {
        "pool_pre_ping": True, "pool_size": 2, "max_overflow": 4}


def prepare(database_dsn: str) -> None:
    """Create Optuna's tables, or bring them to this Optuna's schema: ``trainyard migrate`` runs it after
    the service's migrations, so that processes starting together do not race to create them."""
    url, engine_kwargs = optuna_location(database_dsn)
    prepared = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_compatibility_check=True)
    if prepared.get_current_version() != prepared.get_head_version():
        prepared.upgrade()
    prepared.engine.dispose()


@cache
def storage(database_dsn: str) -> optuna.storages.RDBStorage:
    """This process's storage (one engine per process, made on first use: engines must not cross a fork)."""
    url, engine_kwargs = optuna_location(database_dsn)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
