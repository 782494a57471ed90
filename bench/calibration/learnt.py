"""Did a run learn? ``bench/stories/local.learned``, with multi-hot targets judged per column.

For multi-label runs the verdict's majority rate is that of argmax classes and its
accuracy key is absent (Keras logs ``binary_accuracy``): the reference here is the
mean over columns of each column's majority rate, against validation binary accuracy.
"""

import numpy as np

from bench.calibration.cases import CalibrationCase
from bench.stories.local import Outcome, learned, learned_from_verdict


def column_majority(y: np.ndarray) -> float:
    positive = np.asarray(y, dtype=np.float64).reshape(len(y), -1).mean(axis=0)
    return float(np.maximum(positive, 1 - positive).mean())


def learnt(case: CalibrationCase, outcome: Outcome) -> bool:
    verdict = outcome.verdict
    if not case.multilabel or verdict is None or case.case.dataset is None:
        return learned(case.case, outcome)
    best = verdict["evidence"].get("best") or {}
    evidence = {**verdict["evidence"], "majority_rate": column_majority(case.case.dataset()["y"]),
                "best": {**best, "val_accuracy": best.get("val_binary_accuracy")}}
    return learned_from_verdict({**verdict, "evidence": evidence}, regression=False)
