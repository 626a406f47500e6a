"""The Soom upsell bento: liberal input, instrumented predictions, delayed-feedback intake.

Endpoints (all JSON):
- POST /predict: one record -> one prediction; an array or {"records": [...]} -> a list.
- POST /feedback: {"predictionId": ..., "label": ...}, an array of those, or {"feedback": [...]}.
Non-JSON or empty bodies get 400; JSON of the wrong shape gets 422; never a 5xx.
"""

from __future__ import annotations

import json
import logging
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
from upsell.schema import LABELS, MODEL_NAME, NEGATIVE_LABEL, POSITIVE_LABEL, RECORD_SCHEMA

BUNDLED_MODEL_FILE = Path(__file__).with_name("bundled_model.json")
MAX_FEEDBACK_ITEMS = 1000


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
        self.instrumentation = Instrumentation.from_environment(
            LABELS,
            POSITIVE_LABEL,
            metadata.get("baseline_distribution", {}),
            default_model=MODEL_NAME,
            default_version=str(stored.tag.version),
            logger=logging.getLogger("bentoml.soom_upsell"),
        )

    @bentoml.api(route=PREDICT_PATH)  # type: ignore[untyped-decorator]
    def predict(self, payload: Any, /) -> Any:
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
        items = feedback_items(payload)
        if items is None or len(items) > MAX_FEEDBACK_ITEMS:
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
cast(Any, SoomUpsell).add_asgi_middleware(JsonBodyGuard, paths=(PREDICT_PATH, FEEDBACK_PATH))
