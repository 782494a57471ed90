"""JSON merge patches (RFC 7386): apply one, or compute the one between two specs.

Suggestions are written as edits of a spec (a function spec → spec); the patch
the client sees is the difference, so several fixes compose into one patch.
"""

import copy
from collections.abc import Callable
from typing import Any

Spec = dict[str, Any]
Fix = Callable[[Spec], None]


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def diff(before: Any, after: Any) -> Any:
    """The merge patch that turns ``before`` into ``after`` (lists are replaced whole)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return copy.deepcopy(after)
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = copy.deepcopy(value)
        elif before[key] != value:
            patch[key] = diff(before[key], value)
    return patch


def patch_from(spec: Spec, *fixes: Fix) -> Spec:
    edited = copy.deepcopy(spec)
    for fix in fixes:
        fix(edited)
    return diff(spec, edited)
