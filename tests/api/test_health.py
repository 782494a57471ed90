from fastapi.testclient import TestClient


def test_liveness_and_readiness_check_real_database_and_broker(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_fails_when_the_broker_is_unreachable(client: TestClient):
    from api.deps import get_queue
    from api.queue import TrainingQueue
    from models.settings import Settings

    client.app.dependency_overrides[get_queue] = lambda: TrainingQueue(Settings(broker_url="redis://127.0.0.1:1/0"))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"].startswith("error")


def test_metrics_are_prometheus_text(client: TestClient):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'trainyard_jobs{status="queued"}' in response.text
    assert "trainyard_oldest_queued_job_age_seconds 0.0" in response.text  # nothing queued


def test_openapi_documents_the_job_spec(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert "/v1/jobs:validate" in schema["paths"]
    assert "JobSpec" in schema["components"]["schemas"]


def test_readiness_reports_a_broker_that_lost_its_queues_while_jobs_wait(client: TestClient, session_factory):
    from broker import queue_marker
    from tests.specs import IRIS_MLP
    from tests.worker.conftest import insert_job

    client.app.state.session_factory = session_factory  # sees the test's own (rolled back) rows
    queue = client.app.state.queue
    assert client.get("/readyz").status_code == 200  # nothing waits: nothing was lost

    insert_job(session_factory, IRIS_MLP)  # queued; a Redis that came back empty holds no message for it
    lost = client.get("/readyz")
    assert lost.status_code == 503 and lost.json()["checks"]["broker"].startswith("lost its queues")

    with queue.celery.connection_for_write() as connection:  # what the reconciler does once it re-sent them
        queue_marker.mark_queues_intact(connection, queue.queue)
    try:
        assert client.get("/readyz").status_code == 200
    finally:
        with queue.celery.connection_for_write() as connection:
            connection.default_channel.client.delete(queue_marker.marker_key(queue.queue))
