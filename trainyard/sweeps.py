"""``client.sweeps``: hyperparameter sweeps from Python (POST /v1/sweeps and friends); answers are the
API's JSON, as dicts."""

import time
from typing import Any

import httpx

from cli.client import checked
from models.spec import JobSpec
from models.sweep_spec import SweepRequest


class Sweeps:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create(self, spec: JobSpec | dict[str, Any], space: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Start a sweep of ``spec`` over ``space`` (``sampler``, ``max_trials``, ``parallelism``, ``objective``,
        ``pruning``, ``name`` as keywords), checked with the API's own model first."""
        body = {"spec": spec.model_dump(mode="json", exclude_unset=True) if isinstance(spec, JobSpec) else spec,
                "space": space, **options}
        SweepRequest.model_validate(body)  # an unknown field or a bad distribution fails here, as there
        return dict(checked(self._http.post("/v1/sweeps", json=body)))

    def get(self, sweep_id: str) -> dict[str, Any]:
        return dict(checked(self._http.get(f"/v1/sweeps/{sweep_id}")))

    def list(self, *, limit: int = 20) -> list[dict[str, Any]]:
        return list(checked(self._http.get("/v1/sweeps", params={"limit": limit}))["items"])

    def cancel(self, sweep_id: str) -> dict[str, Any]:
        return dict(checked(self._http.post(f"/v1/sweeps/{sweep_id}/cancel")))

    def wait(self, sweep_id: str, *, poll_s: float = 2.0, timeout_s: float | None = None) -> dict[str, Any]:
        """The sweep once it has ended (status other than running); TimeoutError after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (sweep := self.get(sweep_id))["status"] == "running":
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {sweep_id} still running after {timeout_s} s")
            time.sleep(poll_s)
        return sweep
