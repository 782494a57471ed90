"""What one spec may cost: the budgets, and the size check of free-form argument values.

Argument values are checked before anything is constructed from them: TensorFlow
aborts the whole process (a CHECK failure, not an exception) on a tensor of more
than 254 dimensions, so a 300-deep ``Constant(value=[[[...]]])`` must never reach it.
"""

from dataclasses import dataclass
from typing import Any

from keras_bridge.errors import Loc, SpecError, SpecIssue
from models.settings import Settings


@dataclass(frozen=True)
class Budgets:
    max_params: int = 50_000_000
    max_layers: int = 200
    worker_memory_bytes: int = 4 * 1024**3
    max_depth: int = 8
    max_scalars: int = 10_000
    max_string: int = 1_000

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Budgets":
        s = settings or Settings()
        return cls(max_params=s.max_model_params, max_layers=s.max_layers,
                   worker_memory_bytes=s.worker_memory_bytes, max_depth=s.max_argument_depth,
                   max_scalars=s.max_argument_scalars, max_string=s.max_argument_string)


def measure(value: Any) -> tuple[int, int, int]:
    """(depth, scalars, longest string) of a JSON value. Iterative: a hostile value may be
    nested deeper than Python's recursion limit."""
    depth = scalars = longest = 0
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            depth = max(depth, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
        else:
            scalars += 1
            if isinstance(item, str):
                longest = max(longest, len(item))
    return depth, scalars, longest


def check_value(value: Any, loc: Loc, budgets: Budgets) -> None:
    """Refuse a free-form value deeper, larger or with longer strings than the budgets allow."""
    depth, scalars, longest = measure(value)
    if depth > budgets.max_depth:
        message = (f"values may be nested at most {budgets.max_depth} levels deep (lists and objects). "
                   f"Received: {depth} levels.")
    elif scalars > budgets.max_scalars:
        message = f"a value may hold at most {budgets.max_scalars} numbers or strings. Received: {scalars}."
    elif longest > budgets.max_string:
        message = f"strings may hold at most {budgets.max_string} characters. Received: a string of {longest}."
    else:
        return
    raise SpecError([SpecIssue(loc, message)])


def check_arguments_size(args: dict[str, Any], loc: Loc, budgets: Budgets) -> None:
    issues = []
    for name, value in args.items():
        try:
            check_value(value, (*loc, name), budgets)
        except SpecError as exc:
            issues.extend(exc.issues)
    if issues:
        raise SpecError(issues)
