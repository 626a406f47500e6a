"""Liberal input handling: turn any JSON object into a clean record plus a list of oddities.

Pure functions, no I/O. A bento declares its fields once (`RecordSchema`); `sanitize`
never raises on a JSON object, so odd input degrades into imputed values and counted
anomalies instead of a failed request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollforward.serving.contract import AnomalyKind

# Extra fields share one `field` label so that arbitrary client keys cannot create
# unbounded Prometheus series; the log line keeps the real name.
EXTRA_FIELD_LABEL = "_extra"
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
_FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})
_DETAIL_LIMIT = 64


@dataclass(frozen=True)
class InputAnomaly:
    """One oddity in one field of one record."""

    field: str
    kind: AnomalyKind
    detail: str = ""


@dataclass(frozen=True)
class NumericField:
    name: str
    minimum: float = -math.inf
    maximum: float = math.inf


@dataclass(frozen=True)
class CategoricalField:
    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class BooleanField:
    name: str


@dataclass(frozen=True)
class CategorySetField:
    """A list of categories (e.g. the event types a user has hosted)."""

    name: str
    categories: tuple[str, ...]


FieldSpec = NumericField | CategoricalField | BooleanField | CategorySetField


@dataclass(frozen=True)
class RecordSchema:
    """The fields a model reads, plus known fields it ignores (ids, timestamps)."""

    fields: tuple[FieldSpec, ...]
    passthrough: frozenset[str] = field(default_factory=frozenset)

    def spec(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class SanitizedRecord:
    """Model-ready values (None means "impute") and what was odd about the input."""

    values: dict[str, Any]
    anomalies: tuple[InputAnomaly, ...]


def sanitize(record: Mapping[str, Any], schema: RecordSchema) -> SanitizedRecord:
    """Clean one JSON object against `schema`. Never raises for JSON-decoded input."""
    values: dict[str, Any] = {}
    anomalies: list[InputAnomaly] = []
    for spec in schema.fields:
        if spec.name not in record:
            values[spec.name] = [] if isinstance(spec, CategorySetField) else None
            anomalies.append(InputAnomaly(spec.name, AnomalyKind.MISSING))
            continue
        value, found = _clean(spec, record[spec.name])
        values[spec.name] = value
        anomalies.extend(found)
    known = {f.name for f in schema.fields} | schema.passthrough
    anomalies.extend(
        InputAnomaly(EXTRA_FIELD_LABEL, AnomalyKind.EXTRA, _short(str(k)))
        for k in record
        if k not in known
    )
    return SanitizedRecord(values, tuple(anomalies))


def _clean(spec: FieldSpec, raw: Any) -> tuple[Any, list[InputAnomaly]]:
    if isinstance(spec, CategorySetField):
        return _clean_category_set(spec, raw)
    if raw is None:
        return None, [InputAnomaly(spec.name, AnomalyKind.NULL)]
    if isinstance(spec, NumericField):
        return _clean_number(spec, raw)
    if isinstance(spec, BooleanField):
        return _clean_boolean(spec, raw)
    return _clean_category(spec, raw)


def _clean_number(spec: NumericField, raw: Any) -> tuple[float | None, list[InputAnomaly]]:
    anomalies: list[InputAnomaly] = []
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None, [InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, type(raw).__name__)]
    if isinstance(raw, str):
        number = _parse_float(raw)
        if number is None:
            return None, [InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, _short(raw))]
        anomalies.append(InputAnomaly(spec.name, AnomalyKind.COERCED, _short(raw)))
    else:
        number = _to_float(raw)
    if number is None or not math.isfinite(number):
        return None, [*anomalies, InputAnomaly(spec.name, AnomalyKind.OUT_OF_RANGE, str(raw)[:16])]
    if number < spec.minimum or number > spec.maximum:
        anomalies.append(InputAnomaly(spec.name, AnomalyKind.OUT_OF_RANGE, _short(str(number))))
        number = min(max(number, spec.minimum), spec.maximum)
    return number, anomalies


def _clean_boolean(spec: BooleanField, raw: Any) -> tuple[float | None, list[InputAnomaly]]:
    if isinstance(raw, bool):
        return float(raw), []
    word = str(raw).strip().lower() if isinstance(raw, str | int | float) else None
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        coerced = [InputAnomaly(spec.name, AnomalyKind.COERCED, _short(str(raw)))]
        return (1.0 if word in _TRUE_WORDS else 0.0), coerced
    return None, [InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, _short(repr(raw)))]


def _clean_category(spec: CategoricalField, raw: Any) -> tuple[str | None, list[InputAnomaly]]:
    anomalies: list[InputAnomaly] = []
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None, [InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, type(raw).__name__)]
    if not isinstance(raw, str):
        anomalies.append(InputAnomaly(spec.name, AnomalyKind.COERCED, _short(str(raw))))
    value = _canonical(str(raw), spec.categories)
    if value not in spec.categories:
        anomalies.append(InputAnomaly(spec.name, AnomalyKind.UNKNOWN_CATEGORY, _short(value)))
    return value, anomalies


def _clean_category_set(spec: CategorySetField, raw: Any) -> tuple[list[str], list[InputAnomaly]]:
    if raw is None:
        return [], [InputAnomaly(spec.name, AnomalyKind.NULL)]
    anomalies: list[InputAnomaly] = []
    if isinstance(raw, str):
        # A single category, or a comma-separated list of them.
        anomalies.append(InputAnomaly(spec.name, AnomalyKind.COERCED, _short(raw)))
        items: Sequence[Any] = [part for part in raw.split(",") if part.strip()]
    elif isinstance(raw, list):
        items = raw
    else:
        return [], [InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, type(raw).__name__)]
    values: list[str] = []
    for item in items:
        if not isinstance(item, str):
            anomalies.append(InputAnomaly(spec.name, AnomalyKind.WRONG_TYPE, _short(repr(item))))
            continue
        value = _canonical(item, spec.categories)
        if value not in spec.categories:
            anomalies.append(InputAnomaly(spec.name, AnomalyKind.UNKNOWN_CATEGORY, _short(value)))
        if value not in values:
            values.append(value)
    return values, anomalies


def _canonical(text: str, categories: tuple[str, ...]) -> str:
    """Match categories case- and whitespace-insensitively; keep unknown text as given."""
    folded = text.strip().casefold()
    return next((c for c in categories if c.casefold() == folded), text.strip())


def _parse_float(text: str) -> float | None:
    # Python accepts "1_000"; clients in other languages do not mean it, so refuse it.
    if "_" in text:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def _to_float(raw: int | float) -> float | None:
    try:
        return float(raw)
    except OverflowError:
        return None


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
