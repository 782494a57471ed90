"""Ensembles from Python: ``client.ensembles.create([job, ...])``, its evaluation, the averaged model."""

import time
from typing import TYPE_CHECKING, Any

import httpx

from cli.client import ClientError, checked
from trainyard.job import Job, download_model

if TYPE_CHECKING:
    import keras

BUILT = ("succeeded", "failed")


class Ensemble:
    """One ensemble; ``refresh()`` (or ``wait()``) reads it again, the properties answer from the last read."""

    def __init__(self, http: httpx.Client, body: dict[str, Any]) -> None:
        self._http = http
        self.data = body  # GET /v1/ensembles/{id} as JSON

    def __repr__(self) -> str:
        return f"<Ensemble {self.id} {self.status} of {len(self.data['members'])} jobs>"

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def evaluation(self) -> dict[str, Any] | None:
        """The ensemble's and each member's metrics on the same held-out samples, once built."""
        return self.data.get("evaluation")

    def refresh(self) -> "Ensemble":
        self.data = checked(self._http.get(f"/v1/ensembles/{self.id}"))
        return self

    def wait(self, *, timeout_s: float = 600.0, interval_s: float = 0.5) -> "Ensemble":
        """Poll until it is built (succeeded or failed); a build takes seconds."""
        deadline = time.monotonic() + timeout_s
        while self.refresh().status not in BUILT:
            if time.monotonic() > deadline:
                raise ClientError(f"ensemble {self.id} is still {self.status} after {timeout_s:g} s")
            time.sleep(interval_s)
        return self

    def model(self) -> "keras.Model":
        """The ensemble model (GET /v1/ensembles/{id}/model), loaded with ``safe_mode=True``."""
        return download_model(self._http, f"/v1/ensembles/{self.id}/model")


class Ensembles:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def create(self, jobs: list[Job | str], *, name: str | None = None, wait: bool = True) -> Ensemble:
        """Average finished jobs (``Job`` objects or ids) into one; ``wait``: return once built."""
        body: dict[str, Any] = {"jobs": [job.id if isinstance(job, Job) else job for job in jobs]}
        if name is not None:
            body["name"] = name
        ensemble = Ensemble(self._http, checked(self._http.post("/v1/ensembles", json=body)))
        return ensemble.wait() if wait else ensemble

    def get(self, ensemble_id: str) -> Ensemble:
        return Ensemble(self._http, checked(self._http.get(f"/v1/ensembles/{ensemble_id}")))

    def list(self, *, limit: int = 20) -> list[Ensemble]:
        items = checked(self._http.get("/v1/ensembles", params={"limit": limit}))["items"]
        return [Ensemble(self._http, body) for body in items]
