"""Sending work to the workers, by task name (``broker.tasks``): the API never imports the worker."""

import logging
from collections.abc import Mapping
from typing import Any

from celery import Celery

import broker.embedded  # noqa: F401  (registers the embedded broker transport)
from broker.tasks import Sender
from models.settings import Settings, celery_options

# One quick second try: it reconnects a pooled connection that a broker restart left stale.
SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
log = logging.getLogger(__name__)


def api_broker_options(settings: Settings) -> dict[str, object]:
    """The workers' broker options, plus bounds on every wait: the API sends from a
    request, which must answer within seconds when the broker is away."""
    options = celery_options(settings)
    timeout = settings.broker_send_timeout_s
    options["broker_connection_timeout"] = timeout
    if settings.broker_dsn.startswith("redis"):  # without these, a silent host blocks a send for minutes
        transport = dict(options.get("broker_transport_options") or {})  # type: ignore[call-overload]
        transport.update(socket_connect_timeout=timeout, socket_timeout=timeout)
        options["broker_transport_options"] = transport
    return options


class TrainingQueue:
    def __init__(self, settings: Settings) -> None:
        self.queue = settings.train_queue
        self.celery = Celery("trainyard-api", broker=settings.broker_dsn)
        self.celery.conf.update(**api_broker_options(settings))
        self.sender = Sender(self.celery, settings, retry_policy=SEND_RETRY)

    def send(self, job_id: str, resources: Mapping[str, Any] | None = None) -> None:
        """Send the job's message; called after its row has committed, so it never raises.

        A job whose message could not be sent (the broker is away) stays queued in
        the database, which is the source of truth: the reconciler re-sends queued
        jobs whose message is overdue. The client has its 202, and a retry with the
        same Idempotency-Key gets the same job.
        """
        try:
            self.sender.train(job_id, resources)
        except Exception as exc:  # noqa: BLE001 - any failure to send leaves the job to the reconciler
            log.warning("job %s is queued, but its message could not be sent (%s: %s); the reconciler will "
                        "send it", job_id, type(exc).__name__, exc)

    def send_ensemble(self, ensemble_id: str) -> None:
        """As ``send``: a build whose message is lost stays queued and the reconciler sends it."""
        try:
            self.sender.ensemble(ensemble_id)
        except Exception as exc:  # noqa: BLE001 - any failure to send leaves the build to the reconciler
            log.warning("ensemble %s is queued, but its message could not be sent (%s: %s); the reconciler will "
                        "send it", ensemble_id, type(exc).__name__, exc)

    def send_deliveries(self, job_id: str) -> None:
        self.sender.deliveries(job_id)

    def send_sweep_deliveries(self, sweep_id: str) -> None:
        self.sender.sweep_deliveries(sweep_id)

    def ping(self, timeout: float = 2.0) -> None:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
