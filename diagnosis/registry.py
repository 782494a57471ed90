"""Every finding code's behaviour, bound to its row of ``models.findings.CODES``.

``CODES`` holds what is data (phase, usual severity, verdict, documentation);
here each training code gets its rule (diagnosis/rules/<family>.py), the resolver that takes it back when a
later epoch contradicts it, and the builder of its fixes. The monitor, the
worker and the tests read ``RULES``, ``RESOLVERS`` and ``training_suggestions``
from here, so a new code is one row there, one binding here, and its test
(tests/diagnosis/test_registry.py checks that every training code is bound once).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from diagnosis import suggest
from diagnosis.curves import Epoch, Task
from diagnosis.rules import chance, diverging, overfitting, plateau, saturated, unstable, vanishing
from diagnosis.rules.common import RuleResult
from diagnosis.suggest import Builder, Context
from models.findings import INFO, Code, CodeInfo, Suggestion

Rule = Callable[[list[Epoch], Task], RuleResult | None]
Resolver = Callable[[list[Epoch], Task], bool]


@dataclass(frozen=True)
class Binding:
    rule: Rule
    fixes: Builder = suggest.preflight_first  # a new code's fixes: at least what preflight found
    resolver: Resolver | None = None  # only for findings a slow starter can contradict


BINDINGS: dict[Code, Binding] = {
    Code.diverging: Binding(diverging.diverging, suggest.diverging),
    Code.saturated_outputs: Binding(saturated.saturated_outputs, suggest.saturated_outputs,
                                    saturated.saturation_resolved),
    Code.stuck_at_chance: Binding(chance.stuck_at_chance, suggest.stuck_at_chance, chance.stuck_resolved),
    Code.vanishing_gradients: Binding(vanishing.vanishing_gradients, suggest.vanishing_gradients),
    Code.overfitting: Binding(overfitting.overfitting, suggest.overfitting),
    Code.plateau: Binding(plateau.plateau, suggest.plateau, plateau.plateau_resolved),
    Code.unstable: Binding(unstable.unstable, suggest.unstable),
}
# In the order of CODES (the enum's order): the monitor tries the rules, and reports what they find, in this order.
RULES: dict[Code, Rule] = {code: BINDINGS[code].rule for code in Code if code in BINDINGS}
RESOLVERS: dict[Code, Resolver] = {
    code: resolver for code in RULES if (resolver := BINDINGS[code].resolver) is not None}


def info(code: Code) -> CodeInfo:
    """The data half of a code (phase, usual severity, verdict, documentation)."""
    return INFO[code.value]


def training_suggestions(code: Code, spec: dict[str, Any], preflight_fix: tuple[dict[str, Any], list[str]] | None,
                         history: Sequence[Epoch] = (), task: Task | None = None) -> list[Suggestion]:
    """The fixes of a training finding, best first, chosen from the run's evidence (``history``, ``task``).

    Args:
        preflight_fix: the combined fix of the preflight findings (``diagnosis.repair``); offered first
            when it changes training.
    """
    found = BINDINGS[code].fixes(Context(spec, preflight_fix, history, task))
    return [s for s in found if s.patch]
