"""The child side of the validator pool: one target function, one request at a time.

Run as ``python -m api.validation.child --target module:function ...`` by
``pool.py``, never by hand. The protocol is JSON lines, nothing pickled:

- parent → child: ``{"payload": <JSON>}``
- child → parent: ``{"ready": true}`` once the target is imported (TensorFlow
  loads then, not in the first request) and again after each request's reset;
  ``{"result": <JSON>}``, or ``{"failure": "memory" | "exception", "message"}``.

The limits are set here, in the child, before the target is imported: the
memory limit (``RLIMIT_DATA``), death with the parent (``PR_SET_PDEATHSIG``, and
an exit on end of input). The time limit is the parent's: it kills a child that
does not answer in time.
"""

import argparse
import ctypes
import importlib
import json
import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

PR_SET_PDEATHSIG = 1
# A child that still holds this much of its limit after its reset retires: memory that
# Python or TensorFlow keep after a big request would otherwise shrink every later one's room.
RETIRE_FRACTION = 0.75


def resolve(target: str) -> Callable[[Any], Any]:
    """``"package.module:function"`` → the function (importing the module)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def limit_memory(max_bytes: int) -> None:
    # RLIMIT_DATA, not RLIMIT_AS: TensorFlow reserves far more address space than it
    # uses (thread stacks, allocator arenas), so an address-space limit would mostly
    # measure reservations. RLIMIT_DATA counts the private writable memory a spec can
    # make it allocate (heap and anonymous mappings): an allocation past it fails.
    resource.setrlimit(resource.RLIMIT_DATA, (max_bytes, max_bytes))
    # And no core files: an abort a spec provokes must not write the child's memory to disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the end of input still stops the child
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def data_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def answer(run: Callable[[Any], Any], payload: Any) -> dict[str, Any]:
    try:
        return {"result": run(payload)}
    except MemoryError:
        return {"failure": "memory", "message": "MemoryError"}
    except Exception as exc:  # the target's own bug or a spec it did not expect: this request's failure only
        return {"failure": "exception", "message": f"{type(exc).__name__}: {exc}"[:1000]}


def serve(run: Callable[[Any], Any], reset: Callable[[], Any] | None, memory_bytes: int, requests: BinaryIO,
          replies: BinaryIO) -> None:
    def send(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    send({"ready": True})
    for line in requests:  # ends when the parent closes the pipe, or dies
        reply = answer(run, json.loads(line)["payload"])
        try:
            encoded = json.dumps(reply).encode()
        except (TypeError, ValueError) as exc:
            encoded = json.dumps({"failure": "exception", "message": f"the result is not JSON: {exc}"}).encode()
        replies.write(encoded + b"\n")
        replies.flush()
        if reply.get("failure") == "memory":
            return  # state after a MemoryError is not to be trusted: the pool starts a fresh child
        if reset is not None:  # after the answer, so the reset costs the client nothing
            reset()
        if data_bytes() > RETIRE_FRACTION * memory_bytes:
            return
        send({"ready": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="module:function called with each payload")
    parser.add_argument("--reset", help="module:function called after each request")
    parser.add_argument("--memory-bytes", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    die_with_parent(args.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the API; it stops its children itself
    limit_memory(args.memory_bytes)
    # The protocol gets a private copy of stdout; fd 1 becomes stderr, so whatever the
    # target prints (Keras summaries, warnings) can never corrupt a reply.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    run = resolve(args.target)
    reset = resolve(args.reset) if args.reset else None
    serve(run, reset, args.memory_bytes, sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
