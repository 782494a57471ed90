"""Auto-repair: when a job ends judged not to learn, queue it again with the top suggestion.

``diagnosis.auto_retry: N`` allows N such attempts; each child carries N-1,
its parent's id, and the id of the chain's first job, so GET on any attempt
shows which one learned.
"""

import logging

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from broker.tasks import SendJob
from diagnosis.facts import DataFacts
from diagnosis.patches import merge_patch
from diagnosis.preflight import run_preflight
from keras_bridge.errors import SpecError
from keras_bridge.validate import check_spec
from models import lifecycle
from models.db import transaction
from models.findings import LEARNED, VERDICT_NAMES, Finding
from models.ids import new_id
from models.spec import JobSpec
from models.tables import Job

log = logging.getLogger(__name__)
NOT_LEARNING = frozenset(VERDICT_NAMES) - LEARNED


def wants_retry(spec: JobSpec, verdict: Finding | None) -> bool:
    return (verdict is not None and spec.diagnosis.auto_retry > 0 and bool(verdict.suggestions)
            and verdict.evidence.get("verdict") in NOT_LEARNING)


def spawn_retry(factory: sessionmaker[Session], job_id: str, verdict: Finding, facts: DataFacts | None,
                send: SendJob, *, max_queued: int) -> str | None:
    """Create and enqueue the next attempt; None when the fixed spec does not check out or the
    tenant's queue is full (the same ``lifecycle.create`` as a submit, limit included)."""
    top = verdict.suggestions[0]
    with transaction(factory) as session:
        parent = session.get_one(Job, job_id)
        body = merge_patch(parent.spec, top.patch)
        body["diagnosis"]["auto_retry"] = parent.spec["diagnosis"]["auto_retry"] - 1
        body["force"] = True  # the service chose this fix itself; its preflight findings go with the job
        try:
            spec = JobSpec.model_validate(body)
            summary = check_spec(spec, clear_session=False)
        except (ValidationError, SpecError) as exc:
            log.warning("auto-retry of %s skipped: the fixed spec does not check out: %s", job_id, exc)
            return None
        spec_json = spec.model_dump(mode="json")
        root = parent.repair_root_id or parent.id
        child = Job(
            id=new_id("job"), tenant=parent.tenant, name=parent.name, spec=spec_json, dataset_ref=parent.dataset_ref,
            parent_id=parent.id, repair_root_id=root, epochs=spec.fit.epochs,
            findings=[f.as_json() for f in run_preflight(spec_json, summary, facts)],
            origin={"finding": verdict.evidence.get("from"), "suggestion": top.summary, "auto": True},
        )
        try:
            lifecycle.create(session, child, max_queued=max_queued, parent_id=parent.id, auto_retry=True)
        except lifecycle.QueueFull as exc:
            log.warning("auto-retry of %s skipped: %s", job_id, exc)
            return None
        parent.repair_root_id = root
        child_id = child.id
    send(child_id, spec_json.get("resources"))
    return child_id
