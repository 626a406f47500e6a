"""The pydantic API types accept the README example and reject every invalid case,
naming the offending field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devenv.api_cases import REPO, InvalidCase, example_manifest, invalid_cases
from rollforward.api import (
    BaselineKind,
    DriftStatistic,
    RouterKind,
    parse_duration,
    parse_model_deployment,
    validation_messages,
)

CASES = invalid_cases()


def test_there_are_at_least_twenty_invalid_cases() -> None:
    assert len(CASES) >= 20
    assert len({case.name for case in CASES}) == len(CASES)


def test_readme_shows_the_committed_example_verbatim() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / "examples" / "modeldeployment.yaml").read_text()
    assert f"```yaml\n{example}```" in readme, "README.md must show examples/modeldeployment.yaml"


def test_example_validates_with_defaults() -> None:
    deployment = parse_model_deployment(example_manifest())
    spec = deployment.spec
    assert spec.model == "upsell"
    assert spec.champion().name == "champion"
    assert spec.traffic.router is RouterKind.NGINX
    assert spec.drift.statistic is DriftStatistic.CHI_SQUARE
    assert spec.drift.baseline.kind is BaselineKind.TRAINING
    assert spec.retraining is not None
    assert spec.retraining.acceptance.min_auc == 0.75
    assert [step.weight for step in spec.rollout.steps] == [10, 50]
    assert spec.variants[0].resources is not None
    assert spec.variants[0].resources.requests == {"cpu": "250m", "memory": "512Mi"}


def test_minimal_spec_gets_every_default() -> None:
    minimal = {
        "apiVersion": "rollforward.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {
            "model": "m",
            "variants": [{"name": "a", "role": "champion", "bento": "m:1", "weight": 100}],
        },
    }
    spec = parse_model_deployment(minimal).spec
    assert spec.drift.min_samples == 200
    assert spec.drift.consecutive_breaches == 2
    assert spec.drift.window == spec.drift.interval == "5m"
    assert spec.retraining is None
    assert spec.rollout.on_inconclusive.value == "hold"


def test_integer_quantities_are_accepted_as_kubernetes_does() -> None:
    manifest = example_manifest()
    manifest["spec"]["variants"][0]["resources"] = {"requests": {"cpu": 1}}
    spec = parse_model_deployment(manifest).spec
    assert spec.variants[0].resources is not None
    assert spec.variants[0].resources.requests == {"cpu": "1"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_invalid_case_is_rejected_naming_the_field(case: InvalidCase) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_model_deployment(case.manifest)
    messages = validation_messages(caught.value)
    assert any(case.field in message for message in messages), messages


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("250ms", 0.25), ("1w", 604800)],
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "m5", "1.5h", "5 m", "-1s"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
