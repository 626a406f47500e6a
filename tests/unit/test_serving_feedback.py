"""Prediction ids carry their label; feedback parsing accepts the usual label spellings."""

from __future__ import annotations

import pytest

from rollforward.serving.contract import AnomalyKind
from rollforward.serving.feedback import FeedbackItem, feedback_items, parse_feedback
from rollforward.serving.inputs import InputAnomaly
from rollforward.serving.prediction_ids import IssuedPrediction, PredictionIdCodec, RecentIds

LABELS = ("stay", "upgrade")
NOW = 1_750_000_000.7


def _issue(codec: PredictionIdCodec, label: str = "upgrade") -> str:
    return codec.issue(label, "challenger", "v1.2-gbm", NOW)


def test_ids_read_back_label_origin_and_time_in_another_process_with_the_same_key() -> None:
    issued = _issue(PredictionIdCodec("soom", LABELS))

    read = PredictionIdCodec("soom", LABELS).read(issued)
    assert read == IssuedPrediction("upgrade", "challenger", "v1.2-gbm", 1_750_000_000)
    assert PredictionIdCodec("other-model", LABELS).read(issued) is None


def test_tampering_with_the_origin_or_time_breaks_the_id() -> None:
    codec = PredictionIdCodec("soom", LABELS)
    nonce, label, origin, issued, mac = _issue(codec).split(".")
    champion = codec.issue("upgrade", "champion", "v1.2-gbm", NOW).split(".")[2]

    assert codec.read(".".join([nonce, label, champion, issued, mac])) is None
    assert codec.read(".".join([nonce, label, origin, "1", mac])) is None


@pytest.mark.parametrize(
    "forged",
    ["", "abc", "a.b.c", None, 12, "0123456789abcdef.upgrade.Y2hhbXBpb24KdjE.1.000000000000"],
)
def test_ids_not_issued_by_the_codec_are_refused(forged: object) -> None:
    assert PredictionIdCodec("soom", LABELS).read(forged) is None


def test_tampering_with_the_label_breaks_the_id() -> None:
    issued = _issue(PredictionIdCodec("soom", LABELS))

    assert PredictionIdCodec("soom", LABELS).read(issued.replace("upgrade", "stay")) is None


def test_recent_ids_spot_duplicates_and_forget_the_oldest() -> None:
    recent = RecentIds(capacity=2)

    assert recent.add("a") and recent.add("b")
    assert not recent.add("a")
    assert recent.add("c")  # forgets "b", the least recently seen
    assert recent.add("b")


@pytest.mark.parametrize(
    ("label", "expected"),
    [("upgrade", "upgrade"), (" Stay ", "stay"), (True, "upgrade"), (0, "stay"), (1, "upgrade")],
)
def test_label_spellings(label: object, expected: str) -> None:
    parsed = parse_feedback({"predictionId": "x", "label": label}, LABELS, "upgrade")

    assert parsed == FeedbackItem("x", expected)


@pytest.mark.parametrize(
    ("item", "field", "kind"),
    [
        ("just a string", "feedback", AnomalyKind.WRONG_TYPE),
        ({"label": "stay"}, "predictionId", AnomalyKind.MISSING),
        ({"predictionId": 5, "label": "stay"}, "predictionId", AnomalyKind.MISSING),
        ({"predictionId": "x", "label": "maybe"}, "label", AnomalyKind.UNKNOWN_CATEGORY),
        ({"predictionId": "x", "label": 2}, "label", AnomalyKind.UNKNOWN_CATEGORY),
        ({"prediction_id": "x"}, "label", AnomalyKind.UNKNOWN_CATEGORY),
    ],
)
def test_unusable_feedback_names_its_problem(item: object, field: str, kind: AnomalyKind) -> None:
    parsed = parse_feedback(item, LABELS, "upgrade")

    assert isinstance(parsed, InputAnomaly)
    assert (parsed.field, parsed.kind) == (field, kind)


def test_feedback_payload_shapes() -> None:
    one = {"predictionId": "x", "label": "stay"}

    assert feedback_items(one) == [one]
    assert feedback_items([one, one]) == [one, one]
    assert feedback_items({"feedback": [one]}) == [one]
    assert feedback_items("nope") is None
