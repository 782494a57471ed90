"""The Optuna study of a sweep: named by the sweep's id, its sampler and pruner made from the request.

Samplers and pruners hold no state of their own that matters here: what they decide
from is the study in the storage, which every process shares.
"""

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.pruners import BasePruner, MedianPruner, NopPruner, SuccessiveHalvingPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.storages import RDBStorage

from models.sweep_spec import Pruning, SweepRequest
from sweeps import space


def create(storage: RDBStorage, sweep_id: str, request: SweepRequest) -> None:
    optuna.create_study(study_name=sweep_id, storage=storage, direction=request.objective.direction,
                        load_if_exists=True)


def load(storage: RDBStorage, sweep_id: str, *, sampler: BaseSampler | None = None,
         pruner: BasePruner | None = None) -> optuna.Study:
    # A plain random sampler where none is asked for: loading runs no sampling of its own.
    return optuna.load_study(study_name=sweep_id, storage=storage, sampler=sampler or RandomSampler(),
                             pruner=pruner or NopPruner())


def sampler(request: SweepRequest, asked: int) -> BaseSampler:
    """The request's sampler for the ask after ``asked`` trials.

    A fresh sampler is made for each ask (in whichever process advances the sweep), so its seed says
    what it draws: random and TPE get the sweep's seed plus ``asked`` (with the seed of the previous
    ask they would draw its start-up point again). A grid keeps the sweep's seed: it shuffles its
    points with it and gives trial n the n-th, so every ask must see the same order (another seed
    would run one point twice and skip another).
    """
    seed = request.spec.seed or 0
    if request.sampler == "grid":
        values = space.grid(request)
        assert values is not None, "a grid sweep's space holds choices only (checked when it was accepted)"
        return GridSampler(values, seed=seed)
    if request.sampler == "random":
        return RandomSampler(seed=seed + asked)
    return TPESampler(seed=seed + asked)


def pruner(pruning: Pruning) -> BasePruner:
    if pruning.pruner == "median":
        return MedianPruner(n_startup_trials=pruning.startup_trials, n_warmup_steps=pruning.warmup_epochs)
    if pruning.pruner == "successive_halving":
        return SuccessiveHalvingPruner()
    return NopPruner()


def suggest(trial: optuna.Trial, path: str, dist: BaseDistribution) -> Any:
    """The trial's value for ``path``: drawn by the sampler, or the one already stored (a trial asked
    before a crash keeps the values it was given)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(path, dist.choices)  # type: ignore[arg-type]
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(path, dist.low, dist.high, log=dist.log, step=dist.step)
    assert isinstance(dist, IntDistribution)
    return trial.suggest_int(path, dist.low, dist.high, log=dist.log, step=dist.step)


def params_of(trial: optuna.Trial, request: SweepRequest) -> dict[str, Any]:
    return {path: suggest(trial, path, dist) for path, dist in space.distributions(request).items()}
