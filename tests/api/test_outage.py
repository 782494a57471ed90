"""Outages of the database and the broker, for real: a private Postgres and Redis
that the tests stop and start, and the real API in uvicorn. Every route answers
503 with the JSON error shape and Retry-After, on the same keep-alive
connection, and works again as soon as the server is back; a submit while the
broker is away is accepted (202) and its job kept, once."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session

from models.tables import Job
from tests.servers import ApiServer, PostgresServer, RedisServer, api_env, api_key, wait_until
from tests.specs import IRIS_MLP, spec

RETRY_AFTER_S = 3


@dataclass
class World:
    pg: PostgresServer
    redis: RedisServer
    database_url: str
    api: ApiServer
    key: str  # looked up (and cached by the API) before the outages
    fresh_key: str  # never used before the outage: its lookup needs the database
    train_queue: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=60,
                            headers={"Authorization": f"Bearer {key or self.key}"})

    def jobs_named(self, name: str) -> int:
        engine = create_engine(self.database_url)
        try:
            with Session(engine) as session:
                return session.scalar(select(func.count()).select_from(Job).where(Job.name == name)) or 0
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("outage")
    with PostgresServer.started() as pg, RedisServer.started() as broker:
        url = pg.create_database("outage")
        env = api_env(database_url=url, broker_url=broker.url, data_dir=tmp, api_key_cache_s=3600,
                      outage_retry_after_s=RETRY_AFTER_S)
        api = ApiServer(env, tmp / "api.log")
        try:
            yield World(pg, broker, url, api, api_key(url, "ops"), api_key(url, "ops"), env["TRAINYARD_TRAIN_QUEUE"])
        finally:
            api.stop()
        assert "Exception in ASGI application" not in api.log_text(), api.log_text()[-5000:]


def local_port(response: httpx.Response) -> int:
    """The client's port of the TCP connection that carried ``response``."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "unavailable"
    assert response.json()["error"]["message"]
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert response.headers.get("connection", "").lower() != "close"


