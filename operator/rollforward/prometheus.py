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
import os
import tempfile
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
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from rollforward.api import Reason
from rollforward.measurements import QueryResult, Sample, escape_label_value
from rollforward.metrics import OperatorMetrics
from rollforward.ports import MetricsSource
from rollforward.prometheus_access import PrometheusAccess

_NO_ACCESS = PrometheusAccess()
_Key = tuple[str, PrometheusAccess]


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
    # Keyed by URL *and* access: a resource without valid credentials must never read a
    # result another resource's credentials fetched.
    _cache: OrderedDict[tuple[_Key, str, float], QueryResult] = field(default_factory=OrderedDict)
    _clients: dict[_Key, PrometheusConnect] = field(default_factory=dict)
    # Reconciles run in threads; one lock makes the first caller of a tick query and the
    # others wait for its answer instead of sending the same query again.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _down: dict[_Key, tuple[float, QueryResult]] = field(default_factory=dict)
    quiet_seconds: float = 2.0
    """After a failed query, how long the same Prometheus is not asked again."""

    def query(
        self, url: str, promql: str, at: datetime, access: PrometheusAccess | None = None
    ) -> QueryResult:
        target = (url, access or _NO_ACCESS)
        key = (target, promql, at.timestamp())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            down = self._down.get(target)
            if down is not None and time.monotonic() - down[0] < self.quiet_seconds:
                # One outage answers every query for a while, instead of each query timing out;
                # with the first failure's reason, so a TLS or credential problem stays named.
                return QueryResult(
                    error=f"{down[1].error} (moments ago; not asked again)", reason=down[1].reason
                )
            result = self._query_with_retries(target, promql, at)
            if result.ok:
                self._down.pop(target, None)
            else:
                self._down[target] = (time.monotonic(), result)
            if result.ok:
                # Failures are not cached: the next ModelDeployment may try again this tick.
                self._cache[key] = result
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return result

    def _client(self, target: _Key) -> PrometheusConnect:
        if target not in self._clients:
            url, access = target
            # Retries are ours (few, short); the client's own urllib3 retries back off for
            # seconds per query, which would stall every reconcile during an outage.
            self._clients[target] = PrometheusConnect(
                url=url,
                session=_session(access),
                headers={"Authorization": f"Bearer {access.bearer_token}"}
                if access.bearer_token
                else None,
                auth=access.basic_auth,
                retry=Retry(total=0, raise_on_status=False),
            )
        return self._clients[target]

    def _query_with_retries(self, target: _Key, promql: str, at: datetime) -> QueryResult:
        error, reason = "not attempted", None
        for attempt in range(self.retries + 1):
            started = time.monotonic()
            try:
                raw = self._client(target).custom_query(
                    promql, params={"time": at.timestamp()}, timeout=self.timeout_seconds
                )
                result = QueryResult(samples=_parse(raw))
                self._observe("ok", started)
                return result
            except Exception as problem:
                error, reason = self._describe(problem)
            self._observe("error", started)
            if reason is not None:
                break  # a certificate or a password does not fix itself within a check
            if attempt < self.retries:
                self.sleep(0.1 * 2**attempt)
        return QueryResult(error=f"Prometheus at {target[0]}: {error}", reason=reason)

    def _describe(self, problem: Exception) -> tuple[str, Reason | None]:
        """The message and, when it is not plain unreachability, the reason of a failure."""
        if isinstance(problem, requests.exceptions.SSLError):
            return f"TLS verification failed: {problem}"[:300], Reason.PROMETHEUS_TLS_ERROR
        if isinstance(problem, requests.Timeout) or _timed_out(problem):
            return f"no answer within {self.timeout_seconds:g}s", None
        if isinstance(problem, requests.ConnectionError):
            return "cannot connect", None
        if isinstance(problem, PrometheusApiClientException) and _status(problem) in (401, 403):
            return f"credentials refused: {problem}"[:200], Reason.PROMETHEUS_UNAUTHORIZED
        if isinstance(problem, requests.RequestException | PrometheusApiClientException):
            return f"{type(problem).__name__}: {problem}"[:200], None
        if isinstance(problem, KeyError | TypeError | ValueError):
            return f"malformed answer from Prometheus: {problem}"[:300], None
        raise problem

    def _observe(self, result: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.prometheus_queries.labels(result=result).inc()
            self.metrics.prometheus_query_seconds.observe(time.monotonic() - started)


def _timed_out(problem: Exception) -> bool:
    # With retries off, urllib3 wraps a read timeout in MaxRetryError, which requests raises
    # as a ConnectionError: a slow Prometheus would read as one that refuses connections.
    cause = getattr(problem.args[0], "reason", None) if problem.args else None
    return isinstance(problem, requests.ConnectionError) and isinstance(cause, Urllib3Timeout)


def _status(problem: PrometheusApiClientException) -> int | None:
    # The client reports a non-200 answer only as text: "HTTP Status Code 401 (...)".
    words = str(problem).split()
    return int(words[3]) if len(words) > 3 and words[3].isdigit() else None


def _session(access: PrometheusAccess) -> requests.Session:
    session = requests.Session()
    if access.insecure_skip_verify:
        session.verify = False
    elif access.ca_pem is not None:
        session.verify = _ca_file(access.ca_pem)
    else:
        session.verify = True
    return session


def _ca_file(pem: str) -> str:
    # requests takes a CA bundle only as a path; one private file per distinct bundle.
    handle, path = tempfile.mkstemp(prefix="rollforward-prometheus-ca-", suffix=".pem")
    with os.fdopen(handle, "w") as file:
        file.write(pem if pem.endswith("\n") else pem + "\n")
    return path


__all__ = ["MetricsSource", "PrometheusSource", "QueryResult", "Sample", "escape_label_value"]
