"""How much an epoch's mean loss moves by chance alone, so that rules compare epochs against it.

An epoch's loss is a mean over samples: over ``n_val`` validation samples, or over the
``n_train`` training samples seen during the epoch. Its standard error is the per-sample
standard deviation over the square root of the count. The monitor measures the per-sample
spread (diagnosis/curves.py ``Epoch``): for validation from a forward pass over a fixed probe,
for training from the spread of the per-batch losses (a batch mean's spread times the square
root of the batch size estimates the per-sample one).

The band is ``Z`` standard errors either side. The validation set is fixed, so the samples do
not change between epochs, but the model does: each epoch re-shuffles which borderline samples
it gets right, and the mean moves by about a standard error with it. Two standard errors cover
such moves ~95 % of the time for one comparison; a rule that calls a finding a warning asks
for ``CLEAR`` bands (~3 standard errors), which a run of a few dozen epochs, checked after every
epoch, rarely reaches by chance.
"""

import math
from dataclasses import dataclass
from statistics import median

import numpy as np

from diagnosis.curves import Epoch

Z = 2.0
CLEAR = 1.5  # effect / band at which a finding is a warning; between 1 and CLEAR it is info
FALLBACK = 0.05  # relative band (of the loss level) where no noise was measured (an old saved state)
MAX_CONFIDENCE = 99.0
TREND_MIN = 8  # values for a trend: six degrees of freedom for their scatter around the line


@dataclass(frozen=True)
class Band:
    """± ``width`` around an epoch mean loss; ``n``: the samples it is a mean over (None: not measured)."""

    width: float
    n: int | None

    def relative(self, level: float) -> float:
        return self.width / max(abs(level), 1e-12)

    def describe(self, key: str, effect: float, level: float) -> str:
        """E.g. "val_loss moved 16 %, noise band ±21 % (n=360)"."""
        count = f" (n={self.n})" if self.n else " (not measured: 5 % assumed)"
        return f"{key} moved {abs(effect) / max(abs(level), 1e-12):.0%}, noise band ±{self.relative(level):.0%}{count}"


def standard_error(epoch: Epoch, key: str) -> float | None:
    std, n = (epoch.val_loss_std, epoch.n_val) if key.startswith("val_") else (epoch.loss_std, epoch.n_train)
    if std is None or not n or not math.isfinite(std):
        return None
    return std / math.sqrt(n)


def noise_band(epochs: list[Epoch], key: str) -> Band:
    """The band of ``key`` ("loss" or "val_loss") over a window of epochs.

    The median standard error of the window: an epoch that blew up has a huge spread of its
    own, which must not hide the blow-up it is part of.
    """
    errors = [se for se in (standard_error(e, key) for e in epochs) if se is not None]
    counts = [e.n_val if key.startswith("val_") else e.n_train for e in epochs]
    if errors:
        return Band(Z * median(errors), next((n for n in reversed(counts) if n), None))
    levels = [v for v in (e.get(key) for e in epochs) if v is not None]
    return Band(FALLBACK * (median(levels) if levels else 0.0), None)


def gap_band(epochs: list[Epoch]) -> Band:
    """The band of val_loss - loss: the two means are independent samples."""
    val, train = noise_band(epochs, "val_loss"), noise_band(epochs, "loss")
    return Band(math.hypot(val.width, train.width), val.n)


def step_band(band: Band) -> Band:
    """The band of a step between two epochs: the difference of two noisy means spreads sqrt(2) times more."""
    return Band(band.width * math.sqrt(2), band.n)


def confidence(effect: float, band: Band) -> float:
    """The effect in noise bands, capped (a band of zero: constant outputs, no spread)."""
    if band.width <= 0:
        return MAX_CONFIDENCE if effect > 0 else 0.0
    return round(float(min(MAX_CONFIDENCE, effect / band.width)), 2)


def trend(values: list[float]) -> float:
    """The least-squares slope through the values in standard errors of itself (a t statistic, from their
    own scatter around the line), in bands: t / Z. 0 for fewer than ``TREND_MIN`` values.

    The epochs of a run are measured on the same samples, so they differ far less than two independent
    samples would: a steady drift that each step hides in the band is still a drift, and its scatter
    around the line says how steady.
    """
    n = len(values)
    if n < TREND_MIN:
        return 0.0
    x, y = np.arange(n, dtype=np.float64), np.asarray(values, dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    spread = math.sqrt(float(residuals @ residuals) / (n - 2) / float(((x - x.mean()) ** 2).sum()))
    if spread == 0:
        return MAX_CONFIDENCE if slope > 0 else -MAX_CONFIDENCE if slope < 0 else 0.0
    return round(float(max(-MAX_CONFIDENCE, min(MAX_CONFIDENCE, slope / spread / Z))), 2)


def graded(score: float) -> str:
    return "warning" if score >= CLEAR else "info"


def per_sample_std(batch_losses: list[float], batch_size: int) -> float | None:
    """The per-sample spread of the training loss, from the per-batch losses of one epoch.

    Successive differences, not deviations from the mean: within an epoch the loss also
    falls as the model learns, and that trend is not noise (the spread of differences
    of independent draws is sqrt(2) times theirs).
    """
    losses = np.array([b for b in batch_losses if math.isfinite(b)], dtype=np.float64)
    if len(losses) < 3:
        return None
    batch_std = float(np.sqrt(np.mean(np.diff(losses) ** 2) / 2))
    return batch_std * math.sqrt(batch_size)


def batch_variation(epoch: Epoch) -> float | None:
    """Coefficient of variation of the per-batch losses within the epoch.

    A value that is the mean of k batches' losses (``steps_per_execution``) has 1/k their
    variance (batches of different samples are independent draws): its spread is scaled by sqrt(k).
    """
    losses = np.array([b for b in epoch.batch_losses if math.isfinite(b)])
    if len(losses) < 3 or losses.mean() == 0:
        return None
    return float(losses.std() * math.sqrt(epoch.batches_per_loss) / abs(losses.mean()))
