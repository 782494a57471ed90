"""Who is calling, and the rule that they only ever see their own rows.

``get_tenant`` turns ``Authorization: Bearer <key>`` into a tenant name. The
request's session then carries that tenant (``session.info["tenant"]``), and a
session event adds ``tenant = :tenant`` to every ORM query of jobs, datasets, ensembles and sweeps
made through it: a new query cannot forget the filter. Rows of another tenant
are simply not found, so the API answers 404, never 403, and ids do not leak.
Worker and CLI sessions carry no tenant and see everything.
"""

import threading
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Header, Request
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from api.errors import ApiError
from api.stream_tokens import unsign
from models.keys import digest, tenant_of_digest
from models.tables import Dataset, Ensemble, Job, Sweep

TENANT = "tenant"
ALL_TENANTS = "all_tenants"  # execution option: an internal query that must see every tenant's rows
LOCALHOST = {"127.0.0.1", "::1"}
STREAM_GRANT_TENANT = "stream_grant_tenant"  # request.state: the tenant a valid stream token names
SESSION_COOKIE = "trainyard_session"
SESSION = "session"  # the signing purpose of session cookies (api/stream_tokens.py)


class Unauthorized(ApiError):
    status_code, code = 401, "unauthorized"


@event.listens_for(Session, "do_orm_execute")
def _scope_to_tenant(state: ORMExecuteState) -> None:
    tenant = state.session.info.get(TENANT)
    if tenant is None or not state.is_select or state.execution_options.get(ALL_TENANTS):
        return
    state.statement = state.statement.options(
        with_loader_criteria(Job, Job.tenant == tenant, include_aliases=True),
        with_loader_criteria(Dataset, Dataset.tenant == tenant, include_aliases=True),
        with_loader_criteria(Ensemble, Ensemble.tenant == tenant, include_aliases=True),
        with_loader_criteria(Sweep, Sweep.tenant == tenant, include_aliases=True),
    )


class KeyCache:
    """Recent key → tenant lookups, so that a burst of requests costs one query."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s  # a revoked key stops working within this
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, str | None]] = {}

    def lookup(self, request: Request, key: str) -> str | None:
        return self.lookup_digest(request, digest(key))

    def lookup_digest(self, request: Request, sha256: str) -> str | None:
        """By the key's digest: what the cache holds (not keys), and what a session cookie carries."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(sha256)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        with request.app.state.session_factory() as session:
            tenant = tenant_of_digest(session, sha256)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[sha256] = (now, tenant)
        return tenant


def get_tenant(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    settings = request.app.state.settings
    granted = getattr(request.state, STREAM_GRANT_TENANT, None)
    if granted is not None:  # a stream token, checked before this (api/routers/events.py)
        return granted
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
        tenant = request.app.state.keys.lookup(request, key.strip())
        if tenant is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)")
        return tenant
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return session_tenant(request, cookie)
    client = request.client.host if request.client else ""
    if settings.allow_anonymous_localhost and client in LOCALHOST:
        return settings.anonymous_tenant
    raise Unauthorized("send an API key: Authorization: Bearer <key> (create one with `trainyard keys create`)")


def session_tenant(request: Request, cookie: str) -> str:
    """The tenant of a session cookie (POST /v1/session), if its key is still valid.

    The cookie is SameSite=Strict; a request that says it comes from another origin (a
    page of the same site, which SameSite lets through) is refused all the same."""
    origin = request.headers.get("origin")
    # The host only: behind a proxy that ends TLS, the page is https and the request here http.
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise Unauthorized("a session cookie is accepted from this server's own pages only: "
                           "from another origin, send the API key in the Authorization header")
    claims = unsign(request.app.state.stream_secret, SESSION, cookie)
    tenant = None if claims is None else request.app.state.keys.lookup_digest(request, str(claims.get("k")))
    if claims is None or tenant is None or tenant != claims.get("t"):
        raise Unauthorized("the session has expired or its API key was revoked: sign in again (POST /v1/session)")
    return tenant


def scope(session: Session, tenant: str) -> None:
    session.info[TENANT] = tenant


def current_tenant(session: Session) -> str:
    tenant: Any = session.info.get(TENANT)
    if tenant is None:
        raise RuntimeError("this session is not bound to a tenant")
    return tenant


Tenant = Annotated[str, Depends(get_tenant)]
