"""Hostile specs against the real app and its real validator pool (issue 8, "untrusted
work runs in sacrificial processes"): the spec gets its 4xx, the API process neither
dies nor grows nor loads TensorFlow, and other tenants keep being answered."""

import json
import os
import resource
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.deps import get_validator
from api.validation.pool import ProcessPool
from api.validation.spec_checks import RESET, child_env
from tests.api.committed_app import CommittedApp, committed_app
from tests.api.conftest import replaced
from tests.auth import new_key
from tests.conftest import REDIS_URL
from tests.specs import IRIS_MLP, spec
from tests.staggered import staggered

ROOT = Path(__file__).resolve().parents[2]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# TensorFlow's CHECK failure ("Too many dimensions in tensor") aborts the process that builds it.
ABORTS_TENSORFLOW = spec(IRIS_MLP, model={"input_shape": [4], "layers": [
    {"type": "Dense", "units": 3, "kernel_initializer": {"type": "Constant", "value": nested(300)}},
]})
# A 4 x 10^9 kernel: 16 GB of weights.
HUGE = spec(IRIS_MLP, model={"input_shape": [4], "layers": [{"type": "Dense", "units": 1_000_000_000}]})
# Seconds of Keras work: a deep stack of small layers.
SLOW = spec(IRIS_MLP, model={"input_shape": [4], "layers": [{"type": "Dense", "units": 4}] * 400 + [
    {"type": "Dense", "units": 3, "activation": "softmax"}]})


@pytest.fixture(scope="module")
def world(tmp_path_factory, validator_pool: ProcessPool) -> Iterator[CommittedApp]:
    with committed_app("isolation", tmp_path_factory.mktemp("isolation"), validator_pool, api_key_cache_s=0) as world:
        yield world


def in_order(*calls: tuple[str, TestClient, dict[str, Any]],
             started: Callable[[str], bool] | None = None) -> tuple[list[str], dict[str, httpx.Response]]:
    """POST each body to :validate from its own thread, each a moment after the previous
    one is under way (``started(label)`` says when); returns the order the responses
    came back in and the responses."""
    posts = [(label, partial(client.post, "/v1/jobs:validate", json=body)) for label, client, body in calls]
    return staggered(posts, under_way=started, wait_s=5.0, settle_s=0.3)


def test_the_budgets_refuse_the_aborting_and_the_huge_spec_before_keras_sees_them(world: CommittedApp):
    deep = world.a.post("/v1/jobs:validate", json=ABORTS_TENSORFLOW)
    assert deep.status_code == 422
    assert deep.json()["error"]["details"][0]["path"] == "model.layers[0].kernel_initializer"
    assert "nested at most 8 levels" in deep.text
    huge = world.a.post("/v1/jobs:validate", json=HUGE)
    assert huge.status_code == 422 and huge.json()["error"]["details"][0]["path"] == "model.layers[0]"
    assert "5,000,000,000 parameters" in huge.text


@pytest.fixture
def crashing_pool() -> Iterator[ProcessPool]:
    """Real validator children that abort on a spec named "abort" and check every other spec."""
    pool = ProcessPool("tests.api.validator_targets:check_spec_or_abort", reset=RESET, env=child_env(),
                       processes=2, per_tenant=1, memory_bytes=2 * 1024**3, timeout_s=120, queue_wait_s=30)
    pool.start()
    yield pool
    pool.stop()


def test_a_spec_that_aborts_its_validator_is_a_422_and_the_api_keeps_answering(world: CommittedApp,
                                                                                crashing_pool: ProcessPool):
    world.app.dependency_overrides[get_validator] = lambda: crashing_pool
    try:
        before = crashing_pool.pids()
        crashing = spec(IRIS_MLP, name="abort")
        order, responses = in_order(("abort", world.a, crashing), ("other", world.b, IRIS_MLP))

        aborted = responses["abort"]
        assert aborted.status_code == 422, aborted.text
        error = aborted.json()["error"]
        assert "the validator process died with signal SIGABRT" in error["message"]
        assert error["details"][0]["loc"] == ["model"] and "SIGABRT" in error["details"][0]["message"]
        assert responses["other"].status_code == 200, responses["other"].text  # another tenant, meanwhile
        # This test runs in the API's process: had the abort happened here, nothing would be left to assert.
        assert world.a.post("/v1/jobs:validate", json=IRIS_MLP).status_code == 200
        jobs_before = world.a.get("/v1/jobs").json()["items"]
        submitted = world.a.post("/v1/jobs", json=crashing)
        assert submitted.status_code == 422 and "SIGABRT" in submitted.json()["error"]["message"], submitted.text
        assert world.a.get("/v1/jobs").json()["items"] == jobs_before  # nothing created
        replaced(crashing_pool, before)
    finally:
        del world.app.dependency_overrides[get_validator]


def test_a_spec_past_the_memory_limit_is_refused_and_the_api_does_not_grow(world: CommittedApp):
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    response = world.a.post("/v1/jobs:validate", json=HUGE)

    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["path"] == "model.layers[0]" and "parameters" in detail["message"]
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200, f"the API's peak memory grew by {grown_mib:.0f} MiB for a 16 GB kernel"
    assert world.a.post("/v1/jobs:validate", json=IRIS_MLP).status_code == 200


