"""One registry per finding code: the table in models/findings.py and the bindings in diagnosis/registry.py,
and every list of codes or verdicts elsewhere agrees with them."""

import re
import typing
from pathlib import Path

from api.app import create_app
from diagnosis import verdict
from diagnosis.registry import BINDINGS, RESOLVERS, RULES, info
from models.findings import CODES, LEARNED, VERDICT_BY_CODE, VERDICT_NAMES, VERDICTS, Code
from models.settings import Settings
from models.spec import DiagnosisSpec, TrainingCode
from worker import auto_retry

TRAINING = [c.name for c in CODES if c.phase == "training"]
README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_training_code_has_exactly_one_rule_and_fix_builder():
    assert [code.value for code in RULES] == TRAINING  # one rule each, in the table's order
    assert set(BINDINGS) == set(RULES)
    assert set(RESOLVERS) <= set(RULES)
    assert all(c.phase != "training" for c in CODES if Code(c.name) not in BINDINGS)


def test_every_code_is_documented_and_well_formed():
    names = [c.name for c in CODES]
    assert len(set(names)) == len(names)
    for code in Code:
        row = info(code)
        assert row.phase in ("preflight", "training", "final") and row.severity in ("error", "warning", "info")
        assert len(row.doc) > 30 and row.doc.endswith((".", ")")), code
        assert row.verdict is None or row.verdict in VERDICT_NAMES, code


def test_the_code_lists_agree_everywhere():
    assert [code.value for code in Code] == [c.name for c in CODES]
    assert list(typing.get_args(TrainingCode)) == TRAINING
    schema = DiagnosisSpec.model_json_schema()["properties"]["stop_on"]["items"]["enum"]
    assert schema == TRAINING
    openapi = create_app(Settings()).openapi()["components"]["schemas"]["DiagnosisSpec"]["properties"]["stop_on"]
    assert openapi["items"]["enum"] == TRAINING


def test_the_verdict_groups_agree_everywhere():
    assert verdict.BY_CODE == VERDICT_BY_CODE
    assert [code.value for code, _ in VERDICT_BY_CODE] == [
        "diverging", "saturated_outputs", "stuck_at_chance", "vanishing_gradients", "validation_split_skew",
        "overfitting", "plateau"]  # most decisive first: a diverged run is not also "overfitting"
    assert set(verdict.MEANING) == set(VERDICT_NAMES)
    assert auto_retry.NOT_LEARNING | LEARNED == set(VERDICT_NAMES) and not auto_retry.NOT_LEARNING & LEARNED
    assert LEARNED == {"learning", "converged", "overfitting"}
    assert len(VERDICTS) == len(set(VERDICT_NAMES))


def test_the_readme_lists_every_code_and_verdict():
    text = README.read_text()
    section = text[text.index("## Diagnosis"):]
    listed = set(re.findall(r"`([a-z_]+)`", section))
    assert {c.name for c in CODES} <= listed
    assert set(VERDICT_NAMES) <= listed
