"""The validator pool with real child processes running small real hostile functions:
each failure is that one request's clear error, the pool replaces the child, the next
request works, and no child outlives the pool or the process that owns it."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from api.validation.pool import ChildFailed, PoolBusy, ProcessPool
from api.validation.spec_checks import child_env
from tests.api.conftest import replaced
from tests.servers import alive
from tests.staggered import staggered

TARGETS = "tests.api.validator_targets"
LIMIT = 256 * 1024**2
ROOT = Path(__file__).resolve().parents[2]


def make_pool(target: str = "echo", **options) -> ProcessPool:
    settings = {"processes": 1, "per_tenant": 1, "memory_bytes": LIMIT, "timeout_s": 30.0, "queue_wait_s": 30.0}
    return ProcessPool(f"{TARGETS}:{target}", **{**settings, **options})


@pytest.fixture
def pool(request) -> Iterator[ProcessPool]:
    pool = make_pool(**getattr(request, "param", {}))
    pool.start()
    yield pool
    pool.stop()


@pytest.mark.parametrize("target, payload, reason", [
    ("abort", None, "died with signal SIGABRT"),
    ("allocate", {"bytes": 2 * LIMIT}, "ran out of its 256 MiB of memory"),
    ("die_of_bad_alloc", None, "ran out of its 256 MiB of memory"),
    ("sleep", {"s": 60}, "took longer than 1 s"),
])
def test_a_child_that_dies_fails_that_request_only_and_is_replaced(target, payload, reason):
    pool = make_pool(target, timeout_s=1.0)
    pool.start()
    try:
        [first] = before = pool.pids()
        with pytest.raises(ChildFailed) as failed:
            pool.run(payload, tenant="acme")
        assert failed.value.reason == reason
        assert str(failed.value) == f"the validator process {reason}"
        replaced(pool, before)
        assert not alive(first)
        # The new child is ready: the next request meets the same target in a fresh process.
        with pytest.raises(ChildFailed):
            pool.run(payload, tenant="acme")
    finally:
        pool.stop()


def test_a_normal_request_answers_and_the_child_serves_the_next(pool: ProcessPool):
    [pid] = pool.pids()
    for n in range(3):
        assert pool.run({"n": n, "text": "é"}, tenant="acme") == {"echo": {"n": n, "text": "é"}, "pid": pid}
    assert pool.pids() == [pid]


def test_a_child_killed_while_idle_costs_no_request():
    pool = make_pool("echo")
    pool.start()
    try:
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer or an operator would
        while alive(pid):
            time.sleep(0.01)
        answer = pool.run({"again": True}, tenant="acme")  # served by the replacement
        assert answer["echo"] == {"again": True} and answer["pid"] != pid
    finally:
        pool.stop()


@pytest.mark.parametrize("pool", [{"target": "fail"}], indirect=True)
def test_an_exception_in_the_target_is_that_request_s_error_and_keeps_the_child(pool: ProcessPool):
    before = pool.pids()
    with pytest.raises(ChildFailed, match="raised ValueError: this payload is not what the target expected"):
        pool.run({}, tenant="acme")
    with pytest.raises(ChildFailed, match="raised ValueError"):
        pool.run({}, tenant="acme")
    assert pool.pids() == before  # a Python exception leaves the process sound


@pytest.mark.parametrize("pool", [{"target": "chatter"}], indirect=True)
def test_what_the_target_prints_never_corrupts_the_answer(pool: ProcessPool):
    assert pool.run({}, tenant="acme") == {"pid": pool.pids()[0]}
    assert pool.run({}, tenant="acme") == {"pid": pool.pids()[0]}


@pytest.mark.parametrize("pool", [{"target": "hold"}], indirect=True)
def test_a_child_that_keeps_most_of_its_memory_retires_after_answering(pool: ProcessPool):
    before = pool.pids()
    assert pool.run({"bytes": LIMIT // 100}, tenant="acme") == {"pid": before[0]}
    assert pool.pids() == before  # a little kept: the child stays
    assert pool.run({"bytes": LIMIT * 3 // 4}, tenant="acme") == {"pid": before[0]}  # answered, then retires
    after = replaced(pool, before)
    assert pool.run({"bytes": 1}, tenant="acme") == {"pid": after[0]}


def answer(pool: ProcessPool, tenant: str, payload: dict) -> object:
    """The child's answer, or the error it ended in."""
    try:
        return pool.run(payload, tenant=tenant)
    except (ChildFailed, PoolBusy) as exc:
        return exc


