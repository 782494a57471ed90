"""API keys: made here, stored as a hash, looked up by hash."""

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import utcnow
from models.ids import new_id
from models.tables import ApiKey

PREFIX = "ty_"
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant: str, name: str | None = None) -> tuple[ApiKey, str]:
    """A new key for ``tenant``; returns the row and the key itself (shown once)."""
    if not TENANT_NAME.match(tenant):
        raise ValueError(f"a tenant name is 1-64 lowercase letters, digits, '.', '_' or '-'. Received: {tenant!r}")
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), tenant=tenant, name=name, prefix=key[:10], sha256=digest(key))
    session.add(row)
    return row, key


def tenant_of(session: Session, key: str) -> str | None:
    """The tenant of a valid, unrevoked key; None otherwise."""
    return tenant_of_digest(session, digest(key))


def tenant_of_digest(session: Session, sha256: str) -> str | None:
    """The same, from the key's digest (what a session cookie carries, not the key)."""
    row = session.scalar(select(ApiKey).where(ApiKey.sha256 == sha256, ApiKey.revoked_at.is_(None)))
    return row.tenant if row else None


def revoke(session: Session, key_id: str) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
