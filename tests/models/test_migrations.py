"""Alembic on a real Postgres: upgrade, the schema matches the models, downgrade."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from migrations import downgrade, upgrade
from models import tables  # noqa: F401
from models.db import Base
from tests.conftest import create_database, drop_database


def test_upgrade_matches_models_and_downgrade_removes_everything(tmp_path):
    for url in (create_database("trainyard_migrate"), f"sqlite:///{tmp_path / 'm.db'}"):
        try:
            upgrade(url)
            engine = create_engine(url)
            with engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
                assert {"jobs", "epoch_metrics", "datasets"} <= set(inspect(conn).get_table_names())
            downgrade(url, "base")
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            engine.dispose()
        finally:
            if url.startswith("postgresql"):
                drop_database(url)
