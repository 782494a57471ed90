"""A job of the service seen from Python: its history as Keras's ``History.history``,
its findings and verdict, retry with a finding's fix, the trained model."""

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from cli import sse
from cli.client import ClientError, api_message, checked, output_console
from cli.progress import JobView

if TYPE_CHECKING:
    import keras

FINISHED = ("succeeded", "failed", "cancelled")
NOT_METRICS = ("epoch", "duration_s")  # curve columns that Keras's History does not hold


class Job:
    """One job; ``refresh()`` (or ``wait()``) reads it again, the properties answer from the last read."""

    def __init__(self, http: httpx.Client, body: dict[str, Any]) -> None:
        self._http = http
        self.data = body  # GET /v1/jobs/{id} as JSON

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.status} epoch {self.epoch}/{self.data['progress']['epochs']}>"

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def epoch(self) -> int:
        return int(self.data["progress"]["epoch"])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The findings, verdict included: ``retry(finding=i)`` takes an index in this list."""
        return list(self.data.get("findings") or [])

    @property
    def verdict(self) -> dict[str, Any] | None:
        return self.data.get("verdict")

    @property
    def history(self) -> dict[str, list[float]]:
        """Per-epoch metrics as Keras's ``History.history``: ``{"loss": [...], "val_loss": [...], ...}``."""
        columns = checked(self._http.get(f"/v1/jobs/{self.id}/curves"))
        return {name: values for name, values in columns.items() if name not in NOT_METRICS}

    def refresh(self) -> "Job":
        self.data = checked(self._http.get(f"/v1/jobs/{self.id}"))
        return self

    def wait(self, *, verbose: bool = True, console: Console | None = None) -> "Job":
        """Follow the job's events to its end (epochs and findings printed when ``verbose``), then refresh."""
        if self.finished:
            return self
        with JobView(console or output_console(sys.stdout)) as view:
            try:
                for event in sse.follow(self._http, self.id):
                    if verbose:
                        view.show(event)
            except sse.StreamError as exc:
                raise ClientError(api_message(exc.response)) from exc
        return self.refresh()

    def retry(self, finding: int | None = None, *, suggestion: int = 0, patch: dict[str, Any] | None = None,
              force: bool = False) -> "Job":
        """A new job with ``findings[finding]``'s suggestion (or a JSON merge ``patch`` of the spec) applied."""
        body: dict[str, Any] = {"force": force}
        if patch is not None:
            body["patch"] = patch
        if finding is not None:
            body |= {"finding": finding, "suggestion": suggestion}
        return Job(self._http, checked(self._http.post(f"/v1/jobs/{self.id}/retry", json=body)))

    def cancel(self) -> "Job":
        self.data = checked(self._http.post(f"/v1/jobs/{self.id}/cancel"))
        return self

    def model(self) -> "keras.Model":
        """The trained model (GET /v1/jobs/{id}/model), loaded with ``safe_mode=True``."""
        return download_model(self._http, f"/v1/jobs/{self.id}/model")


def download_model(http: httpx.Client, url: str) -> "keras.Model":
    """The ``.keras`` file at ``url``, loaded with ``safe_mode=True`` (no custom code runs)."""
    import keras

    response = http.get(url)
    if response.status_code >= 400:
        raise ClientError(api_message(response))
    with tempfile.TemporaryDirectory(prefix="trainyard-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(response.content)
        return keras.saving.load_model(path, safe_mode=True)
