"""Look up Keras classes by name and check constructor arguments by signature.

Nothing here is a hand-copied list of Keras names: candidates come from the
Keras modules themselves, so a new Keras release brings its new layers along.
Only objects that would run user code or touch the file system are refused.
"""

import difflib
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from keras_bridge.errors import Loc, SpecError, SpecIssue

# Layers that run arbitrary code or read paths: never from a request.
REFUSED_LAYERS = frozenset(
    {"Lambda", "TFSMLayer", "InputLayer", "Input", "StringLookup", "IntegerLookup",
     "TextVectorization", "JaxLayer", "FlaxLayer", "TorchModuleWrapper", "Pipeline"}
)
# Base classes and wrappers that take a function or another object: unusable from JSON
# (the base classes construct fine and fail only once training calls them).
ABSTRACT = frozenset({
    "Layer", "Wrapper", "Initializer", "Regularizer", "Constraint", "Optimizer", "LossScaleOptimizer",
    "MultiOptimizer", "OptimizerMap", "Loss", "LossFunctionWrapper", "Metric", "MeanMetricWrapper",
    "Reduce", "Callback",
})
# Keras 2 argument names people still write, with their Keras 3 names.
RENAMED_ARGS = {"lr": "learning_rate", "alpha": "negative_slope", "decay": "weight_decay"}
def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return f" Did you mean '{lowered[name.lower()]}'?"
    if name in RENAMED_ARGS and RENAMED_ARGS[name] in pool:
        return f" Did you mean '{RENAMED_ARGS[name]}' (its Keras 3 name)?"
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def public_classes(module: ModuleType, base: type) -> dict[str, type]:
    found = {}
    for attr in dir(module):
        if attr.startswith("_"):
            continue
        obj = getattr(module, attr)
        if inspect.isclass(obj) and issubclass(obj, base):
            found[attr] = obj
    return found


def abstract_error(name: str, *, loc: Loc, what: str) -> SpecError:
    return SpecError([SpecIssue(loc, f"{what} '{name}' is a base class or a wrapper of a function or another object: "
                                     f"name a concrete {what}.")])


def resolve_class(
    name: str, classes: dict[str, type], *, loc: Loc, what: str, refused: frozenset[str] = frozenset()
) -> type:
    if name in refused:
        raise SpecError([SpecIssue(
            loc, f"{what} '{name}' is not allowed on the service: it runs code or reads or writes files.")])
    if name in ABSTRACT and name in classes:
        raise abstract_error(name, loc=loc, what=what)
    if name not in classes:
        hint = did_you_mean(name, (c for c in classes if c not in refused and c not in ABSTRACT))
        raise SpecError([SpecIssue(loc, f"unknown {what} '{name}'.{hint}")])
    return classes[name]


def accepted_arguments(cls: type) -> set[str]:
    """Explicit constructor arguments along the MRO while each level forwards ``**kwargs``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names |= {
            p.name for p in params.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()) or klass.__name__ in {"Layer", "Operation"}:
            break
    return names


def required_arguments(cls: type) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {
        p.name for p in params.values()
        if p.name != "self" and p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def check_arguments(cls: type, args: dict[str, Any], *, loc: Loc, what: str, reserved: Iterable[str] = ()) -> None:
    accepted = accepted_arguments(cls) - set(reserved)
    issues = []
    for arg in args:
        if arg not in accepted:
            hint = did_you_mean(arg, accepted)
            issues.append(SpecIssue((*loc, arg), f"{cls.__name__} has no argument '{arg}'.{hint}"))
    for arg in sorted(required_arguments(cls) - set(args) - set(reserved)):
        issues.append(SpecIssue((*loc, arg), f"{what} {cls.__name__} requires the argument '{arg}'."))
    if issues:
        raise SpecError(issues)