def submit(client: httpx.Client, name: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/jobs", json=spec(IRIS_MLP, name=name), headers=headers)


@pytest.mark.e2e  # private Postgres, Redis and API servers
def test_a_database_outage_is_503_on_every_route_and_keeps_the_connection(world: World):
    with world.client() as client, world.client(world.fresh_key) as fresh:
        job_id = submit(client, "before-outage").json()["id"]
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        ports = {local_port(client.get("/v1/jobs"))}
        world.pg.stop("fast")
        try:
            for method, path, body in [
                ("GET", f"/v1/jobs/{job_id}", None),
                ("POST", "/v1/jobs", spec(IRIS_MLP, name="during-outage")),
                ("GET", "/v1/jobs", None),
                ("GET", f"/v1/jobs/{job_id}/curves", None),
                ("POST", f"/v1/jobs/{job_id}/cancel", None),
                ("GET", "/v1/datasets", None),
                ("GET", "/v1/datasets/ds_0123456789abcdef", None),
                ("GET", f"/v1/jobs/{job_id}/events", None),
                ("GET", f"/v1/jobs/{job_id}", None),  # a second time: still 503, still this connection
            ]:
                response = client.request(method, path, json=body)
                assert_unavailable(response)
                ports.add(local_port(response))
            assert len(ports) == 1, f"the server closed the connection: {len(ports)} connections were used"
            # The key lookup is a dependency of its own: an outage there is a 503 too, not a 401 or 500.
            assert_unavailable(fresh.get("/v1/jobs"))
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
        finally:
            world.pg.start()
        # Back at once: the pool drops its dead connections (pre-ping), nothing to restart.
        wait_until(lambda: client.get(f"/v1/jobs/{job_id}").status_code == 200, 30, "GET job answering 200")
        assert fresh.get("/v1/jobs").status_code == 200
        assert submit(client, "after-outage").status_code == 202
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert world.jobs_named("during-outage") == 0


@pytest.mark.e2e  # private Postgres, Redis and API servers
def test_a_broker_outage_accepts_the_submit_and_keeps_the_job_once(world: World):
    queue = redis.Redis.from_url(world.redis.url)
    with world.client() as client:
        world.redis.stop()
        try:
            accepted = submit(client, "broker-down", key="broker-down-1")
            assert accepted.status_code == 202, accepted.text
            job = client.get(f"/v1/jobs/{accepted.json()['id']}").json()
            assert job["status"] == "queued"  # the reconciler sends it once the broker is back
            replay = submit(client, "broker-down", key="broker-down-1")  # the client retries: same job
            assert replay.status_code == 202 and replay.json()["id"] == job["id"]
            assert replay.headers["Idempotent-Replayed"] == "true"
            assert world.jobs_named("broker-down") == 1
            cancel = client.post(f"/v1/jobs/{submit(client, 'broker-down-2').json()['id']}/cancel")
            assert cancel.status_code == 202  # cancel needs no broker
        finally:
            world.redis.start()
        # The broker is back (empty: no persistence): the next submit's message arrives.
        assert submit(client, "broker-back").status_code == 202
        assert queue.llen(world.train_queue) == 1
    queue.close()


@pytest.mark.e2e  # private Postgres, Redis and API servers
def test_a_failed_commit_is_503_and_changes_nothing(world: World, tmp_path, validator_pool):
    """The unit of work's commit fails because the server ends the connection (as a
    failover or an operator's pg_terminate_backend does): 503, and the cancel is not applied."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from models.settings import Settings

    settings = Settings(data_dir=tmp_path, database_url=world.database_url, broker_url=world.redis.url,
                        train_queue=world.train_queue, outage_retry_after_s=RETRY_AFTER_S)
    app = create_app(settings, validator=validator_pool)
    admin = create_engine(world.pg.server_url + "/postgres", isolation_level="AUTOCOMMIT")
    armed = {"on": False}

    @event.listens_for(app.state.session_factory, "before_commit")
    def _end_the_connection(session: Session) -> None:
        if armed.pop("on", False):
            pid = session.connection().connection.dbapi_connection.info.backend_pid
            with admin.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    with TestClient(app, headers={"Authorization": f"Bearer {world.key}"}) as client:
        job_id = client.post("/v1/jobs", json=spec(IRIS_MLP, name="commit-fails")).json()["id"]
        armed["on"] = True
        response = client.post(f"/v1/jobs/{job_id}/cancel")
        assert "on" not in armed  # the commit did run into the ended connection
        assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
        assert client.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    admin.dispose()


def test_only_connection_failures_count_as_outages():
    import psycopg
    import sqlalchemy.exc
    from kombu.exceptions import OperationalError as BrokerError

    from api.errors import is_outage

    def wrapped(cls: type, orig: Exception, invalidated: bool = False) -> Exception:
        return cls("SELECT 1", {}, orig, connection_invalidated=invalidated)

    assert is_outage(wrapped(sqlalchemy.exc.OperationalError, psycopg.OperationalError("server closed")))
    assert is_outage(wrapped(sqlalchemy.exc.InterfaceError, psycopg.InterfaceError("connection is closed")))
    assert is_outage(wrapped(sqlalchemy.exc.DatabaseError, psycopg.DatabaseError("x"), invalidated=True))
    assert is_outage(sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"))
    assert is_outage(BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused."))
    assert is_outage(ConnectionRefusedError(111, "Connection refused"))
    # A bug stays a bug (a 500 with its traceback in the log), not a 503 that hides it.
    assert not is_outage(wrapped(sqlalchemy.exc.IntegrityError, psycopg.IntegrityError("duplicate key")))
    assert not is_outage(wrapped(sqlalchemy.exc.ProgrammingError, psycopg.ProgrammingError("syntax error")))
    assert not is_outage(ValueError("x"))
