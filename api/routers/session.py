"""POST/DELETE /v1/session: an HTTP-only cookie for pages served by this API itself (same origin).

A page that signs in once with the API key needs to keep the key nowhere after: the
browser sends the cookie, HTTP-only (page scripts cannot read it) and SameSite=Strict
(other sites' pages cannot make the browser send it). It carries the tenant and the
key's digest, signed with the server's secret (api/stream_tokens.py): revoking the key
ends the session within TRAINYARD_API_KEY_CACHE_S. Pages on other origins use the key
header and stream tokens instead (CORS sends no credentials).
"""

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.schemas.errors import error_responses
from api.stream_tokens import sign
from api.tenancy import SESSION, SESSION_COOKIE, Tenant, Unauthorized
from models.keys import digest

router = APIRouter(prefix="/v1/session", tags=["access"])


class SessionOut(BaseModel):
    tenant: str
    expires_at: datetime


@router.post("", status_code=201, response_model=SessionOut, responses=error_responses(),
             summary="Sign in a same-origin page: a session cookie in exchange for the API key")
def create_session(request: Request, response: Response, tenant: Tenant) -> SessionOut:
    """Send the key once (`Authorization: Bearer <key>`); the answer sets the HTTP-only,
    SameSite=Strict cookie `trainyard_session`, accepted as the key by every `/v1`
    request from this server's own pages until it expires
    (`TRAINYARD_SESSION_TTL_S`, 8 h) or the key is revoked."""
    authorization = request.headers.get("authorization", "")
    key = authorization.partition(" ")[2].strip()
    if not key:  # signed in by a cookie or from localhost without a key: nothing to exchange
        raise Unauthorized("send the API key to sign in: Authorization: Bearer <key>")
    ttl = request.app.state.settings.session_ttl_s
    expires_at = time.time() + ttl
    cookie = sign(request.app.state.stream_secret, SESSION, {"t": tenant, "k": digest(key), "e": expires_at})
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(ttl), path="/v1", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return SessionOut(tenant=tenant, expires_at=datetime.fromtimestamp(expires_at, UTC))


@router.delete("", status_code=204, response_class=Response, responses=error_responses(),
               summary="Sign out: the session cookie is removed")
def delete_session(tenant: Tenant) -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/v1", httponly=True, samesite="strict")
    return response