def all_ready(pool: ProcessPool) -> None:
    """Wait for the replacements of children an earlier test killed."""
    for _ in range(3000):
        if pool.ready() == pool.processes:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {pool.ready()} of {pool.processes} validator processes are ready")


def test_a_slow_spec_of_one_tenant_does_not_hold_up_another_tenant(world: CommittedApp, validator_pool: ProcessPool,
                                                                     monkeypatch):
    monkeypatch.setattr(world.settings, "max_layers", 1000)  # SLOW is deeper than the default budget allows
    all_ready(validator_pool)
    order, responses = in_order(
        ("a-slow-1", world.a, SLOW), ("a-slow-2", world.a, SLOW), ("b-small", world.b, IRIS_MLP),
        started=lambda label: validator_pool.running("acme"),
    )
    assert all(r.status_code == 200 for r in responses.values()), {k: r.text[:300] for k, r in responses.items()}
    # a's second waited for a's first (one turn per tenant) while b got the free child: b is
    # answered before a's second, however fast this machine builds a's first.
    assert order.index("b-small") < order.index("a-slow-2") and order.index("a-slow-1") < order.index("a-slow-2"), order


@pytest.fixture
def slow_pool() -> Iterator[ProcessPool]:
    """Children that answer like a spec check after sleeping ("slow-<seconds>" as the spec's name)."""
    pool = ProcessPool("tests.api.validator_targets:slow_issue", processes=2, per_tenant=1,
                       memory_bytes=256 * 1024**2, timeout_s=60, queue_wait_s=0.3)
    pool.start()
    yield pool
    pool.stop()


def test_a_tenant_over_its_turns_gets_429_with_retry_after(world: CommittedApp, slow_pool: ProcessPool):
    world.app.dependency_overrides[get_validator] = lambda: slow_pool
    try:
        order, responses = in_order(("first", world.a, spec(IRIS_MLP, name="slow-3")),
                                    ("second", world.a, spec(IRIS_MLP, name="slow-0")),
                                    started=lambda label: slow_pool.running("acme"))
    finally:
        del world.app.dependency_overrides[get_validator]
    refused = responses["second"]
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert "tenant 'acme' already has 1 spec check(s) running" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert responses["first"].status_code == 422  # the slow answer itself: issues from the child
    assert order == ["second", "first"]


class ConnectionWatch:
    """The real pool, noting how many database connections the app holds whenever a
    request hands it a spec."""

    def __init__(self, pool: ProcessPool, engine: Engine) -> None:
        self.pool, self.engine, self.held = pool, engine, []

    def run(self, payload: Any, *, tenant: str) -> Any:
        self.held.append(self.engine.pool.checkedout())
        return self.pool.run(payload, tenant=tenant)


def test_no_database_connection_is_held_while_the_validator_works(world: CommittedApp, validator_pool: ProcessPool):
    watch = ConnectionWatch(validator_pool, world.app.state.engine)
    world.app.dependency_overrides[get_validator] = lambda: watch
    key = {"Idempotency-Key": f"watch-{uuid.uuid4().hex[:6]}"}
    try:
        assert world.a.post("/v1/jobs:validate", json=IRIS_MLP).status_code == 200
        created = world.a.post("/v1/jobs", json=IRIS_MLP, headers=key)
        assert created.status_code == 202, created.text
        replay = world.a.post("/v1/jobs", json=IRIS_MLP, headers=key)  # answered from the database alone
        assert replay.json()["id"] == created.json()["id"] and replay.headers["Idempotent-Replayed"] == "true"
        assert world.a.post("/v1/jobs", json=spec(IRIS_MLP, seed=99), headers=key).status_code == 409
        retried = world.a.post(f"/v1/jobs/{created.json()['id']}/retry", json={"patch": {"fit": {"epochs": 2}}})
        assert retried.status_code == 202, retried.text
    finally:
        del world.app.dependency_overrides[get_validator]
    assert watch.held == [0, 0, 0], watch.held  # validate, submit, retry; the replay and the 409 need no check


@pytest.mark.e2e  # an API process of its own
def test_the_api_process_loads_no_tensorflow(world: CommittedApp):
    """The real start-up (the app starts its own pool), then :validate and POST /v1/jobs,
    in a fresh process, which then says what it imported; its children end with it."""
    script = textwrap.dedent(f"""
        import json, sys
        from fastapi.testclient import TestClient
        from api.app import create_app
        from models.settings import Settings
        from tests.specs import IRIS_MLP
        settings = Settings(data_dir={str(world.settings.data_dir)!r}, database_url={world.settings.database_dsn!r},
                            broker_url={REDIS_URL!r}, train_queue={world.settings.train_queue!r}, validator_processes=1)
        app = create_app(settings)
        with TestClient(app) as client:
            client.headers["Authorization"] = "Bearer " + sys.argv[1]
            pids = app.state.validator.pids()
            validated = client.post("/v1/jobs:validate", json=IRIS_MLP).status_code
            submitted = client.post("/v1/jobs", json=IRIS_MLP).status_code
        print(json.dumps({{"validate": validated, "submit": submitted, "pids": pids,
                          "loaded": [m for m in ("tensorflow", "keras", "keras_bridge") if m in sys.modules]}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, new_key(world.factory, "acme")], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["validate"] == 200 and report["submit"] == 202, report
    assert report["loaded"] == [], report
    assert len(report["pids"]) == 1
    assert not Path(f"/proc/{report['pids'][0]}").exists()  # stopped on shutdown
