"""The Prometheus I/O adapter: batched instant queries that fail safe.

Every failure mode (unreachable server, HTTP error, timeout, malformed answer) comes back
as a QueryResult with `error` set, never as an exception and never as an empty success:
the callers turn it into Inconclusive, so missing data is never evidence.

Batching: queries are evaluated at an aligned `tick` (the check time rounded down to the
check interval) and cached by (url, query, tick). Every ModelDeployment that shares a
Prometheus, a window and an interval reads the same result, so the number of queries per
interval does not grow with the number of resources.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from rollforward.measurements import QueryResult, Sample, escape_label_value
from rollforward.metrics import OperatorMetrics
from rollforward.ports import MetricsSource


def _parse(raw: Any) -> tuple[Sample, ...]:
    samples = []
    for item in raw:
        value = float(item["value"][1])
        if math.isnan(value) or math.isinf(value):
            continue  # NaN is "no data", never zero
        samples.append(Sample(labels=dict(item.get("metric", {})), value=value))
    return tuple(samples)


@dataclass
class PrometheusSource:
    """prometheus-api-client with timeouts, retries, metrics and the per-tick cache."""

    timeout_seconds: float = 5.0
    retries: int = 2
    metrics: OperatorMetrics | None = None
    cache_size: int = 256
    sleep: Callable[[float], None] = time.sleep
    _cache: OrderedDict[tuple[str, str, float], QueryResult] = field(default_factory=OrderedDict)
    _clients: dict[str, PrometheusConnect] = field(default_factory=dict)
    # Reconciles run in threads; one lock makes the first caller of a tick query and the
    # others wait for its answer instead of sending the same query again.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _down: dict[str, float] = field(default_factory=dict)
    quiet_seconds: float = 2.0
    """After a failed query, how long the same Prometheus is not asked again."""

    def query(self, url: str, promql: str, at: datetime) -> QueryResult:
        key = (url, promql, at.timestamp())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            down_since = self._down.get(url)
            if down_since is not None and time.monotonic() - down_since < self.quiet_seconds:
                # One outage answers every query for a while, instead of each query timing out.
                return QueryResult(error=f"Prometheus at {url} failed moments ago; not asked again")
            result = self._query_with_retries(url, promql, at)
            if result.ok:
                self._down.pop(url, None)
            else:
                self._down[url] = time.monotonic()
            if result.ok:
                # Failures are not cached: the next ModelDeployment may try again this tick.
                self._cache[key] = result
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return result

    def _client(self, url: str) -> PrometheusConnect:
        if url not in self._clients:
            # Retries are ours (few, short); the client's own urllib3 retries back off for
            # seconds per query, which would stall every reconcile during an outage.
            self._clients[url] = PrometheusConnect(
                url=url, disable_ssl=True, retry=Retry(total=0, raise_on_status=False)
            )
        return self._clients[url]

    def _query_with_retries(self, url: str, promql: str, at: datetime) -> QueryResult:
        error = "not attempted"
        for attempt in range(self.retries + 1):
            started = time.monotonic()
            try:
                raw = self._client(url).custom_query(
                    promql, params={"time": at.timestamp()}, timeout=self.timeout_seconds
                )
                result = QueryResult(samples=_parse(raw))
                self._observe("ok", started)
                return result
            except requests.Timeout:
                error = f"no answer within {self.timeout_seconds:g}s"
            except requests.ConnectionError:
                error = "cannot connect"
            except (requests.RequestException, PrometheusApiClientException) as problem:
                error = f"{type(problem).__name__}: {problem}"[:200]
            except (KeyError, TypeError, ValueError) as problem:
                error = f"malformed answer from Prometheus: {problem}"[:300]
            self._observe("error", started)
            if attempt < self.retries:
                self.sleep(0.1 * 2**attempt)
        return QueryResult(error=f"Prometheus at {url}: {error}")

    def _observe(self, result: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.prometheus_queries.labels(result=result).inc()
            self.metrics.prometheus_query_seconds.observe(time.monotonic() - started)


__all__ = ["MetricsSource", "PrometheusSource", "QueryResult", "Sample", "escape_label_value"]
