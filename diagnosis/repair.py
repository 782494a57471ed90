"""Combine the preflight fixes into one spec change.

Suggestions are computed against the spec they were found in, and two of them
may rewrite the same list (``model.layers``). So fixes are applied one at a
time, re-running the checks on the edited spec after each, until no finding
with a fix is left: the result is one merge patch that applies them all.
"""

import copy
from collections.abc import Callable
from typing import Any

from diagnosis.patches import diff, merge_patch
from models.findings import Finding

Check = Callable[[dict[str, Any]], list[Finding]]


def repair(spec: dict[str, Any], check: Check, max_steps: int = 10) -> tuple[dict[str, Any], list[str]]:
    """Returns the merge patch from ``spec`` to the repaired spec and what was applied.

    Args:
        check: the preflight of a candidate spec; raises ValueError when the
            candidate does not build (that fix is then skipped).
    """
    current = copy.deepcopy(spec)
    applied: list[str] = []
    tried: set[str] = set()
    for _ in range(max_steps):
        try:
            findings = check(current)
        except ValueError:
            break
        pending = [f for f in findings if f.suggestions and f.severity != "info" and f.code.value not in tried]
        if not pending:
            break
        finding = pending[0]
        tried.add(finding.code.value)
        candidate = merge_patch(current, finding.suggestions[0].patch)
        try:
            check(candidate)
        except ValueError:
            continue
        current = candidate
        applied.append(f"{finding.code.value}: {finding.suggestions[0].summary}")
    return diff(spec, current), applied
