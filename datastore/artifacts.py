"""Paths inside the artifact root. Every path is built here from ids the
service made itself, and checked to stay under the root."""

from pathlib import Path


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def resolve(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"path escapes the artifact root: {relative!r}")
        return path

    def dataset_path(self, sha256: str, suffix: str) -> str:
        return f"datasets/{sha256}{suffix}"

    def job_dir(self, job_id: str) -> Path:
        path = self.resolve(f"jobs/{job_id}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_path(self, job_id: str) -> str:
        return f"jobs/{job_id}/model.keras"

    def upload_dir(self) -> Path:
        path = self.resolve("uploads")
        path.mkdir(parents=True, exist_ok=True)
        return path
