"""Datasets: upload (streamed, hashed, checked), describe, list, delete."""

import hashlib
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import Page
from api.errors import Conflict, Invalid, NotFound, PayloadTooLarge, UnsupportedMediaType, detail
from api.schemas.common import ListPage
from api.schemas.datasets import DatasetOut, samples_of
from datastore.artifacts import ArtifactStore
from datastore.builtin import builtin_names, describe_builtin, is_builtin, load_builtin
from datastore.npz import DatasetFileError, describe_arrays, load_npz
from models.enums import JobStatus
from models.tables import Dataset, Job

CHUNK = 1024 * 1024
SUFFIXES = {".npz": "npz"}


@cache
def _builtin_arrays(ref: str) -> dict[str, Any]:
    return describe_arrays(load_builtin(ref))


def dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        id=dataset.id, builtin=False, filename=dataset.filename, format=dataset.format, sha256=dataset.sha256,
        size_bytes=dataset.size_bytes, samples=samples_of(dataset.arrays), arrays=dataset.arrays,
        created_at=dataset.created_at,
    )


def builtin_out(ref: str) -> DatasetOut:
    arrays = _builtin_arrays(ref)
    return DatasetOut(
        id=ref, builtin=True, description=describe_builtin(ref), format="builtin", sha256=None, size_bytes=None,
        samples=samples_of(arrays), arrays=arrays, created_at=None,
    )


def arrays_of(session: Session, ref: str) -> dict[str, Any]:
    """The array descriptions of a dataset id or built-in name; 422 at ``dataset`` if unknown."""
    if is_builtin(ref):
        if ref not in builtin_names():
            raise Invalid("unknown dataset", [detail(("dataset",), f"unknown built-in dataset '{ref}'; built-ins: {builtin_names()}")])
        return _builtin_arrays(ref)
    dataset = session.get(Dataset, ref)
    if dataset is None:
        raise Invalid("unknown dataset", [detail(("dataset",), f"no dataset with id '{ref}'; upload one with POST /v1/datasets")])
    return dataset.arrays


def get_dataset(session: Session, ref: str) -> DatasetOut:
    if is_builtin(ref) and ref in builtin_names():
        return builtin_out(ref)
    dataset = session.get(Dataset, ref)
    if dataset is None:
        raise NotFound(f"no dataset with id '{ref}'")
    return dataset_out(dataset)


def list_datasets(session: Session, page: Page) -> ListPage[DatasetOut]:
    query = select(Dataset).order_by(Dataset.id.desc()).limit(page.limit + 1)
    if page.cursor:
        query = query.where(Dataset.id < page.cursor)
    rows = session.scalars(query).all()
    items = [dataset_out(d) for d in rows[: page.limit]]
    if page.cursor is None:  # built-ins head the first page
        items = [builtin_out(ref) for ref in builtin_names()] + items
    return ListPage(items=items, next_cursor=rows[page.limit - 1].id if len(rows) > page.limit else None)


def _stream_to_disk(source: BinaryIO, directory: Path, limit: int) -> tuple[Path, str, int]:
    digest, size = hashlib.sha256(), 0
    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as sink:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
                digest.update(chunk)
                sink.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def upload_dataset(session: Session, store: ArtifactStore, *, filename: str, source: BinaryIO, limit: int) -> tuple[DatasetOut, bool]:
    """Store an upload under its content hash. Returns the dataset and whether it is new."""
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedMediaType(f"unsupported file type '{suffix or filename}'; accepted: {sorted(SUFFIXES)}")
    tmp, sha256, size = _stream_to_disk(source, store.upload_dir(), limit)
    try:
        if size == 0:
            raise Invalid("the file is empty", [detail(("file",), "the file is empty")])
        existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256))
        if existing is not None:
            return dataset_out(existing), False
        try:
            arrays = load_npz(tmp)
        except DatasetFileError as exc:
            raise Invalid(str(exc), [detail(("file",), str(exc))]) from exc
        relative = store.dataset_path(sha256, suffix)
        final = store.resolve(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        dataset = Dataset(
            id=f"ds_{sha256[:24]}", sha256=sha256, filename=Path(filename).name[:255], format=SUFFIXES[suffix],
            size_bytes=size, path=relative, arrays=describe_arrays(arrays),
        )
        try:
            with session.begin_nested():
                session.add(dataset)
        except IntegrityError:  # the same file uploaded concurrently: keep the first
            existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256))
            assert existing is not None
            return dataset_out(existing), False
        os.replace(tmp, final)
        return dataset_out(dataset), True
    finally:
        tmp.unlink(missing_ok=True)


def delete_dataset(session: Session, store: ArtifactStore, ref: str) -> Path:
    """Delete the row; returns the file to remove once the deletion has committed."""
    if is_builtin(ref):
        raise Conflict("built-in datasets cannot be deleted")
    dataset = session.get(Dataset, ref)
    if dataset is None:
        raise NotFound(f"no dataset with id '{ref}'")
    in_use = session.scalar(
        select(Job.id).where(Job.dataset_ref == ref, Job.status.in_([JobStatus.queued, JobStatus.running])).limit(1)
    )
    if in_use:
        raise Conflict(f"dataset '{ref}' is used by job '{in_use}', which is queued or running")
    path = store.resolve(dataset.path)
    session.delete(dataset)
    session.flush()
    return path
