"""The real app on a migrated database of its own, for tests that need committed rows and real
API keys: two tenants' clients, the queue a void no worker reads, everything dropped afterwards."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.validation.pool import ProcessPool
from migrations import upgrade
from models.db import make_engine, make_session_factory
from models.settings import Settings
from tests.auth import authorize
from tests.conftest import REDIS_URL, create_database, drop_database


@dataclass
class CommittedApp:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    app: FastAPI
    validator: ProcessPool
    a: TestClient  # tenant "acme"
    b: TestClient  # tenant "globex"


@contextmanager
def committed_app(name: str, data_dir: Path, validator: ProcessPool, **settings: Any) -> Iterator[CommittedApp]:
    """``settings``: fields of :class:`Settings` besides the database, broker, queue and data folder."""
    url = create_database(f"trainyard_{name}")
    upgrade(url)
    app_settings = Settings(data_dir=data_dir, database_url=url, broker_url=REDIS_URL,
                            train_queue=f"void-{uuid.uuid4().hex[:8]}", **settings)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    app = create_app(app_settings, validator=validator)
    try:
        with TestClient(app) as a, TestClient(app) as b:
            authorize(a, factory, "acme")
            authorize(b, factory, "globex")
            yield CommittedApp(app_settings, engine, factory, app, validator, a, b)
    finally:
        redis.Redis.from_url(REDIS_URL).delete(app_settings.train_queue)
        engine.dispose()
        drop_database(url)