def run_in_threads(pool: ProcessPool, requests: list[tuple[str, dict]]) -> tuple[list[str], dict[str, object]]:
    """Start each (tenant, payload) a little after the previous; returns the order the
    answers came back in (by request label) and each answer or error."""
    calls = [(f"{tenant}{index}", partial(answer, pool, tenant, payload))
             for index, (tenant, payload) in enumerate(requests)]
    tenants = {label: tenant for (label, _), (tenant, _) in zip(calls, requests, strict=True)}
    last = calls[-1][0]
    # The next one only once this one holds its turn (or waits for it), so the order is known.
    return staggered(calls, under_way=lambda label: pool.running(tenants[label]) or label == last,
                     wait_s=2.0, settle_s=0.2)


def test_one_tenant_s_slow_requests_leave_a_child_for_another_tenant():
    pool = make_pool("sleep", processes=2, per_tenant=1)
    pool.start()
    try:
        order, answers = run_in_threads(pool, [("a", {"s": 3}), ("a", {"s": 3}), ("b", {"s": 0})])
    finally:
        pool.stop()
    # b's short request got the second child at once; a's second waited for a's first.
    assert order == ["b2", "a0", "a1"], order
    assert all(isinstance(a, dict) for a in answers.values()), answers


def test_a_tenant_over_its_turn_waits_a_bounded_time_then_gets_retry_after():
    pool = make_pool("sleep", processes=2, per_tenant=1, queue_wait_s=0.5)
    pool.start()
    try:
        order, answers = run_in_threads(pool, [("a", {"s": 3}), ("a", {"s": 0})])
    finally:
        pool.stop()
    busy = answers["a1"]
    assert isinstance(busy, PoolBusy), answers
    assert "tenant 'a' already has 1 spec check(s) running" in busy.message and busy.retry_after_s >= 1
    assert order == ["a1", "a0"]  # refused while the first still ran, although a child was free
    assert isinstance(answers["a0"], dict)


def test_when_every_child_is_busy_a_request_waits_then_gets_retry_after():
    pool = make_pool("sleep", processes=1, per_tenant=1, queue_wait_s=0.5)
    pool.start()
    try:
        order, answers = run_in_threads(pool, [("a", {"s": 3}), ("b", {"s": 0})])
    finally:
        pool.stop()
    assert isinstance(answers["b1"], PoolBusy) and "validator processes stayed busy" in answers["b1"].message
    assert isinstance(answers["a0"], dict)


def test_children_are_gone_after_stop():
    pool = make_pool("echo", processes=3)
    pool.start()
    pids = pool.pids()
    assert len(pids) == 3 and all(alive(pid) for pid in pids)
    pool.stop()
    assert pool.pids() == [] and not any(alive(pid) for pid in pids)
    with pytest.raises(PoolBusy, match="not running"):
        pool.run({}, tenant="acme")


def test_stop_ends_a_child_in_the_middle_of_a_request():
    pool = make_pool("sleep", timeout_s=600.0)
    pool.start()
    [pid] = pool.pids()
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_run_or_error(pool, {"s": 600})))
    worker.start()
    while not pool.running("acme"):
        time.sleep(0.01)
    time.sleep(0.3)
    pool.stop(grace_s=0.5)
    worker.join()
    assert not alive(pid)
    assert isinstance(outcome[0], PoolBusy) and "shutting down" in outcome[0].message


def _run_or_error(pool: ProcessPool, payload: dict) -> object:
    try:
        return pool.run(payload, tenant="acme")
    except (ChildFailed, PoolBusy) as exc:
        return exc


def test_children_die_with_the_process_that_owns_the_pool():
    """No orphans: the owner is killed (SIGKILL, no clean-up at all) and its children follow."""
    script = textwrap.dedent(f"""
        import json, time
        from api.validation.pool import ProcessPool
        pool = ProcessPool("{TARGETS}:sleep", processes=2, per_tenant=1, memory_bytes={LIMIT},
                           timeout_s=600, queue_wait_s=1)
        pool.start()
        print(json.dumps(pool.pids()), flush=True)
        import threading
        threading.Thread(target=pool.run, args=({{"s": 600}},), kwargs={{"tenant": "a"}}, daemon=True).start()
        time.sleep(600)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        time.sleep(0.5)  # one child is in the middle of a request
        owner.kill()
        owner.wait()
        for _ in range(200):
            if not any(alive(pid) for pid in pids):
                break
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids)
    finally:
        owner.kill()


def test_the_limits_and_environment_are_set_in_the_child(monkeypatch):
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", "postgresql://user:secret@db/trainyard")
    pool = ProcessPool(f"{TARGETS}:limits", env=child_env(), processes=1, per_tenant=1, memory_bytes=LIMIT,
                       timeout_s=30, queue_wait_s=30)
    pool.start()
    try:
        seen = pool.run(["TRAINYARD_DATABASE_URL", "CUDA_VISIBLE_DEVICES"], tenant="acme")
    finally:
        pool.stop()
    assert seen == {"data": LIMIT, "core": 0,
                    "environment": {"TRAINYARD_DATABASE_URL": None, "CUDA_VISIBLE_DEVICES": ""}}
