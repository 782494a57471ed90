"""Noticing that the broker lost its queues (Redis restarted without persistence).

The reconciler writes a marker key next to the training queue once it has
(re-)sent every queued job. A Redis that restarts without persistence comes
back empty: the marker is gone with the messages, so the next reconcile (and
``/readyz``) knows every queued job's message was lost, at once, instead of
after ``queued_stale_after_s``. A Redis with AOF keeps both. The embedded
broker is a file of the database and loses nothing on its own.
"""

from datetime import UTC, datetime

from kombu import Connection


def marker_key(train_queue: str) -> str:
    return f"trainyard:{train_queue}:queues-intact"


def _redis(connection: Connection):  # type: ignore[no-untyped-def]
    return connection.default_channel.client if connection.transport.driver_type == "redis" else None


def queues_lost(connection: Connection, train_queue: str) -> bool:
    """Whether the broker has no marker: it lost its queues, or was never marked (a first start)."""
    client = _redis(connection)
    return client is not None and not client.exists(marker_key(train_queue))


def mark_queues_intact(connection: Connection, train_queue: str) -> None:
    client = _redis(connection)
    if client is not None:
        client.set(marker_key(train_queue), datetime.now(UTC).isoformat())
