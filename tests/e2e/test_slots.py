"""Job slots (issue 12): a 2-slot worker trains two jobs at once, each in a process of its own, so
killing one slot's process leaves the other job untouched; a job that needs a GPU is never
taken by a CPU worker: it stays queued; /metrics shows each worker's busy and free slots.
Real Celery worker, real Redis and Postgres."""

import os
import signal
import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.queue import TrainingQueue
from broker.tasks import GPU_QUEUE
from models.db import make_engine, make_session_factory
from models.enums import JobStatus
from models.settings import Settings
from models.tables import EpochMetric, Job
from tests.e2e.conftest import WorkerProcess
from tests.servers import wait_until
from tests.specs import IRIS_MLP, spec
from tests.worker.conftest import insert_job

pytestmark = pytest.mark.e2e

# Long enough that both jobs are surely running at once before either ends, tiny per step.
EPOCHS = 60
LONG = spec(IRIS_MLP, fit={"epochs": EPOCHS, "batch_size": 4})
MEDIUM = spec(IRIS_MLP, fit={"epochs": 20, "batch_size": 4})  # running for a few heartbeats
WAIT = 300


@pytest.fixture
def slots(e2e_settings: Settings, tmp_path) -> Iterator[tuple[Settings, sessionmaker[Session], WorkerProcess]]:
    settings = e2e_settings.model_copy(update={"train_queue": f"slots-{uuid.uuid4().hex[:8]}"})
    worker = WorkerProcess(settings, tmp_path / "worker.log", concurrency=2)
    # Each slot is a pool child that imports TensorFlow for itself: wait for both.
    wait_until(lambda: worker.log_path.read_text(errors="replace").count("TensorFlow ") >= 2, WAIT,
               "both slots to import TensorFlow")
    engine = make_engine(settings.database_dsn)
    yield settings, make_session_factory(engine), worker
    worker.stop()
    engine.dispose()


def job(factory: sessionmaker[Session], job_id: str) -> Job:
    with factory() as session:
        return session.get_one(Job, job_id)


def epochs(factory: sessionmaker[Session], job_id: str) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(EpochMetric.epoch).where(EpochMetric.job_id == job_id)))


def send_two_long_jobs(settings: Settings, factory: sessionmaker[Session]) -> tuple[str, str]:
    """Two jobs long enough to be running at once, inserted and sent to the slots' queue."""
    queue = TrainingQueue(settings)
    first, second = insert_job(factory, LONG), insert_job(factory, LONG)
    queue.send(first)
    queue.send(second)
    return first, second


def test_two_jobs_train_at_once_and_killing_one_slot_leaves_the_other_job_alone(slots):
    settings, factory, worker = slots
    first, second = send_two_long_jobs(settings, factory)

    both = wait_until(lambda: (a, b) if (a := job(factory, first)).status is JobStatus.running
                      and (b := job(factory, second)).status is JobStatus.running else None, WAIT,
                      "both jobs to run at once")
    holders = {a.holder["pid"] for a in both}
    assert len(holders) == 2 and holders <= set(worker.child_pids())  # two pool children, one job each

    # SIGKILL the first job's process mid-run (an out-of-memory kill looks the same).
    victim, survivor = both
    wait_until(lambda: len(epochs(factory, first)) >= 2, WAIT, "the first job to record epochs")
    os.kill(victim.holder["pid"], signal.SIGKILL)

    done = wait_until(lambda: j if (j := job(factory, second)).status.value in ("succeeded", "failed") else None,
                      WAIT, "the other job to finish")
    assert done.status is JobStatus.succeeded, done.error
    assert done.attempts == 1 and done.holder["pid"] == survivor.holder["pid"]  # never interrupted nor moved
    assert sorted(epochs(factory, second)) == list(range(1, EPOCHS + 1))
    # The killed job is taken back by a new pool child and ends too, its curve whole.
    again = wait_until(lambda: j if (j := job(factory, first)).status.value in ("succeeded", "failed") else None,
                       WAIT, "the killed job to be taken back and finish")
    assert again.status is JobStatus.succeeded and again.attempts >= 2, again.error
    assert sorted(epochs(factory, first)) == list(range(1, EPOCHS + 1))
    # Their running intervals overlap (from the database, not a clock in this test).
    assert done.started_at < again.finished_at and victim.started_at < done.finished_at


