"""Serving configuration, read from the environment the operator sets on a bento pod."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    """Who this process is (model, version, variant) and how it instruments predictions.

    The operator sets ROLLFORWARD_MODEL/VERSION/VARIANT; the defaults serve a bento run by
    hand, so `bentoml serve` works without any of them.
    """

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_", extra="ignore")

    model: str = Field(default="", description="Model name (the ModelDeployment's model).")
    version: str = Field(default="", description="Bento version being served.")
    variant: str = Field(default="default", description="champion, challenger, canary, ...")
    segment_field: str = Field(default="", description="Input field that labels a segment.")
    # Distinct segment values beyond this count are reported as "other", so a free-text
    # field cannot blow up the number of Prometheus series.
    max_segments: int = Field(default=20, ge=1)
    # When false the bento predicts without exporting rollforward_* metrics; the
    # overhead benchmark compares both modes of the same bento.
    instrument: bool = True
    # Key for prediction-id signatures (ROLLFORWARD_FEEDBACK_SECRET). Without one (or with
    # one shorter than FEEDBACK_SECRET_MIN_LENGTH) /feedback is off: answers 503.
    feedback_secret: str = Field(default="", repr=False)
    # Prediction ids already fed back, remembered to count duplicates (per worker): the fast
    # path before the bento store's claim (rollforward.serving.feedback_claims).
    feedback_memory: int = Field(default=100_000, ge=1)
    # Claim each fed-back id in the bento store, so a label counts once across replicas and
    # restarts. Needs the store (ROLLFORWARD_BENTO_STORE_*); without it, per-process only.
    feedback_claims: bool = True
    # Each socket wait of one claim; a store error then skips the store for the back-off.
    feedback_claim_timeout_seconds: float = Field(default=1.0, gt=0)
    feedback_claim_backoff_seconds: float = Field(default=30.0, ge=0)
