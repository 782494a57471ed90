"""The FastAPI application factory."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.openapi import install_openapi
from api.queue import TrainingQueue
from api.tenancy import KeyCache
from api.routers import datasets, events, health, jobs, webhooks
from api.services.events import EventHub
from models.db import make_engine, make_session_factory
from models.outbox import notify_after_commit
from models.settings import Settings, get_settings

# The API checks specs with Keras on the CPU; it must never take GPU memory
# that the workers on the same host need.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def create_app(settings: Settings | None = None, *, warm_keras: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_keras:  # import Keras now, not in the first request
            import keras_bridge.validate  # noqa: F401
        yield
        await app.state.event_hub.close()
        app.state.engine.dispose()

    app = FastAPI(
        title="Trainyard",
        version="1.0.0",
        summary="Runs Keras training jobs and tells you why a model does not learn.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_dsn)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.queue = TrainingQueue(settings)
    app.state.keys = KeyCache(settings.api_key_cache_s)
    # Events the API commits (submit, cancel) wake the webhook delivery, as the worker's do.
    notify_after_commit(app.state.session_factory, lambda job_id: app.state.queue.send_deliveries(job_id))
    app.state.event_hub = EventHub(app.state.session_factory, settings.events_poll_interval_s)
    app.state.registry = CollectorRegistry()
    app.state.jobs_gauge = Gauge("trainyard_jobs", "Jobs by status", ["status"], registry=app.state.registry)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(datasets.router)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    install_openapi(app)
    return app
