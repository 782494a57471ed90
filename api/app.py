"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry, Gauge

from api import access_log
from api.deps import Admission
from api.docs import install_docs
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.metrics import RequestMetrics, ServiceCollector
from api.openapi import install_openapi
from api.queue import TrainingQueue
from api.routers import datasets, deliveries, ensembles, events, health, jobs, predict, session, sweeps, tensorboard
from api.services.datasets import sweep_stale_uploads
from api.services.event_listener import PgListener
from api.services.events import EventHub
from api.stream_tokens import secret_of
from api.tenancy import KeyCache
from api.ui.mount import install_ui
from api.validation.pool import ProcessPool
from api.validation.spec_checks import spec_check_pool
from datastore.artifacts import ArtifactStore
from models.db import engine_for, make_session_factory
from models.outbox import notify_after_commit
from models.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, validator: ProcessPool | None = None) -> FastAPI:
    """The app; it imports no TensorFlow: specs are checked by a pool of validator processes.

    Args:
        validator: a pool the caller started and will stop (tests share one between
            apps). By default the app makes its own, starts it at start-up (the
            children import TensorFlow then, not in the first request) and stops it
            on shutdown.
    """
    settings = settings or get_settings()
    owns_validator = validator is None
    pool = spec_check_pool(settings) if validator is None else validator

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sized with the pool: more threads than requests admitted to the database (Settings).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        await anyio.to_thread.run_sync(sweep_stale_uploads, settings, app.state.store, app.state.session_factory)
        if owns_validator:
            await run_in_threadpool(pool.start)
        await anyio.to_thread.run_sync(app.state.service_metrics.start)  # its counters count from now
        if app.state.event_listener is not None:
            app.state.event_listener.start()
        try:
            yield
        finally:
            if app.state.event_listener is not None:
                await app.state.event_listener.stop()
            await app.state.event_hub.close()
            if owns_validator:
                await run_in_threadpool(pool.stop)
            app.state.engine.dispose()

    app = FastAPI(
        title="Trainyard",
        version="1.0.0",
        summary="Runs Keras training jobs and tells you why a model does not learn.",
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs, not from FastAPI's CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine_for(settings)
    app.state.admission = Admission(settings.db_admitted_requests, settings.db_admission_timeout_s)
    app.state.session_factory = make_session_factory(app.state.engine)
    # The collaborators routes get through api/deps.py (get_queue, get_store, get_validator).
    app.state.queue = TrainingQueue(settings)
    app.state.store = ArtifactStore(settings.artifacts)
    app.state.validator = pool
    app.state.keys = KeyCache(settings.api_key_cache_s)
    app.state.stream_secret = secret_of(settings)  # signs stream tokens (api/stream_tokens.py)
    access_log.install()  # stream tokens travel in query strings: masked in uvicorn's access log
    # Events the API commits (submit, cancel) wake the webhook delivery, as the worker's do.
    notify_after_commit(app.state.session_factory, lambda job_id: app.state.queue.send_deliveries(job_id),
                        lambda sweep_id: app.state.queue.send_sweep_deliveries(sweep_id))
    # SSE streams: woken by Postgres NOTIFY in distributed mode, polling in embedded mode (and
    # while the listener is down). Webhook deliveries keep their own wake-up above (a Celery
    # message after commit): they run in the delivery workers, which hold no listener.
    app.state.event_hub = EventHub(app.state.session_factory, settings.events_poll_interval_s,
                                   backlog=settings.events_client_backlog)
    push = settings.events_push and settings.database_dsn.startswith("postgresql")
    app.state.event_listener = PgListener(settings.database_dsn, app.state.event_hub) if push else None
    app.state.registry = CollectorRegistry()
    app.state.jobs_gauge = Gauge("trainyard_jobs", "Jobs by status", ["status"], registry=app.state.registry)
    app.state.oldest_queued_gauge = Gauge("trainyard_oldest_queued_job_age_seconds",
                                          "Seconds since the oldest queued job was submitted (0: none queued)",
                                          registry=app.state.registry)
    app.state.service_metrics = ServiceCollector(app.state.session_factory, app.state.queue, settings)
    app.state.registry.register(app.state.service_metrics)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(RequestMetrics, registry=app.state.registry)  # outside the body limit: what a client waits
    if settings.cors_origin_list:  # added last, so outermost: preflights and errors get CORS headers too
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key"],
                           expose_headers=["Retry-After", "Location"], max_age=600)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(sweeps.router)
    app.include_router(predict.router)
    app.include_router(tensorboard.router)
    app.include_router(datasets.router)
    app.include_router(ensembles.router)
    app.include_router(events.router)
    app.include_router(deliveries.router)
    install_ui(app)
    app.include_router(session.router)
    install_openapi(app)
    install_docs(app)
    return app
