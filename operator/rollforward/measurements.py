"""Value types of metric queries and their results. Pure: the decisions read these, and
the Prometheus adapter (rollforward.prometheus) produces them."""

from __future__ import annotations

from dataclasses import dataclass

from rollforward.api.reasons import Reason


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    """The samples of an instant query, or why there are none."""

    samples: tuple[Sample, ...] = ()
    error: str | None = None
    reason: Reason | None = None
    """Why it failed, when the adapter can tell (TLS, credentials, a missing Secret); None
    on a failure means PrometheusUnreachable."""

    @property
    def ok(self) -> bool:
        return self.error is None


def escape_label_value(value: str) -> str:
    """Escape a value for a PromQL string literal, so a resource name cannot inject a query."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
