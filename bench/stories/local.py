"""Run a case through the real worker code in this process: SQLite, the artifact
folder, ``check_job``-equivalent preflight and ``run_training``. Used by the
suite's fast part and for quick iteration; ``bench/stories/run.py`` goes
through the HTTP service instead."""

import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from api.services.datasets import upload_dataset
from api.tenancy import scope
from bench.stories.cases import Case
from datastore.artifacts import ArtifactStore
from datastore.builtin import load_builtin
from diagnosis.facts import data_facts
from diagnosis.patches import merge_patch
from diagnosis.preflight import run_preflight
from keras_bridge.validate import check_spec
from migrations import upgrade
from models.db import make_engine, make_session_factory, transaction
from models.findings import LEARNED, verdict_of
from models.ids import new_id
from models.settings import Settings
from models.spec import JobSpec
from models.tables import EpochMetric, Job
from worker.training import run_training

TENANT = "bench"


@dataclass
class Outcome:
    preflight: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    stop_reason: str
    seconds: float

    @property
    def codes(self) -> set[str]:
        return {f["code"] for f in self.findings if f["code"] != "verdict"}

    @property
    def warnings(self) -> set[str]:
        return {f["code"] for f in self.findings if f["severity"] != "info"}

    def first_epoch(self, code: str) -> int | None:
        return next((f.get("epoch") for f in self.findings if f["code"] == code), None)

    @property
    def verdict(self) -> dict[str, Any] | None:
        return verdict_of(self.findings)


class LocalRunner:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="stories-"))
        self.settings = Settings(data_dir=self.root, heartbeat_interval_s=3600)
        upgrade(self.settings.database_dsn)
        self.factory = make_session_factory(make_engine(self.settings.database_dsn))
        self.store = ArtifactStore(self.settings.artifacts)
        self.arrays: dict[str, dict[str, np.ndarray]] = {}

    def dataset(self, case: Case) -> str:
        if case.dataset is None:
            self.arrays[case.spec["dataset"]] = load_builtin(case.spec["dataset"])
            return case.spec["dataset"]
        arrays = case.dataset()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        with transaction(self.factory) as session:  # the API's own upload path
            scope(session, TENANT)
            dataset, _ = upload_dataset(session, self.store, filename=f"{case.name}.npz", source=buffer,
                                        settings=self.settings)
        ref = dataset.id
        self.arrays[ref] = arrays
        return ref

    def run(self, case: Case, patch: dict[str, Any] | None = None) -> Outcome:
        ref = self.dataset(case)
        body = merge_patch({**case.spec, "dataset": ref}, patch or {})
        spec = JobSpec.model_validate(body)
        spec_json = spec.model_dump(mode="json")
        arrays = self.arrays[ref]
        facts = data_facts(arrays[spec.data.x], arrays[spec.data.y])
        preflight = [f.as_json() for f in run_preflight(spec_json, check_spec(spec), facts)]
        job_id = new_id("job")
        with transaction(self.factory) as session:
            session.add(Job(id=job_id, tenant=TENANT, spec=spec_json, dataset_ref=ref, epochs=spec.fit.epochs,
                            findings=preflight))
        started = time.perf_counter()
        run_training(self.factory, job_id, settings=self.settings)
        elapsed = time.perf_counter() - started
        with transaction(self.factory) as session:
            job = session.get_one(Job, job_id)
            rows = session.query(EpochMetric).filter_by(job_id=job_id).order_by(EpochMetric.epoch).all()
            curves = [{"epoch": r.epoch, **r.metrics} for r in rows]
            if job.error:
                raise RuntimeError(f"{case.name} failed: {job.error}")
            stop_reason = job.stop_reason.value if job.stop_reason else ""
            return Outcome(preflight, list(job.findings), curves, stop_reason, elapsed)


def learned(case: Case, outcome: Outcome) -> bool:
    """Did the run learn? Its verdict is not "not learning" and, at its best epoch,
    validation accuracy closed 40% of the gap from the majority rate to 1
    (classification) or the validation mse is under 70% of the target variance
    (regression: R² above 0.3)."""
    return learned_from_verdict(outcome.verdict, case.regression)


def learned_from_verdict(verdict: dict[str, Any] | None, regression: bool) -> bool:
    if verdict is None or verdict["evidence"]["verdict"] not in LEARNED:
        return False
    evidence = verdict["evidence"]
    best = evidence.get("best") or {}
    if regression:
        variance = evidence.get("target_variance") or 1.0
        return best.get("val_loss") is not None and best["val_loss"] < 0.7 * variance
    accuracy, majority = best.get("val_accuracy"), evidence.get("majority_rate") or 0.5
    return accuracy is not None and accuracy >= majority + 0.4 * (1 - majority)
