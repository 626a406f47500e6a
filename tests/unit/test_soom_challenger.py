"""The README's A/B challenger `upsell:v1-gbm`: the same pipeline with gradient-boosted trees,
as robust to odd records as the champion, and a bento named by the tag the README uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from upsell.features import build_pipeline, records_frame
from upsell.generator import generate
from upsell.packaging import PACKAGE_DIR, _bentofile
from upsell.retrain import RetrainSettings
from upsell.training import TrainingOptions, train


def test_the_algorithm_picks_the_classifier() -> None:
    assert isinstance(build_pipeline(0, "gbm")[-1], HistGradientBoostingClassifier)
    assert isinstance(build_pipeline(0)[-1], LogisticRegression)


def test_the_gbm_challenger_learns_and_scores_odd_records() -> None:
    model = train(generate("baseline", 3000, seed=1), TrainingOptions(seed=1, algorithm="gbm"))
    assert model.metrics.holdout.auc is not None and model.metrics.holdout.auc > 0.75
    odd = records_frame([{}, {"region": "Atlantis", "meetings": "many"}])
    assert model.pipeline.predict_proba(odd).shape == (2, 2)


def test_a_named_bento_keeps_the_bentofile_but_its_name(tmp_path: Path) -> None:
    (tmp_path / "upsell").mkdir()
    original = PACKAGE_DIR / "bentofile.yaml"
    (tmp_path / "upsell" / "bentofile.yaml").write_text(original.read_text())

    renamed = yaml.safe_load(_bentofile(tmp_path, "upsell").read_text())

    assert renamed == {**yaml.safe_load(original.read_text()), "name": "upsell"}
    assert _bentofile(tmp_path, "") == tmp_path / "upsell" / "bentofile.yaml"


@pytest.mark.parametrize("tag", ["upsell", "Upsell:v1", "upsell:v1 gbm"])
def test_a_bento_tag_must_be_name_and_version(tag: str) -> None:
    with pytest.raises(ValueError, match="bento_tag"):
        RetrainSettings(bento_tag=tag)
