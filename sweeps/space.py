"""The search space: its Optuna distributions, and a trial's values written into the base spec.

A path names a place in the job spec's JSON: ``compile.optimizer.learning_rate``,
``fit.batch_size``, ``model.layers.1.units`` (a list index), ``data.scale_x``. A Keras object
given by name (``"optimizer": "adam"``) becomes ``{"type": "adam", ...}`` when a path sets one
of its arguments. Nothing here checks the result: the spec's own validation does, and the API
maps its errors back to the path (``api/services/sweeps.py``).
"""

import copy
import itertools
import math
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from models.sweep_spec import Choice, Distribution, IntRange, LogUniform, SweepRequest, Uniform

# Paths a sweep may not vary: they are the sweep's own (name, diagnosis.stop_on from pruning.stop_on), or
# would send trials to another dataset or another receiver than the sweep's.
RESERVED = ("name", "dataset", "webhook", "diagnosis", "force")
# A grid up to this size is checked point by point before the sweep is accepted (beyond, the values one by one).
CHECK_WHOLE_GRID_UP_TO = 16
# Each checked point is a spec check in a validator process (a tenant's checks run one at a time): a space with
# more values than this to check is refused rather than hold the request for minutes.
MAX_CHECKED_POINTS = 64


class SpacePathError(ValueError):
    """A path that does not lead anywhere in the spec."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message = path, message


def distribution(dist: Distribution) -> BaseDistribution:
    """The Optuna distribution of one space entry."""
    if isinstance(dist, Choice):
        return CategoricalDistribution(dist.choice)
    if isinstance(dist, Uniform):
        return FloatDistribution(*dist.uniform)
    if isinstance(dist, LogUniform):
        return FloatDistribution(*dist.loguniform, log=True)
    assert isinstance(dist, IntRange)
    low, high = dist.int
    high = low + (high - low) // dist.step * dist.step  # Optuna wants high on the step grid
    return IntDistribution(low, high, log=dist.log, step=dist.step)


def distributions(request: SweepRequest) -> dict[str, BaseDistribution]:
    return {path: distribution(dist) for path, dist in sorted(request.space.items())}


def grid(request: SweepRequest) -> dict[str, list[Any]] | None:
    """The grid (path -> values) when every entry is a choice; else None."""
    if not all(isinstance(dist, Choice) for dist in request.space.values()):
        return None
    return {path: dist.values() for path, dist in sorted(request.space.items())}


def grid_size(values: dict[str, list[Any]]) -> int:
    return math.prod(len(v) for v in values.values())


def planned_trials(request: SweepRequest) -> int:
    """``max_trials``, or a grid's size when that is smaller (a grid runs each point once)."""
    values = grid(request) if request.sampler == "grid" else None
    return request.max_trials if values is None else min(request.max_trials, grid_size(values))


def points_to_check(request: SweepRequest) -> list[dict[str, Any]]:
    """The parameter sets whose specs are checked before a sweep is accepted: every value of every
    choice and both ends of every range, each on its own on the base spec; and every point of a
    small grid (where combinations are all that will run)."""
    values = grid(request)
    if values is not None and grid_size(values) <= CHECK_WHOLE_GRID_UP_TO:
        return [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]
    return [{path: value} for path, dist in sorted(request.space.items()) for value in dist.values()]


def reserved_path(path: str) -> bool:
    return path.split(".")[0] in RESERVED


def _step(container: Any, key: str, path: str) -> tuple[Any, str | int]:
    """The container and key/index that ``key`` names inside ``container``."""
    if isinstance(container, list):
        if not key.isdigit() or int(key) >= len(container):
            raise SpacePathError(path, f"'{key}' is not an index of a list of {len(container)}")
        return container, int(key)
    if isinstance(container, dict):
        return container, key
    raise SpacePathError(path, f"'{key}' is inside a value that is neither an object nor a list")


def set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    """Write ``value`` at ``path`` inside ``spec`` (in place)."""
    parts = path.split(".")
    node: Any = spec
    for part in parts[:-1]:
        holder, key = _step(node, part, path)
        child = holder[key] if isinstance(holder, list) else holder.get(key)
        if child is None:
            child = {}  # an omitted option group or Keras argument object
        elif isinstance(child, str):
            child = {"type": child}  # "adam" -> {"type": "adam", "learning_rate": ...}
        holder[key] = child
        node = child
    holder, key = _step(node, parts[-1], path)
    holder[key] = value


def trial_spec(base: dict[str, Any], params: dict[str, Any], *, stop_on: list[str], name: str | None
               ) -> dict[str, Any]:
    """The job spec of one trial: the base spec (JSON) with ``params`` written at their paths, the
    sweep's ``stop_on`` as its ``diagnosis.stop_on``, and its name."""
    spec = copy.deepcopy(base)
    for path, value in sorted(params.items()):
        set_path(spec, path, value)
    spec.setdefault("diagnosis", {})["stop_on"] = list(stop_on)
    spec["name"] = name
    return spec
