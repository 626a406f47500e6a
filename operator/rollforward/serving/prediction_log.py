"""Every prediction and every feedback label, appended to the bento store's bucket as JSON lines.

What production saw, with the labels that came back, is what retraining should learn from
(`upsell.logged_data` reads it back). Decisions a naive logger gets wrong:
- **Never on the request's path.** A prediction only appends to an in-memory buffer under a
  lock; a background thread writes the buffer out every `flush_seconds`. A slow or broken
  store can never slow or fail a prediction.
- **Bounded.** The buffer holds at most `buffer_records`; beyond that a record is dropped and
  counted (`rollforward_log_records_dropped_total{reason="buffer_full"}`), as is every record
  of a write that failed (`reason="store_error"`): memory stays bounded whatever the store does.
- **Append-only and partitioned.** Each flush writes new objects, never rewrites one:
  `<prefix>/<model>/<kind>/date=YYYY-MM-DD/hour=HH/<time>-<writer>-<seq>.jsonl`, where kind is
  `predictions` or `feedback` and `writer` is unique per process. Readers list a day's prefix.
- **One log per ModelDeployment, not per model name.** `<prefix>` is what the operator sets in
  ROLLFORWARD_PREDICTION_LOG_PREFIX, `logs/<namespace>/<name>`, on the bentos and on the
  retraining Jobs alike (rollforward.bentostore.location), so two ModelDeployments serving one
  model never share a log. A bento served by hand logs under `logs`.
- **Per process.** BentoML forks workers; the flush thread starts on the first record, in the
  process that holds the buffer.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rollforward.serving.contract import DEFAULT_PREDICTION_LOG_PREFIX
from rollforward.serving.objectstore.client import ObjectStore, StoreError
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.objectstore.sigv4 import Credentials

PREDICTIONS: Final = "predictions"
FEEDBACK: Final = "feedback"
BUFFER_FULL: Final = "buffer_full"
STORE_ERROR: Final = "store_error"


class LogSettings(BaseSettings):
    """ROLLFORWARD_PREDICTION_LOG_*; the store itself is ROLLFORWARD_BENTO_STORE_*."""

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_PREDICTION_LOG_", extra="ignore")

    enabled: bool = True
    # The log's root: ROLLFORWARD_PREDICTION_LOG_PREFIX (contract.ENV_PREDICTION_LOG_PREFIX),
    # which the operator sets per ModelDeployment.
    prefix: str = DEFAULT_PREDICTION_LOG_PREFIX
    buffer_records: int = Field(default=20_000, ge=1)
    flush_seconds: float = Field(default=10.0, gt=0)


class LogStoreSettings(BaseSettings):
    """The bento store the operator names on every bento pod (rollforward.bentostore.location;
    the names are repeated here because that module needs the API, which no bento carries)."""

    model_config = SettingsConfigDict(env_prefix="ROLLFORWARD_BENTO_STORE_", extra="ignore")

    endpoint: str = ""
    bucket: str = ""
    region: str = "us-east-1"
    access_key_id: str = Field(default="", validation_alias="AWS_ACCESS_KEY_ID")
    secret_access_key: str = Field(default="", validation_alias="AWS_SECRET_ACCESS_KEY")

    def store(self) -> S3Store | None:
        """None without a store: logging is then off."""
        if not self.endpoint or not self.bucket:
            return None
        credentials = (
            Credentials(self.access_key_id, self.secret_access_key) if self.access_key_id else None
        )
        return S3Store(self.endpoint, self.bucket, self.region, credentials, timeout=10.0)


@dataclass(frozen=True)
class LogIdentity:
    model: str
    version: str
    variant: str


def log_root(prefix: str, model: str) -> str:
    """`<prefix>/<model>/`: all that the bentos of one ModelDeployment logged for one model."""
    return f"{prefix.strip('/')}/{model}/"


def object_key(prefix: str, model: str, kind: str, at: datetime, writer: str, seq: int) -> str:
    """Where one flush of one kind goes: partitioned by day and hour, unique per writer."""
    stamp = at.strftime("%Y%m%dT%H%M%S")
    partition = f"date={at:%Y-%m-%d}/hour={at:%H}"
    return f"{log_root(prefix, model)}{kind}/{partition}/{stamp}-{writer}-{seq:06d}.jsonl"


def day_prefix(prefix: str, model: str, kind: str, day: datetime) -> str:
    return f"{log_root(prefix, model)}{kind}/date={day:%Y-%m-%d}/"


class PredictionLog:
    """The buffer and its flusher for one serving process."""

    def __init__(
        self,
        store: ObjectStore,
        identity: LogIdentity,
        settings: LogSettings | None = None,
        *,
        on_drop: Callable[[str, str, int], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.identity = identity
        self.settings = settings or LogSettings()
        self._on_drop = on_drop or (lambda kind, reason, count: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._writer = f"{identity.variant}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.dropped = 0

    def prediction(
        self, prediction_id: str, features: Mapping[str, Any], label: str, score: float
    ) -> None:
        """Queue one prediction; returns at once, whatever the store is doing."""
        self._append(
            PREDICTIONS,
            {"id": prediction_id, "label": label, "score": score, "features": dict(features)},
        )

    def feedback(self, prediction_id: str, label: str) -> None:
        """Queue one accepted feedback label."""
        self._append(FEEDBACK, {"id": prediction_id, "label": label})

    def _append(self, kind: str, fields: dict[str, Any]) -> None:
        i = self.identity
        record = {
            "at": self._clock().isoformat(),
            "model": i.model,
            "version": i.version,
            "variant": i.variant,
            **fields,
        }
        with self._lock:
            if len(self._pending) >= self.settings.buffer_records:
                self.dropped += 1
                full = True
            else:
                self._pending.append((kind, record))
                full = False
            self._ensure_flusher()
        if full:
            self._on_drop(kind, BUFFER_FULL, 1)

    def _ensure_flusher(self) -> None:
        # After a fork the parent's thread is not alive in the child: start one there.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="rollforward-prediction-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Write what is pending, one object per kind; returns the records written."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._seq += 1
            seq = self._seq
        written = 0
        for kind in (PREDICTIONS, FEEDBACK):
            lines = [json.dumps(r, default=str) for k, r in pending if k == kind]
            if lines:
                written += self._write(kind, lines, seq)
        return written

    def _write(self, kind: str, lines: list[str], seq: int) -> int:
        key = object_key(
            self.settings.prefix, self.identity.model, kind, self._clock(), self._writer, seq
        )
        with tempfile.TemporaryDirectory(prefix="rollforward-log-") as scratch:
            path = Path(scratch) / "part.jsonl"
            path.write_text("\n".join(lines) + "\n")
            try:
                self.store.put(key, path)
            except (StoreError, OSError):
                with self._lock:
                    self.dropped += len(lines)
                self._on_drop(kind, STORE_ERROR, len(lines))
                return 0
        return len(lines)

    def close(self) -> None:
        """Stop the flusher and write what is left (a graceful shutdown loses nothing)."""
        self._stop.set()
        self.flush()
