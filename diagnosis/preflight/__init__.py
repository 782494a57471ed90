"""Preflight: the classic mistakes, found from the spec, the built model and the data."""

from typing import Any

from diagnosis.facts import DataFacts, SpecView
from diagnosis.preflight import architecture, data, optimization, targets
from models.findings import Finding


def run_preflight(spec: dict[str, Any], summary: dict[str, Any], facts: DataFacts | None) -> list[Finding]:
    """All preflight findings, errors first.

    Args:
        spec: the JSON spec (defaults filled in).
        summary: ``keras_bridge.summary.model_summary`` of the built model.
        facts: what the data looks like; None skips the data-dependent checks.
    """
    view = SpecView(spec, summary)
    findings = [
        *architecture.saturating_activation(view),
        *architecture.oversized_window(view),
        *architecture.masking_misplaced(view),
        *optimization.tiny_batch(view),
        *optimization.learning_rate_extreme(view),
    ]
    if facts is not None:
        findings = [
            *targets.output_shape(view, facts),
            *targets.loss_target(view, facts),
            *targets.metric_meaning(view, facts),
            *targets.activation_range(view, facts),
            *data.unscaled_inputs(view, facts),
            *data.validation_split_skew(view, facts),
            *data.class_imbalance(view, facts),
            *findings,
        ]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity])
