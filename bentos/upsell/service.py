"""The Soom upsell bento: liberal input, instrumented predictions, delayed-feedback intake.

Endpoints (all JSON):
- POST /predict: one record -> one prediction; an array or {"records": [...]} -> a list.
- POST /feedback: {"predictionId": ..., "label": ...}, an array of those, or {"feedback": [...]}.
Non-JSON or empty bodies get 400; JSON of the wrong shape gets 422; never a 5xx, except:

Fault injection (tests and the demo only): a model saved with the metadata key
`fault_5xx_ratio` (a share in (0, 1]) makes /predict answer 503 for that share of requests,
spread evenly (deterministic, not random). `upsell.retrain` never sets it; the end-to-end tests
build such a bento on purpose (`devenv.faulty_retrain`) to see a bad candidate rolled back.
A model without the key (every real one) is never affected.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, cast

import bentoml
import numpy as np
import pandas as pd
from starlette.responses import JSONResponse

from rollforward.serving.contract import FEEDBACK_PATH, PREDICT_PATH
from rollforward.serving.feedback import feedback_items
from rollforward.serving.http_guard import JsonBodyGuard
from rollforward.serving.inputs import sanitize
from rollforward.serving.instrumentation import Instrumentation
from rollforward.serving.payloads import PayloadError, prediction_request
from rollforward.serving.variant_header import VariantHeader
from upsell.schema import LABELS, MODEL_NAME, NEGATIVE_LABEL, POSITIVE_LABEL, RECORD_SCHEMA

BUNDLED_MODEL_FILE = Path(__file__).with_name("bundled_model.json")
MAX_FEEDBACK_ITEMS = 1000
FAULT_RATIO_METADATA = "fault_5xx_ratio"


class InjectedFaults:
    """Which requests fail on purpose: the n-th fails when n * ratio crosses an integer, so
    exactly `ratio` of any long run fails. A ratio of 0 (the default) never fails."""

    def __init__(self, ratio: float) -> None:
        self.ratio = min(max(ratio, 0.0), 1.0)
        self.requests = 0
        self._lock = threading.Lock()

    def next_fails(self) -> bool:
        if self.ratio <= 0:
            return False
        with self._lock:
            before = int(self.requests * self.ratio)
            self.requests += 1
            return int(self.requests * self.ratio) > before


def fault_ratio(metadata: Any) -> float:
    """The injected 5xx share a model's metadata asks for; 0 when absent or not a number."""
    value = metadata.get(FAULT_RATIO_METADATA, 0.0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def bundled_model_tag() -> str:
    """The exact model this bento was built with (a source checkout serves the latest)."""
    if BUNDLED_MODEL_FILE.exists():
        tag: str = json.loads(BUNDLED_MODEL_FILE.read_text())["tag"]
        return tag
    return f"{MODEL_NAME}:latest"


@bentoml.service(name=MODEL_NAME, workers=1, traffic={"timeout": 30})
class SoomUpsell:
    model_ref = bentoml.models.BentoModel(bundled_model_tag())

    def __init__(self) -> None:
        # On an instance, BentoML resolves the class-level reference to the stored model.
        stored: Any = self.model_ref
        metadata = stored.info.metadata
        self.pipeline = bentoml.sklearn.load_model(stored)
        self.threshold = float(metadata.get("threshold", 0.5))
        self.positive_index = list(self.pipeline.classes_).index(1)
        self.faults = InjectedFaults(fault_ratio(metadata))
        self.instrumentation = Instrumentation.from_environment(
            LABELS,
            POSITIVE_LABEL,
            metadata.get("baseline_distribution", {}),
            default_model=MODEL_NAME,
            default_version=str(stored.tag.version),
            logger=logging.getLogger("bentoml.soom_upsell"),
        )
        self.instrumentation.publish_calibration(metadata.get("calibration"))

    @bentoml.api(route=PREDICT_PATH)  # type: ignore[untyped-decorator]
    def predict(self, payload: Any, /) -> Any:
        if self.faults.next_fails():
            return JSONResponse({"error": "injected fault (fault_5xx_ratio)"}, status_code=503)
        request = prediction_request(payload)
        if isinstance(request, PayloadError):
            return JSONResponse({"error": request.message}, status_code=422)
        cleaned = [sanitize(record, RECORD_SCHEMA) for record in request.records]
        for index, record in enumerate(cleaned):
            self.instrumentation.note_anomalies(record.anomalies, index)
        scores = self._scores([record.values for record in cleaned])
        predictions = [
            self._prediction(raw, record.anomalies, float(score))
            for raw, record, score in zip(request.records, cleaned, scores, strict=True)
        ]
        return predictions if request.batch else predictions[0]

    @bentoml.api(route=FEEDBACK_PATH)  # type: ignore[untyped-decorator]
    def feedback(self, payload: Any, /) -> Any:
        if not self.instrumentation.feedback_enabled:
            return JSONResponse(
                {"error": self.instrumentation.feedback_disabled_message}, status_code=503
            )
        items = feedback_items(payload)
        if items is None or len(items) > MAX_FEEDBACK_ITEMS:
            shape = type(payload).__name__ if items is None else f"{len(items)} items"
            self.instrumentation.reject_payload(shape)
            return JSONResponse(
                {
                    "error": 'expected {"predictionId": ..., "label": ...}, an array of them '
                    f'or {{"feedback": [...]}} with at most {MAX_FEEDBACK_ITEMS} items'
                },
                status_code=422,
            )
        verdicts = [self.instrumentation.record_feedback(item) for item in items]
        return {
            "accepted": sum(v.accepted for v in verdicts),
            "rejected": [
                {"index": i, "reason": v.reason} for i, v in enumerate(verdicts) if not v.accepted
            ],
        }

    def _scores(self, values: list[dict[str, Any]]) -> np.ndarray:
        if not values:
            return np.zeros(0)
        frame = pd.DataFrame.from_records(values)
        result: np.ndarray = self.pipeline.predict_proba(frame)[:, self.positive_index]
        return result

    def _prediction(self, raw: dict[str, Any], anomalies: Any, score: float) -> dict[str, Any]:
        label = POSITIVE_LABEL if score >= self.threshold else NEGATIVE_LABEL
        settings = self.instrumentation.settings
        return {
            "label": label,
            "score": round(score, 6),
            "predictionId": self.instrumentation.record_prediction(label, score, raw),
            "model": settings.model,
            "version": settings.version,
            "variant": settings.variant,
            "anomalies": [{"field": a.field, "kind": str(a.kind)} for a in anomalies],
        }


# The decorator turned the class into a bentoml Service, which takes ASGI middleware.
# Every answer names this variant, which the router passes on as its served-by header.
# Added first, so it wraps the guard's own 4xx answers too.
cast(Any, SoomUpsell).add_asgi_middleware(VariantHeader)
cast(Any, SoomUpsell).add_asgi_middleware(JsonBodyGuard, paths=(PREDICT_PATH, FEEDBACK_PATH))
