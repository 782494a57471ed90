"""Stream tokens: how a browser's ``EventSource`` authenticates, which cannot send headers.

``POST /v1/jobs/{id}/events:token`` (with the API key, as every call) gives a token that
``GET /v1/jobs/{id}/events?token=`` accepts without the key, so the key never goes into a
URL. A token is ``<payload>.<signature>``: the payload (tenant, job, expiry) in base64url
JSON, signed with HMAC-SHA256 under a secret of the server's (``secret_of``). It is
checked only when a stream starts: an open stream keeps running past the expiry, and
a reconnect (``Last-Event-ID``) needs a valid token, so a page asks for a new one before
it reconnects. Nothing is stored: a token cannot be revoked, hence the short life
(``stream_token_ttl_s``, 5 minutes by default); revoking the key stops new tokens.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from datastore.artifacts import ArtifactStore
from models.settings import Settings

SECRET_FILE = "stream-secret"
STREAM = "stream"


@dataclass(frozen=True)
class Grant:
    tenant: str
    job_id: str
    expires_at: float  # Unix seconds


def secret_of(settings: Settings) -> bytes:
    """``TRAINYARD_STREAM_SECRET`` if set (every API process of a deployment must share it),
    else a secret made at the first start and kept (mode 600) in ``<data dir>/stream-secret``,
    or in distributed mode in the artifact store (``ArtifactStore.stream_secret_path``): the volume
    every API process mounts, which outlives their containers (a data dir in a container does not)."""
    if settings.stream_secret is not None:
        return settings.stream_secret.get_secret_value().encode()
    if settings.embedded:
        path = Path(settings.data_dir) / SECRET_FILE
    else:
        path = ArtifactStore(settings.artifacts).stream_secret_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made before, or by another process starting at the same time
        return _read_secret(path)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(32))
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    for _ in range(50):  # another process may have created it and not yet written it
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it, and the next start makes a new secret")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, purpose: str, payload: str) -> str:
    # One key per purpose, derived from the secret: a stream token is never taken for a session cookie.
    key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign(secret: bytes, purpose: str, claims: dict[str, object]) -> str:
    """``claims`` (with ``e``, the expiry in Unix seconds) as ``<payload>.<signature>``."""
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, purpose, payload)}"


def unsign(secret: bytes, purpose: str, token: str, now: float | None = None) -> dict[str, object] | None:
    """The claims of a token signed for ``purpose`` and not expired; None otherwise."""
    payload, _, signature = token.partition(".")
    if not hmac.compare_digest(signature.encode(), _sign(secret, purpose, payload).encode()):
        return None
    try:
        claims = json.loads(_unb64(payload))
        expires_at = float(claims["e"])
    except (ValueError, KeyError, TypeError):
        return None
    return claims if expires_at > (time.time() if now is None else now) else None


def issue(secret: bytes, tenant: str, job_id: str, ttl_s: float, now: float | None = None) -> tuple[str, Grant]:
    grant = Grant(tenant, job_id, (time.time() if now is None else now) + ttl_s)
    return sign(secret, STREAM, {"t": tenant, "j": job_id, "e": grant.expires_at}), grant


def verify(secret: bytes, token: str, job_id: str, now: float | None = None) -> Grant | None:
    """The grant of a token signed with ``secret``, for ``job_id``, not expired; None otherwise."""
    claims = unsign(secret, STREAM, token, now)
    if claims is None or claims.get("j") != job_id or not isinstance(claims.get("t"), str):
        return None
    return Grant(str(claims["t"]), job_id, float(claims["e"]))  # type: ignore[arg-type]
