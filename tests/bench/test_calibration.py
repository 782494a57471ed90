"""The calibration benchmark (bench/calibration): its case table meets the issue's counts, its
scoring arithmetic is right on hand-made outcomes, and one real run goes through the harness."""

from collections import Counter

from bench.calibration.cases import CASES
from bench.calibration.onset import onset_epoch
from bench.calibration.run import run_case, select
from bench.calibration.score import TRAINING_CODES, RunResult, score_codes, summary
from bench.stories.local import LocalRunner
from models.findings import Code


def test_case_table_meets_the_issues_counts():
    healthy = [c for c in CASES if c.healthy]
    assert len(CASES) >= 60 and len(healthy) >= 40
    seeds = Counter(c.group for c in healthy)
    assert len(seeds) >= 8 and min(seeds.values()) >= 3
    assert {code for c in CASES for code in c.expected} >= set(TRAINING_CODES)
    assert set(TRAINING_CODES) <= {code.value for code in Code}
    assert len({c.name for c in CASES}) == len(CASES)
    quick = select(quick=True, only=None)
    assert 12 <= len(quick) <= 20 and any(c.healthy for c in quick)
    assert {code for c in quick for code in c.expected} >= set(TRAINING_CODES)


def _result(name: str, expected: list[str], raised: dict[str, int | None], onset: int | None = 1,
            acceptable: tuple[str, ...] = (), learned: bool = True, retry: dict | None = None) -> RunResult:
    warnings = [{"code": code, "epoch": epoch, "message": "m"} for code, epoch in raised.items()]
    return RunResult(name, name, not expected, expected, list(acceptable), raised, warnings, onset, learned,
                     "converged", 1.0, 10, retry)


def test_scoring_counts_recall_false_alarms_lag_and_broken_retries():
    results = [
        _result("ok-1", [], {}),
        _result("ok-2", [], {"unstable": 8}, retry={"learned": False}),  # a false alarm; its retry broke a good job
        _result("ok-3", [], {}, retry={"learned": True}),
        _result("ok-4", [], {}, retry={"skipped": True}),  # more epochs only: not run, not counted
        _result("over-1", ["overfitting"], {"overfitting": 9, "unstable": 9}, onset=5, acceptable=("unstable",)),
        _result("over-2", ["overfitting"], {"overfitting": 7}, onset=5),
        _result("over-3", ["overfitting"], {"plateau": 4}, onset=5, learned=False, retry={"learned": False}),
    ]
    scores = score_codes(results)
    over, unstable, plateau = scores["overfitting"], scores["unstable"], scores["plateau"]
    assert (over.expected, over.found, over.recall) == (3, 2, 2 / 3)
    assert sorted(over.lags) == [2, 4] and over.timely == 1 and over.missed_runs == ["over-3"]
    assert over.false_alarms == 0 and over.clean_runs == 4
    # unstable is acceptable on over-1: neither a hit nor a false alarm there
    assert (unstable.false_alarms, unstable.clean_runs, unstable.false_alarm_runs) == (1, 6, ["ok-2"])
    assert (plateau.false_alarms, plateau.clean_runs) == (1, 7)
    figures = summary(results)
    assert (figures["runs"], figures["healthy_runs"], figures["healthy_warnings"]) == (7, 4, 1)
    assert figures["recall"] == 2 / 3 and figures["timely"] == 1 / 2 and figures["false_alarms"] == 2
    assert (figures["retried"], figures["retry_skipped"], figures["retry_learned"]) == (3, 1, 1)
    assert figures["retry_broke"] == ["ok-2"]  # over-3 had not learnt


def test_onset_is_read_from_the_curve():
    curve = [{"loss": loss, "val_loss": val} for loss, val in
             [(1.0, 0.9), (0.6, 0.5), (0.4, 0.4), (0.3, 0.45), (0.2, 0.5), (0.1, 0.6)]]
    assert onset_epoch("start", curve) == 1
    assert onset_epoch("overfit", curve) == 4  # more than 5 % above the best (epoch 3) from epoch 4 on
    assert onset_epoch("overfit", curve[:3]) is None  # still improving at the end: no onset
    # Levelled off within 5 % of its best from epoch 2, as a healthy run converging does: not an onset;
    # the turn up is (epoch 6 on, 8 % and more above the best, training still falling).
    level = [{"loss": 1.0 - 0.1 * i, "val_loss": v} for i, v in enumerate((0.9, 0.41, 0.42, 0.40, 0.41, 0.41, 0.44,
                                                                           0.45, 0.47))]
    assert onset_epoch("overfit", level) == 7
    # Memorised: the training set fitted (accuracy 0.99 from epoch 5) while the validation loss stalled.
    fitted = [{**row, "accuracy": a} for row, a in zip(level[:6], (0.6, 0.8, 0.9, 0.95, 0.99, 1.0), strict=True)]
    assert onset_epoch("overfit", fitted) == 5
    climbing = [{"loss": v} for v in (1.0, 0.8, 0.9, 1.3, 1.2, 2.0, None)]  # None: the loss blew up
    assert onset_epoch("after_best_loss", climbing) == 3
    flat = [{"loss": loss} for loss in (2.0, 1.0, 0.70, 0.69, 0.70, 0.70, 0.69)]
    assert onset_epoch("flat", flat) == 5  # flat from epoch 3, visible two epochs later
    bouncing = [{"loss": v, "val_loss": w} for v, w in
                [(1.0, 1.0), (0.9, 0.5), (0.8, 0.8), (0.7, 0.4), (0.72, 0.41), (0.9, 0.9), (0.6, 0.3)]]
    assert onset_epoch("bounce", bouncing) == 4  # validation up at 3, down at 4; training only at 7
    assert onset_epoch("bounce", [{"loss": v} for v in (1.0, 0.8, 0.7, 0.6)]) is None


def test_one_case_runs_end_to_end_through_the_worker(tmp_path):
    case = next(c for c in CASES if c.name == "digits-mlp-small-val-s1")
    result = run_case(LocalRunner(tmp_path), case, retries=False)
    assert result.epochs == case.case.spec["fit"]["epochs"] and result.onset == 1
    assert result.learned  # a small MLP on scaled digits reaches about 97 % validation accuracy
    assert result.retry is None
    assert summary([result])["healthy_runs"] == 1
