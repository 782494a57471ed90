"""Datasets: upload (streamed, hashed, checked, stored as memory-mappable arrays), describe, list, delete.

Returns rows (``Dataset``, or a ``Builtin`` for a built-in dataset) and plain values; the routes
build the response schemas."""

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.deps import Page, Rows
from api.errors import Conflict, Invalid, NotFound, PayloadTooLarge, UnsupportedMediaType, detail
from api.tenancy import current_tenant
from datastore.artifacts import ArtifactStore
from datastore.builtin import builtin_names, describe_builtin, is_builtin
from datastore.describe import array_summary
from datastore.errors import DatasetFileError
from datastore.ingest import FORMATS, ingest
from datastore.kinds import ArrayKind
from datastore.limits import Limits
from datastore.lookup import FoundDataset, builtin_description, find_dataset
from datastore.sweep import sweep
from models.dataset_files import claims, lock_content, referenced_contents, unreferenced
from models.enums import JobStatus
from models.settings import Settings
from models.spec import DataSpec
from models.tables import Dataset, Job

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


class Builtin(NamedTuple):
    """A built-in dataset: what a ``Dataset`` row says of an uploaded one."""

    id: str
    title: str
    arrays: dict[str, Any]
    description: dict[str, Any]


def builtin(ref: str) -> Builtin:
    description = builtin_description(ref)
    return Builtin(ref, describe_builtin(ref), array_summary(description), description)


def find(session: Session, store: ArtifactStore, ref: str) -> FoundDataset:
    """The dataset a job names, this tenant's (``datastore.lookup``). Its ``UnknownDataset`` is the
    API's 422 at ``dataset`` (``api.errors``)."""
    return find_dataset(store, ref, lambda dataset_id: session.get(Dataset, dataset_id))


def _names(arrays: dict[str, Any]) -> str:
    names = sorted(arrays)
    return str(names) if len(names) <= 20 else f"{names[:20]} and {len(names) - 20} more"


