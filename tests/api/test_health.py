from fastapi.testclient import TestClient


def test_liveness_and_readiness_check_real_database_and_broker(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readiness_fails_when_the_broker_is_unreachable(client: TestClient):
    from api.queue import TrainingQueue
    from models.settings import Settings

    client.app.state.queue = TrainingQueue(Settings(broker_url="redis://127.0.0.1:1/0"))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["broker"].startswith("error")


def test_metrics_are_prometheus_text(client: TestClient):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'trainyard_jobs{status="queued"}' in response.text


def test_openapi_documents_the_job_spec(client: TestClient):
    schema = client.get("/openapi.json").json()
    assert "/v1/jobs:validate" in schema["paths"]
    assert "JobSpec" in schema["components"]["schemas"]
