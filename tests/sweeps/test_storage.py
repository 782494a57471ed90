"""Optuna's tables live in the service's database without touching the service's own: on Postgres in the
schema ``optuna`` (its own ``alembic_version`` there), on SQLite in a file of its own."""

import optuna
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from migrations import alembic_config, upgrade
from sweeps.storage import OPTUNA_SCHEMA, prepare, storage
from tests.conftest import create_database, drop_database

# The service's own head revision, whatever migrations come after the sweeps'.
SERVICE_HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _service_revision(url: str) -> list[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        revisions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    return revisions


def test_on_postgres_optuna_keeps_to_its_schema_and_the_service_migrates_on():
    url = create_database("trainyard_optuna")
    try:
        upgrade(url)
        prepare(url)  # as `trainyard migrate` does: Optuna's tables made before any process uses them
        prepare(url)  # and again: nothing to do
        optuna.create_study(study_name="swp_test", storage=storage(url), direction="minimize").ask()
        engine = create_engine(url)
        with engine.connect() as conn:
            public, private = inspect(conn).get_table_names(), inspect(conn).get_table_names(schema=OPTUNA_SCHEMA)
            optuna_revision = conn.execute(text(f"SELECT version_num FROM {OPTUNA_SCHEMA}.alembic_version")).scalar()
        engine.dispose()
        assert {"studies", "trials", "trial_params", "version_info", "alembic_version"} <= set(private)
        assert not {"studies", "trials", "version_info"} & set(public) and "jobs" not in private
        assert optuna_revision != SERVICE_HEAD
        assert _service_revision(url) == [SERVICE_HEAD]
        storage(url).upgrade()  # Optuna's own Alembic (`optuna storage upgrade`): its engine from the URL alone
        upgrade(url)  # the service's migrations still run (nothing to do) with Optuna's tables beside them
        assert _service_revision(url) == [SERVICE_HEAD]
        assert len(optuna.load_study(study_name="swp_test", storage=storage(url)).trials) == 1
    finally:
        storage(url).engine.dispose()
        drop_database(url)


def test_on_sqlite_optuna_has_a_file_next_to_the_service_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'trainyard.db'}"
    upgrade(url)
    optuna.create_study(study_name="swp_test", storage=storage(url), direction="maximize")
    assert (tmp_path / "trainyard-optuna.db").exists()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert not {"studies", "trials", "version_info"} & set(inspect(conn).get_table_names())
    engine.dispose()
    assert _service_revision(url) == [SERVICE_HEAD]
    upgrade(url)
    assert _service_revision(url) == [SERVICE_HEAD]
