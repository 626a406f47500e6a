"""A small in-process traffic source for one bento: Soom records at a steady rate, in a thread.

The integration tests of drift detection use it to drive a real `bentoml serve` directly
(no router); the end-to-end tests use devenv.traffic through the router instead.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from devenv.bento import BentoServer
from upsell.generator import GeneratorConfig, SoomStream


class SteadyTraffic:
    """POST one Soom record to /predict every 1/rate seconds until stopped; bounded in time."""

    def __init__(
        self,
        server: BentoServer,
        scenario: str,
        rate: float = 20.0,
        seed: int = 7,
        config: GeneratorConfig | None = None,
        max_seconds: float = 600.0,
    ) -> None:
        self.server = server
        self.rate = rate
        self.max_seconds = max_seconds
        self._stream = SoomStream(scenario, seed, config=config)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self.failures = 0

    def switch(self, scenario: str) -> None:
        with self._lock:
            self._stream = self._stream.with_scenario(scenario)

    def start(self) -> SteadyTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.monotonic()
        next_at = started
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            with self._lock:
                record = self._stream.sample(datetime.now(UTC)).record
            status, _ = self.server.post("/predict", record, timeout=10)
            self.sent += 1
            self.failures += status >= 500
            next_at += 1 / self.rate
            self._stop.wait(max(0.0, next_at - time.monotonic()))
