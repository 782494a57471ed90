"""API keys for tests that run the real app against committed rows."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key


def new_key(factory: sessionmaker[Session], tenant: str) -> str:
    with factory() as session, session.begin():
        _, key = create_key(session, tenant)
    return key


def authorize(client: TestClient, factory: sessionmaker[Session], tenant: str = "default") -> str:
    """Give ``client`` a fresh key of ``tenant``; returns the key."""
    key = new_key(factory, tenant)
    client.headers["Authorization"] = f"Bearer {key}"
    return key