def role_shapes(arrays: dict[str, Any], data: DataSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``data.x`` and ``data.y`` give the model: ``{"shape": [samples, ...], "kind"}`` each.

    A list of names stacks 1-D arrays (CSV columns) as features; images take the
    spec's ``image_size`` and ``color_mode``. 422 naming the option if that cannot work.
    """
    issues, out = [], {}
    for role in ("x", "y"):
        names = getattr(data, role)
        listed = [names] if isinstance(names, str) else names
        missing = [n for n in listed if n not in arrays]
        if missing:
            issues.append(detail(("data", role), f"the dataset has no array '{missing[0]}'; it has {_names(arrays)}"))
            continue
        infos = [arrays[n] for n in listed]
        if isinstance(names, list):
            wide = [n for n, info in zip(listed, infos, strict=True) if len(info["shape"]) != 1]
            if wide:
                issues.append(detail(("data", role), f"only 1-D arrays (columns) can be listed to stack as features; "
                                                      f"'{wide[0]}' has shape {arrays[wide[0]]['shape']}"))
                continue
            if len({info["shape"][0] for info in infos}) > 1:
                issues.append(detail(("data", role), "the listed arrays differ in length"))
                continue
            out[role] = {"shape": [infos[0]["shape"][0], len(listed)], "kind": ArrayKind.dense.value}
            continue
        info = dict(infos[0])
        kind = info.get("kind", ArrayKind.dense)
        if role == "y" and kind != ArrayKind.dense:
            issues.append(detail(("data", "y"), f"'{names}' holds {kind}; a target must be a plain array"))
            continue
        if kind == ArrayKind.images:
            info["shape"] = [info["shape"][0], *data.image_size, data.channels]
        out[role] = info
    if issues:
        raise Invalid("the data options do not match the dataset", issues)
    return out["x"], out["y"]


def get_dataset(session: Session, ref: str) -> Dataset | Builtin:
    if is_builtin(ref) and ref in builtin_names():
        return builtin(ref)
    dataset = session.get(Dataset, ref)
    if dataset is None:
        raise NotFound(f"no dataset with id '{ref}'")
    return dataset


def list_datasets(session: Session, page: Page) -> Rows[Dataset | Builtin]:
    """Newest first, built-ins heading the first page."""
    query = select(Dataset).order_by(Dataset.id.desc()).limit(page.limit + 1)
    if page.cursor:
        query = query.where(Dataset.id < page.cursor)
    uploaded = page.of(session.scalars(query).all(), lambda dataset: dataset.id)
    builtins = [builtin(ref) for ref in builtin_names()] if page.cursor is None else []
    return Rows([*builtins, *uploaded.items], uploaded.next_cursor)


def _stream_to_disk(source: BinaryIO, directory: Path, limit: int) -> tuple[Path, str, int]:
    """Copy the upload to ``uploads/<name>.part`` (each write refreshes its time: the sweep leaves it alone)."""
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


def _limits(settings: Settings) -> Limits:
    return Limits(max_unpacked_bytes=settings.max_unpacked_bytes, max_members=settings.max_archive_members,
                  max_image_pixels=settings.max_image_pixels, max_npz_members=settings.max_npz_members,
                  max_csv_columns=settings.max_csv_columns)


def upload_dataset(session: Session, store: ArtifactStore, *, filename: str, source: BinaryIO,
                   settings: Settings) -> tuple[Dataset, bool]:
    """Check an upload and store it under its content hash. Returns the dataset and whether it is new.

    The arrays are written to a staging folder and renamed into place only once
    every check passed, so a refused upload leaves no file and no row behind.
    The rename happens under the content's lock (``models.dataset_files``) and
    just before the row commits: a crash in between leaves a folder without a
    row, which the sweep collects; never a row without its folder.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise UnsupportedMediaType(f"unsupported file type '{suffix or filename}'; accepted: {sorted(FORMATS)}")
    tmp, sha256, size = _stream_to_disk(source, store.upload_dir(), settings.max_upload_bytes)
    staging = tmp.with_suffix(".staging")  # named after its part file: the sweep ages the two together
    try:
        if size == 0:
            raise Invalid("the file is empty", [detail(("file",), "the file is empty")])
        existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256))
        if existing is not None:
            return existing, False
        try:
            ingested = ingest(tmp, suffix, staging, _limits(settings))
        except DatasetFileError as exc:
            error = PayloadTooLarge if exc.too_large else Invalid
            raise error(str(exc), [detail(exc.loc, str(exc))]) from exc
        relative = store.dataset_path(sha256)
        tenant = current_tenant(session)
        dataset = Dataset(
            id=dataset_id(tenant, sha256), tenant=tenant, sha256=sha256, filename=Path(filename).name[:255],
            format=ingested.format, size_bytes=size, path=relative, arrays=ingested.arrays,
            description=ingested.description,
        )
        lock_content(session, sha256)  # until this request commits: a removal of the same bytes waits for the row
        try:
            with session.begin_nested():
                session.add(dataset)
        except IntegrityError:  # the same file uploaded concurrently: keep the first
            existing = session.scalar(select(Dataset).where(Dataset.sha256 == sha256))
            assert existing is not None
            return existing, False
        final = store.resolve(relative)
        if not final.exists():  # else: the same bytes, stored for another tenant; reuse them
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, final)
            os.utime(final)  # its age, for the sweep, starts now
        return dataset, True
    finally:
        tmp.unlink(missing_ok=True)
        store.remove(staging)


def dataset_id(tenant: str, sha256: str) -> str:
    """Content-addressed within a tenant: the same file gets the same id, another tenant another id."""
    return "ds_" + hashlib.sha256(f"{tenant}:{sha256}".encode()).hexdigest()[:24]


def delete_dataset(session: Session, ref: str) -> Dataset:
    """Delete the row; returns it, so that its files are released once the deletion has committed."""
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
    session.delete(dataset)
    return dataset


def release_files(session: Session, store: ArtifactStore, dataset: Dataset) -> None:
    """After a deletion committed: remove the stored files unless a row of any tenant still uses them
    (decided under the content's lock, which an upload of the same bytes holds until its row commits).
    A failure here leaves only a folder without a row, which the sweep collects."""
    try:
        with unreferenced(session, dataset.sha256) as free:
            if free:
                store.remove(store.resolve(dataset.path))
    except Exception:  # the deletion stands; the sweep retries
        log.exception("could not release the files of deleted dataset %s; the sweep will", dataset.id)


def sweep_stale_uploads(settings: Settings, store: ArtifactStore, factory: sessionmaker[Session]) -> None:
    """The API's start-up sweep (see ``datastore.sweep``); a failure is logged, never fatal."""
    try:
        sweep(store, settings.upload_grace_s, claims(factory),
              lambda: referenced_contents(factory))
    except Exception:  # the periodic sweep retries
        log.exception("the start-up sweep of stale uploads failed")
