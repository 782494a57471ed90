"""``Client(url, key)``: the service from Python, with ``fit`` taking what Keras's ``fit`` takes.

The HTTP (headers, the API's error messages) is cli/client.py's; the spec is checked
with the API's own pydantic models (models/spec.py) before anything is sent, so an
unknown field fails here as it would fail there.
"""

import inspect
import os
from typing import Any

import httpx
import keras
import numpy as np
from pydantic import ValidationError

from cli.client import DEFAULT_URL, api_key, checked, open_client
from models.spec import DataSpec, FitSpec, JobSpec
from trainyard.arrays import npz_bytes, sha256
from trainyard.ensemble import Ensembles
from trainyard.job import Job
from trainyard.sweeps import Sweeps
from trainyard.translate import Unsupported, callback_specs, compile_spec, model_spec

# Keras fit() arguments the service cannot honour, with what to do instead. Refused rather than dropped:
# a model trained without the class weights it was given would be a silently different experiment.
REFUSED_FIT_ARGS = {
    "validation_data": "give the validation samples inside x and y with validation_split (the service "
                       "validates on the last fraction, as Keras does)",
    "sample_weight": "the service has no per-sample weights",
    "class_weight": "the service has no class weights; resample the classes in x and y instead",
    "initial_epoch": "the service starts every job at epoch 0 (a lost worker's job resumes by itself)",
    "steps_per_epoch": "the service goes through all the training samples each epoch",
    "validation_steps": "the service validates on the whole validation split",
    "validation_batch_size": "the service validates with batch_size",
    "validation_freq": "the service validates after every epoch",
}
KERAS_DEFAULTS = {"initial_epoch": 0, "validation_freq": 1}


class Datasets:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http
        self._uploaded: dict[str, str] = {}  # the file's sha256 -> dataset id: one upload per content

    def upload(self, x: np.ndarray | None = None, y: np.ndarray | None = None, **arrays: np.ndarray) -> str:
        """Upload arrays as one ``.npz`` (``x``, ``y`` and any named others); returns the dataset id.

        The same arrays give the same file bytes, hence the same dataset on the server; within
        one Client they are not even sent twice."""
        named = {**({"x": x} if x is not None else {}), **({"y": y} if y is not None else {}), **arrays}
        for name, array in named.items():
            if not isinstance(array, np.ndarray):
                raise Unsupported(f"{name}: expected a NumPy array. Received: {type(array).__name__} (a Python "
                                  "generator, a tf.data.Dataset or a Keras PyDataset cannot be uploaded; "
                                  "collect it into arrays first)")
            if array.dtype.hasobject:
                raise Unsupported(f"{name}: object arrays cannot be uploaded (dtype {array.dtype})")
        data = npz_bytes(named)
        digest = sha256(data)
        if digest not in self._uploaded:
            files = {"file": ("arrays.npz", data, "application/octet-stream")}
            self._uploaded[digest] = checked(self._http.post("/v1/datasets", files=files))["id"]
        return self._uploaded[digest]

    def get(self, dataset_id: str) -> dict[str, Any]:
        return dict(checked(self._http.get(f"/v1/datasets/{dataset_id}")))


class Jobs:
    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def get(self, job_id: str) -> Job:
        return Job(self._http, checked(self._http.get(f"/v1/jobs/{job_id}")))

    def list(self, *, status: str | None = None, name: str | None = None, limit: int = 20) -> list[Job]:
        params = {k: v for k, v in (("status", status), ("name", name), ("limit", limit)) if v}
        return [Job(self._http, body) for body in checked(self._http.get("/v1/jobs", params=params))["items"]]

    def submit(self, spec: JobSpec | dict[str, Any]) -> Job:
        """Submit a spec, checked with the API's own model first (unknown fields refused here)."""
        checked_spec = spec if isinstance(spec, JobSpec) else JobSpec.model_validate(spec)
        body = checked_spec.model_dump(mode="json", exclude_unset=True)
        return Job(self._http, checked(self._http.post("/v1/jobs", json=body)))


class Client:
    """``Client(url, key)``; both default as the CLI's do ($TRAINYARD_URL, $TRAINYARD_API_KEY)."""

    def __init__(self, url: str | None = None, key: str | None = None, *, http: httpx.Client | None = None) -> None:
        if http is None:
            self._opened = open_client(url or os.environ.get("TRAINYARD_URL", DEFAULT_URL), api_key(key))
            http = self._opened.__enter__()
        else:
            self._opened = None
        self._http = http
        self.jobs = Jobs(http)
        self.datasets = Datasets(http)
        self.ensembles = Ensembles(http)
        self.sweeps = Sweeps(http)

    def close(self) -> None:
        if self._opened is not None:
            self._opened.__exit__(None, None, None)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fit(self, model: keras.Model, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: list[Any] | None = None, validation_split: float = 0.0,
            shuffle: bool = True, *, name: str | None = None, seed: int | None = None, wait: bool = True,
            **keras_args: Any) -> Job:
        """Train ``model`` (compiled) on the service as ``model.fit(x, y, ...)`` would, and return its Job.

        Beyond Keras's: ``name``, ``seed`` and ``wait`` (False: return once queued). Keras arguments the
        service cannot honour raise ``Unsupported``; unknown ones raise ``TypeError`` as ``model.fit`` does."""
        _refuse(keras_args)
        if not shuffle:
            raise Unsupported("shuffle=False: the service shuffles the training samples each epoch")
        if y is None:
            raise Unsupported("y is required: the service trains on (x, y) arrays")
        spec = self._spec(model, callbacks or [], name=name, seed=seed, validation_split=validation_split,
                          epochs=epochs, batch_size=32 if batch_size is None else batch_size)
        job = self.jobs.submit(spec.model_copy(update={"dataset": self.datasets.upload(x, y)}))
        if wait:
            job.wait(verbose=verbose not in (0, False))
        return job

    @staticmethod
    def _spec(model: keras.Model, callbacks: list[Any], *, name: str | None, seed: int | None,
              validation_split: float, epochs: int, batch_size: int) -> JobSpec:
        try:
            # shuffle=False: the validation split is the last samples, as Keras's validation_split takes them.
            return JobSpec(name=name, dataset="pending upload", seed=seed, model=model_spec(model),
                           compile=compile_spec(model),
                           data=DataSpec(validation_split=validation_split, shuffle=False),
                           fit=FitSpec(epochs=epochs, batch_size=batch_size, callbacks=callback_specs(callbacks)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Unsupported(f"{where}: {first['msg']}") from exc


def _refuse(keras_args: dict[str, Any]) -> None:
    for name, value in keras_args.items():
        if name in REFUSED_FIT_ARGS:
            if value is None or (name in KERAS_DEFAULTS and value == KERAS_DEFAULTS[name]):
                continue
            raise Unsupported(f"fit({name}=...) cannot be honoured: {REFUSED_FIT_ARGS[name]}")
        known = inspect.signature(keras.Model.fit).parameters
        raise TypeError(f"fit() got an unexpected keyword argument {name!r}"
                        + ("" if name not in known else " (a Keras argument the service does not take)"))
