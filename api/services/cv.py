"""Cross-validation runs (``data.folds: K``): checked and created with any job, read back as one run.

A job spec with ``data.folds`` goes through the job-creation code like any other
(``api.services.jobs.create_job``: submit, retry, a sweep's trials) and becomes a run: a parent
row that no worker trains and K ordinary fold jobs (``fold_jobs``). The split of each fold is the
worker's (``datastore.splits``); the parent's status follows its folds (``models.lifecycle``); the
aggregate and the whole-run findings are computed from the folds whenever they are read
(``models.cv``), so they are never stale and never count a fold twice.

Returns rows and plain values; the routes build the schemas.
"""

from sqlalchemy.orm import Session

from api.errors import Invalid, NotFound, detail
from datastore.splits import fold_problem, sample_order
from diagnosis.facts import DataFacts
from models.cv import RunAggregate, fold_jobs, folds_of, run_aggregate
from models.spec import JobSpec
from models.tables import Job

__all__ = ["check_folds", "cv_aggregate", "fold_jobs", "folds_of"]


def check_folds(spec: JobSpec, facts: DataFacts | None) -> None:
    """422 at ``data.folds`` when the data cannot be cut into K folds (too few samples outside the test part,
    or, stratified, too few of some class), by the worker's own rule (``datastore.splits``). Without facts
    (an unreadable file) the worker finds out and fails the folds with the same sentence."""
    folds = spec.data.folds
    if folds is None:
        return
    if spec.diagnosis.auto_retry:
        raise Invalid("auto-repair does not apply to cross-validation folds", [detail(
            ("diagnosis", "auto_retry"), "cannot be used with data.folds (a repaired fold would leave its run). "
                                         f"Received: auto_retry={spec.diagnosis.auto_retry}, folds={folds}")])
    if facts is None:
        return
    assert spec.seed is not None
    n_test = spec.data.split_sizes(facts.samples)[2]
    problem = fold_problem(sample_order(facts.samples, spec.seed, spec.data.shuffle), n_test=n_test, folds=folds,
                           labels=facts.fold_labels(spec.model_dump(mode="json")["compile"]["loss"]))
    if problem is not None:
        raise Invalid(f"data.folds: {problem}", [detail(("data", "folds"), problem)])


def cv_aggregate(session: Session, parent_id: str) -> RunAggregate:
    """The aggregate of the run ``parent_id`` (a sweep's objective is ``metrics[name]["mean"]``).

    Raises:
        NotFound: no such job for this session's tenant, or a job that is not a cross-validation run.
    """
    parent = session.get(Job, parent_id)
    if parent is None or parent.cv_folds is None:
        raise NotFound(f"no cross-validation run with id '{parent_id}'")
    return run_aggregate(parent, folds_of(session, parent))
