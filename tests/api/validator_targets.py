"""Small real functions for the validator pool's children to run, hostile and not.

The pool imports them by path ("tests.api.validator_targets:abort"), as it imports
``keras_bridge.validate:check_spec_json`` in production.
"""

import os
import sys
import time
from typing import Any

_held: list[bytearray] = []


def echo(payload: Any) -> Any:
    return {"echo": payload, "pid": os.getpid()}


def abort(payload: Any) -> Any:
    os.abort()  # as TensorFlow does on a failed CHECK


def check_spec_or_abort(payload: Any) -> Any:
    """The production check, except that a spec named "abort" aborts the child the way a
    TensorFlow CHECK failure does: the stand-in for a crash route the budgets do not know yet
    (the one that was found, a 300-deep initializer value, is refused before Keras sees it)."""
    if payload["spec"].get("name") == "abort":
        os.abort()
    from keras_bridge.validate import check_spec_json

    return check_spec_json(payload)


def allocate(payload: dict[str, int]) -> Any:
    return len(bytearray(payload["bytes"]))  # past the child's limit: MemoryError


def die_of_bad_alloc(payload: Any) -> Any:
    """How C++ code such as TensorFlow's dies when an allocation fails: a message, then abort."""
    sys.stderr.write("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n")
    sys.stderr.flush()
    os.abort()


def sleep(payload: dict[str, float]) -> Any:
    time.sleep(payload["s"])
    return {"slept": payload["s"], "pid": os.getpid()}


def fail(payload: Any) -> Any:
    raise ValueError("this payload is not what the target expected")


def chatter(payload: Any) -> Any:
    print("a stray line on stdout, as model.summary() would print")  # must not reach the protocol
    return {"pid": os.getpid()}


def hold(payload: dict[str, int]) -> Any:
    """Keep memory after answering, as a cache or a leak would."""
    _held.append(bytearray(payload["bytes"]))
    return {"pid": os.getpid()}


def slow_issue(payload: Any) -> Any:
    """A spec check's answer, slowly: for the API's turn-taking tests."""
    spec = payload["spec"]  # as the API sends it: {"spec": ..., "budgets": ...}
    time.sleep(float((spec.get("name") or "0").removeprefix("slow-") or 0))
    return {"issues": [{"loc": ["model"], "message": "checked slowly"}]}


def limits(payload: Any) -> Any:
    import resource

    return {"data": resource.getrlimit(resource.RLIMIT_DATA)[0], "core": resource.getrlimit(resource.RLIMIT_CORE)[0],
            "environment": {name: os.environ.get(name) for name in payload}}
