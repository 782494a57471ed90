"""The ``resources`` block of the spec, and the queue a job is sent to because of it (issue 12)."""

import pytest
from pydantic import ValidationError

from broker.tasks import job_queue, memory_class_gib, slot_queues, training_queues
from models.spec import JobSpec
from tests.specs import IRIS_MLP, spec


def test_resources_default_to_one_cpu_slot_and_round_trip():
    plain = JobSpec.model_validate(IRIS_MLP)
    assert (plain.resources.gpus, plain.resources.gpu_memory_mb) == (0, None)
    asked = JobSpec.model_validate(spec(IRIS_MLP, resources={"gpus": 2, "gpu_memory_mb": 6000}))
    assert JobSpec.model_validate(asked.model_dump(mode="json")) == asked


@pytest.mark.parametrize(("resources", "loc"), [
    ({"gpus": 9}, ("resources", "gpus")),
    ({"gpus": -1}, ("resources", "gpus")),
    ({"gpus": "2"}, ("resources", "gpus")),  # strict: no coercion
    ({"gpus": 1, "gpu_memory_mb": 0}, ("resources", "gpu_memory_mb")),
    ({"gpus": 1, "cores": 4}, ("resources", "cores")),  # unknown keys are refused
    ({"gpu_memory_mb": 2000}, ("resources",)),  # memory without a GPU
])
def test_bad_resources_are_refused_at_their_path(resources, loc):
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(spec(IRIS_MLP, resources=resources))
    assert any(tuple(e["loc"]) == loc for e in info.value.errors()), info.value.errors()


def test_jobs_are_routed_by_what_they_need():
    assert job_queue("cpu", None) == job_queue("cpu", {"gpus": 0}) == "cpu"
    assert job_queue("cpu", {"gpus": 1}) == "gpu"
    assert job_queue("cpu", {"gpus": 1, "gpu_memory_mb": 1024}) == "gpu.1g"
    assert job_queue("cpu", {"gpus": 1, "gpu_memory_mb": 1025}) == "gpu.2g"
    assert job_queue("cpu", {"gpus": 4, "gpu_memory_mb": 20_000}) == "gpu.x4.32g"
    assert memory_class_gib(40 * 1024) == 64


def test_a_slot_takes_only_the_jobs_its_memory_holds_biggest_first():
    # A 10 GiB share: classes 1..8 GiB, and jobs that ask no memory; a 16 GiB job never reaches it.
    assert slot_queues(1, 10 * 1024) == ["gpu.8g", "gpu.4g", "gpu.2g", "gpu.1g", "gpu"]
    assert "gpu.16g" not in slot_queues(1, 10 * 1024)
    assert slot_queues(1, None) == ["gpu"]
    assert slot_queues(2, 1024) == ["gpu.x2.1g", "gpu.x2"]
    assert training_queues("gpu.1g", "gpu") == ["gpu.1g.resume", "gpu.resume", "gpu.1g", "gpu"]
