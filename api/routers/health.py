from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from api.deps import QueueDep
from api.queue import TrainingQueue
from api.schemas.errors import error_response
from broker import queue_marker
from models.db import utcnow
from models.enums import JobStatus
from models.tables import Job

router = APIRouter(tags=["health"])

READINESS = {"type": "object", "required": ["status", "checks"], "properties": {
    "status": {"type": "string", "enum": ["ready", "not_ready"]},
    "checks": {"type": "object", "additionalProperties": {"type": "string"},
               "description": "`ok`, or `error: <exception type>`, for `database` and `broker`"}}}


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database and the broker answer", responses={
    200: {"description": "ready", "content": {"application/json": {"schema": READINESS}}},
    503: {"description": "not ready: the checks say which", "content": {"application/json": {"schema": READINESS}}}})
def readyz(request: Request, queue: QueueDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with request.app.state.session_factory() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001  (readiness reports whatever failed, by its type)
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        queue.ping()
        checks["broker"] = "lost its queues: queued jobs wait to be re-sent" if _queues_lost(request, queue) else "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


def _queues_lost(request: Request, queue: TrainingQueue) -> bool:
    """The broker came back empty (see broker/queue_marker.py) while jobs wait in the queue:
    their messages are gone until the reconciler sends them again."""
    with queue.celery.connection_for_write() as connection:
        if not queue_marker.queues_lost(connection, queue.queue):
            return False
    with request.app.state.session_factory() as session:
        return session.scalar(select(Job.id).where(Job.status == JobStatus.queued).limit(1)) is not None


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse, responses={
    200: {"description": "the Prometheus text exposition format",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    503: error_response(503)})
def metrics(request: Request) -> Response:
    with request.app.state.session_factory() as session:
        counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        oldest = session.scalar(select(func.min(Job.created_at)).where(Job.status == JobStatus.queued))
    for status in JobStatus:
        request.app.state.jobs_gauge.labels(status=status.value).set(counts.get(status, 0))
    # With trainyard_jobs{status="running"} == 0, a growing age means workers that train nothing.
    request.app.state.oldest_queued_gauge.set((utcnow() - oldest).total_seconds() if oldest else 0)
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
