"""rollforward.serving.inputs: any JSON object becomes a clean record plus counted oddities."""

from __future__ import annotations

from typing import Any

import pytest

from rollforward.serving.contract import AnomalyKind
from rollforward.serving.inputs import (
    EXTRA_FIELD_LABEL,
    BooleanField,
    CategoricalField,
    CategorySetField,
    NumericField,
    RecordSchema,
    sanitize,
)

SCHEMA = RecordSchema(
    fields=(
        NumericField("meetings", 0, 1000),
        BooleanField("card_on_file"),
        CategoricalField("country", ("US", "GB")),
        CategorySetField("event_types", ("meeting", "webinar")),
    ),
    passthrough=frozenset({"user_id"}),
)
CLEAN = {"meetings": 3, "card_on_file": True, "country": "US", "event_types": ["meeting"]}


def kinds(record: dict[str, Any]) -> set[tuple[str, AnomalyKind]]:
    return {(a.field, a.kind) for a in sanitize(record, SCHEMA).anomalies}


def test_clean_record_has_no_anomalies() -> None:
    result = sanitize({**CLEAN, "user_id": "u1"}, SCHEMA)

    assert result.anomalies == ()
    assert result.values == {
        "meetings": 3.0,
        "card_on_file": 1.0,
        "country": "US",
        "event_types": ["meeting"],
    }


@pytest.mark.parametrize(
    ("change", "field", "kind", "value"),
    [
        ({"meetings": "12"}, "meetings", AnomalyKind.COERCED, 12.0),
        ({"meetings": "twelve"}, "meetings", AnomalyKind.WRONG_TYPE, None),
        ({"meetings": "1_000"}, "meetings", AnomalyKind.WRONG_TYPE, None),
        ({"meetings": True}, "meetings", AnomalyKind.WRONG_TYPE, None),
        ({"meetings": [1]}, "meetings", AnomalyKind.WRONG_TYPE, None),
        ({"meetings": -5}, "meetings", AnomalyKind.OUT_OF_RANGE, 0.0),
        ({"meetings": 10**400}, "meetings", AnomalyKind.OUT_OF_RANGE, None),
        ({"meetings": "inf"}, "meetings", (AnomalyKind.COERCED, AnomalyKind.OUT_OF_RANGE), None),
        ({"meetings": None}, "meetings", AnomalyKind.NULL, None),
        ({"card_on_file": "yes"}, "card_on_file", AnomalyKind.COERCED, 1.0),
        ({"card_on_file": 0}, "card_on_file", AnomalyKind.COERCED, 0.0),
        ({"card_on_file": "perhaps"}, "card_on_file", AnomalyKind.WRONG_TYPE, None),
        ({"country": " us "}, "country", None, "US"),
        ({"country": "FR"}, "country", AnomalyKind.UNKNOWN_CATEGORY, "FR"),
        ({"country": 44}, "country", (AnomalyKind.COERCED, AnomalyKind.UNKNOWN_CATEGORY), "44"),
        ({"country": {"iso": "US"}}, "country", AnomalyKind.WRONG_TYPE, None),
        ({"event_types": "webinar"}, "event_types", AnomalyKind.COERCED, ["webinar"]),
        ({"event_types": ["festival"]}, "event_types", AnomalyKind.UNKNOWN_CATEGORY, ["festival"]),
        ({"event_types": [1, "meeting"]}, "event_types", AnomalyKind.WRONG_TYPE, ["meeting"]),
        ({"event_types": None}, "event_types", AnomalyKind.NULL, []),
        ({"event_types": 3}, "event_types", AnomalyKind.WRONG_TYPE, []),
    ],
)
def test_each_oddity_is_repaired_and_named(
    change: dict[str, Any],
    field: str,
    kind: AnomalyKind | tuple[AnomalyKind, ...] | None,
    value: Any,
) -> None:
    result = sanitize({**CLEAN, **change}, SCHEMA)
    expected = (kind,) if isinstance(kind, AnomalyKind) else kind or ()

    assert result.values[field] == value
    assert kinds({**CLEAN, **change}) == {(field, k) for k in expected}


def test_missing_fields_are_imputed_and_extra_fields_share_one_label() -> None:
    result = sanitize({"favourite": 1, "other": 2}, SCHEMA)

    assert result.values == {
        "meetings": None,
        "card_on_file": None,
        "country": None,
        "event_types": [],
    }
    assert [(a.field, a.kind) for a in result.anomalies].count(
        (EXTRA_FIELD_LABEL, AnomalyKind.EXTRA)
    ) == 2
    assert {a.detail for a in result.anomalies if a.kind is AnomalyKind.EXTRA} == {
        "favourite",
        "other",
    }
    assert {a.field for a in result.anomalies if a.kind is AnomalyKind.MISSING} == {
        "meetings",
        "card_on_file",
        "country",
        "event_types",
    }


def test_details_are_truncated() -> None:
    [anomaly] = sanitize({**CLEAN, "country": "x" * 500}, SCHEMA).anomalies

    assert len(anomaly.detail) <= 64
