"""One Postgres LISTEN connection per API process: committed events wake the hub's readers.

The NOTIFY comes from a trigger on ``job_events`` (migration 0007e), so it is sent
only when the event's transaction commits, by whichever process wrote it. This
connection holds no transaction and no pooled slot; it lives beside the engine's
pool. When it breaks (the database restarts, an admin terminates it, the network
drops), the hub polls until it is back; each (re)connect makes every reader read
from its cursor once, so what was committed while nobody listened still arrives.
"""

import asyncio
import logging

import psycopg
from sqlalchemy.engine import make_url

from api.services.events import EventHub
from models.events import EVENTS_CHANNEL

log = logging.getLogger(__name__)
# A peer that vanished without closing the socket is noticed within ~idle + interval * count seconds.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) as libpq takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener:
    """Listens on ``EVENTS_CHANNEL`` and calls ``hub.notify(job_id)`` for each notification.

    Args:
        database_url: the API's database (SQLAlchemy form).
        hub: told of each notification, and of the connection coming and going.
        retry_s: the first wait before reconnecting; it doubles up to ``retry_max_s``.
        connect_timeout_s: for each connection attempt.
    """

    def __init__(self, database_url: str, hub: EventHub, *, retry_s: float = 0.5, retry_max_s: float = 10.0,
                 connect_timeout_s: int = 5) -> None:
        self.conninfo = libpq_url(database_url)
        self.hub = hub
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.connect_timeout_s = connect_timeout_s
        self.pid: int | None = None  # the listening backend's pid while connected
        self.connects = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="events-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        wait = self.retry_s
        while True:
            connects = self.connects
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  (whatever broke the connection, the hub polls meanwhile)
                log.warning("event listener disconnected (%s: %s); polling until it reconnects",
                            type(exc).__name__, str(exc).strip()[:200])
            finally:
                if self.pid is not None or self.hub.pushed:
                    self.pid = None
                    self.hub.set_pushed(False)
            if self.connects > connects:
                wait = self.retry_s  # it was connected: the first attempt after a loss comes quick
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.retry_max_s)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True,
                                                     connect_timeout=self.connect_timeout_s, **KEEPALIVES)
        async with conn:
            await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
            self.pid = conn.info.backend_pid
            self.connects += 1
            self.hub.set_pushed(True)  # after LISTEN: every reader catches up from its cursor
            async for note in conn.notifies():
                self.hub.notify(note.payload)
            raise ConnectionError("the notification stream ended")
