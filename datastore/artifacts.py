"""Paths inside the artifact root. Every path is built here from ids the
service made itself, and checked to stay under the root."""

import re
import shutil
from pathlib import Path


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"path escapes the artifact root: {relative!r}")
        return path

    def dataset_path(self, sha256: str) -> str:
        """A dataset's folder (see ``datastore.layout``), named by the sha256 of the uploaded bytes."""
        return f"datasets/{sha256}"

    def job_dir(self, job_id: str) -> Path:
        path = self.resolve(f"jobs/{job_id}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_path(self, job_id: str) -> str:
        return f"jobs/{job_id}/model.keras"

    def ensemble_model_path(self, ensemble_id: str) -> str:
        return f"ensembles/{ensemble_id}/model.keras"

    def tensorboard_dir(self, job_id: str) -> Path:
        """The job's TensorBoard event files (``train/``, ``validation/``), as Keras's own callback lays them out."""
        return self.resolve(f"jobs/{job_id}/tensorboard")

    def scaler_path(self, job_id: str) -> Path:
        """The statistics ``data.scale_x``/``scale_y`` were fitted with (worker/data.py), for predictions."""
        return self.resolve(f"jobs/{job_id}/scaler.npz")

    def stream_secret_path(self) -> Path:
        """The secret that signs stream tokens and session cookies (api/stream_tokens.py) in distributed
        mode: at the root of the volume every API process mounts, which outlives their containers. A dot
        file beside ``jobs/`` and ``datasets/``, so no sweep of theirs ever reaches it."""
        return self.resolve(".stream-secret")

    def worker_reports_dir(self) -> Path:
        """The training workers' slot reports (models/slot_report.py), read by /metrics."""
        return self.resolve("workers")

    def worker_report_path(self, node: str) -> Path:
        """One worker's report, named after its Celery node name (``cpu@host``) made safe as a file name."""
        return self.worker_reports_dir() / f"{re.sub(r'[^A-Za-z0-9@._-]', '_', node)}.json"

    def upload_dir(self) -> Path:
        path = self.resolve("uploads")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, path: Path) -> None:
        """Delete a stored file or folder (a dataset), if it is still there."""
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"refusing to remove {path}: not inside the artifact root")
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