def test_a_gpu_job_is_not_taken_by_a_cpu_worker_and_stays_queued(slots):
    settings, factory, _ = slots
    queue = TrainingQueue(settings)
    gpu_body = spec(IRIS_MLP, resources={"gpus": 1})
    needs_gpu, cpu_job = insert_job(factory, gpu_body), insert_job(factory, IRIS_MLP)
    queue.send(needs_gpu, gpu_body["resources"])  # to the "gpu" queue, which this CPU worker does not consume
    queue.send(cpu_job)

    client = redis.Redis.from_url(settings.broker_dsn)
    try:
        finished = wait_until(lambda: j if (j := job(factory, cpu_job)).status is JobStatus.succeeded else None,
                              WAIT, "the CPU job to train")
        waiting = job(factory, needs_gpu)
        assert waiting.status is JobStatus.queued and waiting.attempts == 0 and waiting.started_at is None
        assert finished.finished_at is not None
        # Its message waits in the queue of GPU slots (Celery's headers name the job id in plain text).
        assert [m for m in client.lrange(GPU_QUEUE, 0, -1) if needs_gpu.encode() in m]
    finally:
        for message in client.lrange(GPU_QUEUE, 0, -1):  # the shared test Redis keeps no message of ours
            if needs_gpu.encode() in message:
                client.lrem(GPU_QUEUE, 0, message)
        client.close()


def test_a_warm_shutdown_hands_back_the_jobs_of_every_slot(slots):
    settings, factory, worker = slots
    first, second = send_two_long_jobs(settings, factory)
    wait_until(lambda: all(job(factory, j).status is JobStatus.running and epochs(factory, j) for j in (first, second)),
               WAIT, "both jobs to run and record an epoch")

    worker.process.send_signal(signal.SIGTERM)  # docker stop, Ctrl-C of `trainyard worker`
    worker.process.wait(timeout=settings.stop_grace_s + 120)

    for job_id in (first, second):  # each slot stopped at an epoch boundary and gave its job back
        handed_back = job(factory, job_id)
        assert handed_back.status is JobStatus.queued and handed_back.attempts == 0, handed_back.error
        assert sorted(epochs(factory, job_id)) == list(range(1, len(epochs(factory, job_id)) + 1))


def worker_slots(api: TestClient, node: str) -> dict[tuple[str, str], float]:
    """``trainyard_worker_slots`` of that worker, parsed by prometheus_client: (kind, state) → slots."""
    families = text_string_to_metric_families(api.get("/metrics").text)
    return {(sample.labels["kind"], sample.labels["state"]): sample.value for family in families
            if family.name == "trainyard_worker_slots" for sample in family.samples if sample.labels["worker"] == node}


def test_metrics_show_each_workers_busy_and_free_slots_from_its_reports(slots):
    settings, factory, worker = slots
    with TestClient(create_app(settings)) as api:  # /metrics needs no key
        idle = {("cpu", "busy"): 0, ("cpu", "free"): 2}
        wait_until(lambda: worker_slots(api, worker.node) == idle, WAIT, "the worker to report 2 free slots")

        job_id = insert_job(factory, MEDIUM)
        TrainingQueue(settings).send(job_id)
        wait_until(lambda: job(factory, job_id).status is JobStatus.running
                   and worker_slots(api, worker.node) == {("cpu", "busy"): 1, ("cpu", "free"): 1}, WAIT,
                   "the running job to take one of its slots")
        wait_until(lambda: job(factory, job_id).status is JobStatus.succeeded, WAIT, "the job to finish")
        wait_until(lambda: worker_slots(api, worker.node) == idle, WAIT, "its slot to be free again")

        worker.stop()  # a stopped worker withdraws its report: its slots are counted nowhere
        assert worker_slots(api, worker.node) == {}
