"""The shapes a /predict body may take. Pure functions, no I/O.

A single JSON object is one record and gets one prediction back. A JSON array of objects,
or {"records": [...]}, is a batch and gets a list back, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RECORDS_KEY = "records"
DEFAULT_MAX_BATCH = 1000


@dataclass(frozen=True)
class PredictionRequest:
    records: list[dict[str, Any]]
    batch: bool


@dataclass(frozen=True)
class PayloadError:
    """Why a body cannot be predicted on; the service answers 422 with `message`."""

    message: str


def prediction_request(
    payload: Any, max_batch: int = DEFAULT_MAX_BATCH
) -> PredictionRequest | PayloadError:
    if isinstance(payload, dict) and RECORDS_KEY in payload:
        if not isinstance(payload[RECORDS_KEY], list):
            return PayloadError(f'"{RECORDS_KEY}" must be an array of record objects')
        items, batch = payload[RECORDS_KEY], True
    elif isinstance(payload, dict):
        items, batch = [payload], False
    elif isinstance(payload, list):
        items, batch = payload, True
    else:
        return PayloadError(
            f"expected a JSON object (one record), an array of objects, or "
            f'{{"{RECORDS_KEY}": [...]}}; got {type(payload).__name__}'
        )
    if len(items) > max_batch:
        return PayloadError(f"a batch holds at most {max_batch} records, got {len(items)}")
    not_objects = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    if not_objects:
        shown = ", ".join(str(i) for i in not_objects[:10])
        return PayloadError(f"every record must be a JSON object; not at index {shown}")
    return PredictionRequest(records=items, batch=batch)
