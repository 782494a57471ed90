"""``GET /v1/jobs/{id}/tensorboard``: the job's TensorBoard event files as a streamed .tar.gz.

The worker writes them (worker/tensorboard.py) under the job's artifact folder;
``trainyard tensorboard <job ids…>`` downloads several and runs TensorBoard over them.
"""

import tarfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import StoreDep, UoW
from api.errors import NotFound
from api.schemas.errors import error_responses
from api.services import jobs as service

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class _Chunks:
    """A write-only file that keeps what ``tarfile`` writes until the stream takes it."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        return len(data)

    def take(self) -> bytes:
        out, self.pending = bytes(self.pending), bytearray()
        return out


def _tar_gz(folder: Path, top: str) -> Iterator[bytes]:
    """The archive, a file at a time: memory holds one compressed file, never the whole archive."""
    sink = _Chunks()
    with tarfile.open(fileobj=sink, mode="w|gz") as archive:  # type: ignore[call-overload]
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            archive.add(path, arcname=f"{top}/{path.relative_to(folder)}", recursive=False)
            yield sink.take()
    yield sink.take()


@router.get("/{job_id}/tensorboard", summary="The job's TensorBoard event files (.tar.gz)",
            response_class=StreamingResponse,
            description="A gzipped tar of `<job id>/train/…` and `<job id>/validation/…` event files: per-epoch "
                        "scalars (`epoch_loss`, `epoch_<metric>`), the diagnosis monitor's `monitor/saturation` and "
                        "`monitor/gradient_norm/layer_<i>`, and the model graph. Unpack several jobs' archives in one "
                        "folder and run `tensorboard --logdir` on it (`trainyard tensorboard <job ids…>` does). "
                        "404 until the job's first epoch wrote them.",
            responses={200: {"description": "the archive", "content": {
                "application/gzip": {"schema": {"type": "string", "format": "binary"}}}}, **error_responses(404)})
def download_tensorboard(job_id: str, uow: UoW, store: StoreDep) -> StreamingResponse:
    service.get_job(uow.session, job_id)  # this tenant's job, or 404
    folder = store.tensorboard_dir(job_id)
    if not folder.is_dir() or not any(folder.rglob("*.v2")):
        raise NotFound(f"job '{job_id}' has no TensorBoard files yet: they are written from its first epoch on")
    return StreamingResponse(_tar_gz(folder, job_id), media_type="application/gzip",
                             headers={"Content-Disposition": f'attachment; filename="{job_id}-tensorboard.tar.gz"'})
