"""``resources`` through the API (issue 12): a job is sent to the queue of the workers that fit it;
one that asks for more GPUs than any host offers (``max_job_gpus``) is a 422 naming the field."""

import json

import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from broker.tasks import GPU_QUEUE
from tests.api.conftest import job_count, sent_tasks
from tests.specs import IRIS_MLP, spec


def test_more_gpus_than_the_largest_host_offers_is_a_422_naming_resources_gpus(client: TestClient,
                                                                                db_session: Session):
    client.app.state.settings = client.app.state.settings.model_copy(update={"max_job_gpus": 2})
    before = job_count(db_session)

    response = client.post("/v1/jobs", json=spec(IRIS_MLP, resources={"gpus": 4}))

    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "resources.gpus" and "at most 2" in detail["message"] and "gpus=4" in detail["message"]
    assert job_count(db_session) == before


def test_unknown_resource_keys_are_a_422_at_their_path(client: TestClient):
    response = client.post("/v1/jobs", json=spec(IRIS_MLP, resources={"gpus": 1, "vram": 8}))
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "resources.vram"


def test_a_gpu_job_is_sent_to_the_gpu_slots_queue_and_a_cpu_job_to_the_training_queue(
        client: TestClient, redis_client: redis.Redis, queued_messages):
    gpu = client.post("/v1/jobs", json=spec(IRIS_MLP, resources={"gpus": 1, "gpu_memory_mb": 3000}))
    cpu = client.post("/v1/jobs", json=IRIS_MLP)
    assert gpu.status_code == cpu.status_code == 202, gpu.text
    gpu_id, cpu_id = gpu.json()["id"], cpu.json()["id"]
    queue = f"{GPU_QUEUE}.4g"  # 3000 MiB rounds up to the 4 GiB class
    try:
        assert [kwargs["job_id"] for _, kwargs in sent_tasks(redis_client, queue)] == [gpu_id]
        assert queued_messages() == 1 and cpu_id in json.dumps(sent_tasks(redis_client, client.app.state.settings
                                                                           .train_queue))
        assert gpu.json()["status"] == "queued"
    finally:
        redis_client.delete(queue)
