"""Glue between a training run and the diagnosis: the task's reference levels,
the monitor callback, the fixes for what it finds, and the final verdict."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from diagnosis.curves import Task
from diagnosis.facts import DataFacts, canonical_loss
from diagnosis.preflight import run_preflight
from diagnosis.reference import task_of
from diagnosis.registry import training_suggestions
from diagnosis.repair import repair
from diagnosis.suggest import keeps_what_learnt
from diagnosis.verdict import final_verdict
from keras_bridge.errors import SpecError
from keras_bridge.validate import check_spec
from models.findings import Code, Finding, Suggestion
from models.spec import JobSpec
from worker.data import PreparedData
from worker.monitor import DiagnosisMonitor


def loss_name(spec: JobSpec) -> str:
    loss = spec.compile.loss
    return canonical_loss(loss if isinstance(loss, str) else loss.model_dump())[0]


TARGET_ROWS = 200_000  # evenly spaced training targets read for the reference levels (entropy within ~0.1 %)


def _targets(y: Any) -> np.ndarray:
    n = len(y)
    return np.asarray(y if n <= TARGET_ROWS else y[np.linspace(0, n - 1, TARGET_ROWS).astype(np.int64)])


def make_task(spec: JobSpec, data: PreparedData) -> Task:
    """The reference levels of the training split, as the model sees it (one-hot and scaling applied), and
    the validation split's own reference level."""
    task = task_of(_targets(data.train.y), loss_name(spec))
    task.has_validation = data.validation is not None
    if data.validation is not None and len(data.validation.y):
        unseen = task_of(_targets(data.validation.y), loss_name(spec))
        task.val_chance_loss, task.val_majority_rate = unseen.chance_loss, unseen.majority_rate
    task.early_stopping_restores_best = any(
        c.type == "EarlyStopping" and c.args.get("restore_best_weights") for c in spec.fit.callbacks)
    return task


class Diagnosis:
    """One run's diagnosis: call ``callback()`` for fit, ``verdict()`` at the end."""

    def __init__(self, spec: JobSpec, data: PreparedData, facts: DataFacts | None,
                 report: Callable[[Finding], None], resolve: Callable[[Code, int], None] | None = None) -> None:
        self.spec, self.data, self.facts, self.report, self.resolve = spec, data, facts, report, resolve
        self.spec_json = spec.model_dump(mode="json")
        self.task = make_task(spec, data)
        self._repair: tuple[dict[str, Any], list[str]] | None = None
        self.monitor: DiagnosisMonitor | None = None

    def _preflight_fix(self) -> tuple[dict[str, Any], list[str]]:
        """The preflight fixes of this spec, combined (computed once, when first needed)."""
        if self._repair is None:
            def check(candidate: dict[str, Any]) -> list[Finding]:
                try:
                    summary = check_spec(JobSpec.model_validate(candidate), clear_session=False)
                except SpecError as exc:
                    raise ValueError(str(exc)) from exc
                return run_preflight(candidate, summary, self.facts)

            self._repair = repair(self.spec_json, check)
        return self._repair

    def suggestions(self, code: Code) -> list[Suggestion]:
        """The fixes of a training finding raised now, chosen from the epochs so far and the reference levels."""
        history = self.monitor.history if self.monitor is not None else []
        return training_suggestions(code, self.spec_json, self._preflight_fix(), history, self.task)

    def callback(self, model: keras.Model, state_path: Path | None = None) -> DiagnosisMonitor:
        """The monitor for ``model.fit``; ``state_path``: see ``DiagnosisMonitor``."""
        loss = model.loss
        self.monitor = DiagnosisMonitor(
            task=self.task, probe=(self.data.train.x, self.data.train.y),
            loss=keras.losses.get(loss) if isinstance(loss, str) else loss,
            report=self.report, resolve=self.resolve, suggest=self.suggestions,
            stop_on=set(self.spec.diagnosis.stop_on),
            train_samples=len(self.data.train.x), batch_size=self.spec.fit.batch_size,
            from_logits=bool(getattr(loss, "from_logits", False)
                             or (getattr(loss, "_fn_kwargs", None) or {}).get("from_logits")),
            state_path=state_path,
            validation=(self.data.validation.x, self.data.validation.y) if self.data.validation is not None else None,
        )
        return self.monitor

    def verdict(self, findings: list[dict[str, Any]]) -> Finding:
        history = self.monitor.history if self.monitor else []
        warned = any(f["phase"] == "preflight" and f["severity"] != "info" and f["suggestions"] for f in findings)
        fix = None
        if warned:  # offered only to a job that learnt (final_verdict): never a change that undoes what works
            patch, applied = self._preflight_fix()
            if patch and keeps_what_learnt(patch):
                fix = Suggestion(summary="fix what preflight found: " + "; ".join(applied), patch=patch)
        verdict = final_verdict(history, self.task, findings, self.spec_json, preflight_fix=fix)
        if self.monitor is not None:  # what watching cost, against the epochs' own time
            verdict.evidence["diagnosis_s"] = round(self.monitor.seconds, 4)
            verdict.evidence["diagnosis_steady_s"] = round(sum(self.monitor.epoch_seconds[1:]), 4)
        return verdict
