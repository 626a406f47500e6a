"""Canary analysis: the measurements of a step, each Successful, Failed or Inconclusive. Pure.

The queries are batched like the drift queries: their text depends only on the step's
window, so one evaluation per tick serves every canary on a Prometheus. Series are selected
only by labels a bento exports itself or that every standard scrape config adds (`namespace`,
`pod`), never by pod labels that only some scrape setups copy. BentoML's request metrics carry
no variant, so they are joined on (namespace, pod) to `rollforward_variant_info`, which every
serving process exports with its model, version and variant. The join reads the info series
over the whole window, so a pod that went away during the window still counts.
Inconclusive is never Failed: too few requests or an empty query decides nothing.

Error rate and latency are also looked at during the step, every `analysis.interval`
(`interim_analysis`), on counts since the step started: a Failed look aborts at once. The
error rate's test is sequential (rollforward.sequential), so those repeated looks do not
raise its false aborts above ERROR_RATE_ALPHA over a whole step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from rollforward.api import (
    AnalysisResult,
    ComparisonOperator,
    CustomMetric,
    DriftStatistic,
    DriftVerdict,
    ModelDeployment,
)
from rollforward.drift.statistics import BaselineProportions, DriftCriteria, evaluate_drift
from rollforward.measurements import QueryResult, Sample, escape_label_value
from rollforward.naming import CANDIDATE_VARIANT
from rollforward.sequential import ErrorCounts, SequentialVerdict, error_rate_test
from rollforward.serving.contract import (
    BASELINE_RATIO,
    BENTOML_REQUEST_DURATION,
    BENTOML_REQUESTS_TOTAL,
    PREDICTIONS_TOTAL,
    VARIANT_INFO,
)

Outcome = Literal["Successful", "Failed", "Inconclusive"]
LATENCY_RESOLUTION = 0.05
"""Seconds. p99 comes from histogram buckets (BentoML's are 5, 10, 25, 50, 75, 100 ms ...),
so two variants a bucket apart differ by 2x on identical work; a candidate fails on latency
only when it is slower by the ratio AND by more than this."""
ERROR_RATE_ALPHA = 0.05
"""The most often a candidate whose error rate is within maxErrorRateIncrease of the
champion's is aborted by the error-rate test, over a whole step, however often it looks."""
_BY_VARIANT = "namespace, model, variant"
# Probes, scrapes and feedback are not model traffic.
_MODEL_ENDPOINTS = 'endpoint!~"/(metrics|readyz|livez|healthz|feedback)"'


@dataclass(frozen=True)
class AnalysisQueries:
    requests: str
    errors: str
    latency_p99: str
    predictions: str
    baseline: str


@dataclass(frozen=True)
class AnalysisInputs:
    requests: QueryResult
    errors: QueryResult
    latency_p99: QueryResult
    predictions: QueryResult
    baseline: QueryResult
    custom: dict[str, QueryResult] = field(default_factory=dict)
    canary_requests: QueryResult | None = None
    """Requests since the candidate started serving (all steps); None: use the step's."""
    canary_errors: QueryResult | None = None
    """Failed requests since the candidate started serving; None: use the step's."""


def variant_of_pod(window: str) -> str:
    """`* <this>` gives a per-pod series the model and variant of the pod that exported it.

    The info series is reduced to one per (namespace, pod), so a pod scraped by two jobs
    (a PodMonitor and an annotation-based job, say) cannot make the match many-to-many.
    """
    info = f"max_over_time({VARIANT_INFO}[{window}])"
    return (
        "* on (namespace, pod) group_left (model, variant) "
        f"max by (namespace, pod, model, variant) ({info})"
    )


def analysis_queries(window_seconds: int) -> AnalysisQueries:
    window = f"{window_seconds}s"
    requests = f"{BENTOML_REQUESTS_TOTAL}{{{_MODEL_ENDPOINTS}}}"
    errors = f'{BENTOML_REQUESTS_TOTAL}{{{_MODEL_ENDPOINTS},http_response_code=~"5.."}}'
    buckets = f"{BENTOML_REQUEST_DURATION}_bucket{{{_MODEL_ENDPOINTS}}}"
    join = variant_of_pod(window)
    return AnalysisQueries(
        requests=f"sum by ({_BY_VARIANT}) (increase({requests}[{window}]) {join})",
        errors=f"sum by ({_BY_VARIANT}) (increase({errors}[{window}]) {join})",
        latency_p99=(
            f"histogram_quantile(0.99, sum by (le, {_BY_VARIANT}) "
            f"(rate({buckets}[{window}]) {join}))"
        ),
        predictions=(
            "sum by (namespace, model, version, variant, label, segment) "
            f"(increase({PREDICTIONS_TOTAL}[{window}]))"
        ),
        baseline=f"max by (namespace, model, version, label) ({BASELINE_RATIO})",
    )


def custom_query(metric: CustomMetric, deployment: ModelDeployment, variant: str) -> str:
    """The user's PromQL with its placeholders replaced by escaped values."""
    values = {
        "{{variant}}": variant,
        "{{namespace}}": deployment.metadata.namespace,
        "{{model}}": deployment.spec.model,
        "{{name}}": deployment.metadata.name,
    }
    query = metric.query
    for placeholder, value in values.items():
        query = query.replace(placeholder, escape_label_value(value))
    return query


def _per_variant(result: QueryResult, deployment: ModelDeployment) -> dict[str, float]:
    values: dict[str, float] = {}
    for sample in result.samples:
        labels = sample.labels
        if (
            labels.get("namespace") == deployment.metadata.namespace
            and labels.get("model") == deployment.spec.model
        ):
            variant = labels.get("variant", "")
            values[variant] = values.get(variant, 0.0) + sample.value
    return values


def _result(name: str, outcome: Outcome, value: float | None, message: str) -> AnalysisResult:
    return AnalysisResult(name=name, outcome=outcome, value=value, message=message)


def _counts(
    requests: QueryResult, errors: QueryResult, deployment: ModelDeployment, variant: str
) -> ErrorCounts:
    """Whole requests of one variant; `increase()` extrapolates, so counts are rounded."""
    served = round(_per_variant(requests, deployment).get(variant, 0.0))
    failed = round(_per_variant(errors, deployment).get(variant, 0.0))
    return ErrorCounts(requests=served, errors=min(failed, served))


def error_rate(
    deployment: ModelDeployment, inputs: AnalysisInputs, champion: str
) -> AnalysisResult:
    """The sequential test on the step's counts: Failed as soon as the candidate is certainly
    worse by more than maxErrorRateIncrease. Otherwise Successful, unless the step has too few
    requests, or the candidate looks worse but not certainly (a close call, measured again):
    then Inconclusive."""
    analysis = deployment.spec.rollout.analysis
    if not (inputs.requests.ok and inputs.errors.ok):
        return _result("errorRate", "Inconclusive", None, "error-rate query failed")
    candidate = _counts(inputs.requests, inputs.errors, deployment, CANDIDATE_VARIANT)
    baseline = _counts(inputs.requests, inputs.errors, deployment, champion)
    test = error_rate_test(candidate, baseline, analysis.max_error_rate_increase, ERROR_RATE_ALPHA)
    value = candidate.rate if candidate.requests else None
    if test.verdict is SequentialVerdict.FAILED:
        return _result("errorRate", "Failed", value, test.message)
    if candidate.requests < analysis.min_requests or baseline.requests < analysis.min_requests:
        return _result(
            "errorRate",
            "Inconclusive",
            value,
            f"too few requests (candidate {candidate.requests}, champion "
            f"{baseline.requests}; minRequests {analysis.min_requests})",
        )
    if candidate.rate - baseline.rate > analysis.max_error_rate_increase:
        return _result("errorRate", "Inconclusive", value, f"close call: {test.message}")
    return _result("errorRate", "Successful", value, test.message)


def candidate_counts(deployment: ModelDeployment, inputs: AnalysisInputs) -> ErrorCounts | None:
    """The candidate's requests and failures since it started serving (the blast radius);
    None when they were not measured."""
    if inputs.canary_requests is None or inputs.canary_errors is None:
        return None
    if not (inputs.canary_requests.ok and inputs.canary_errors.ok):
        return None
    return _counts(inputs.canary_requests, inputs.canary_errors, deployment, CANDIDATE_VARIANT)


def failed_requests(deployment: ModelDeployment, inputs: AnalysisInputs) -> AnalysisResult:
    """The candidate's failed requests in this canary against maxFailedRequests."""
    limit = deployment.spec.rollout.analysis.max_failed_requests
    requests = inputs.canary_requests or inputs.requests
    errors = inputs.canary_errors or inputs.errors
    if not (requests.ok and errors.ok):
        return _result("failedRequests", "Inconclusive", None, "error-count query failed")
    failed = _counts(requests, errors, deployment, CANDIDATE_VARIANT).errors
    message = f"{failed} failed requests (maxFailedRequests {limit})"
    outcome: Outcome = "Failed" if limit is not None and failed >= limit else "Successful"
    return _result("failedRequests", outcome, float(failed), message)


def latency_p99(
    deployment: ModelDeployment, inputs: AnalysisInputs, champion: str
) -> AnalysisResult:
    analysis = deployment.spec.rollout.analysis
    if not inputs.latency_p99.ok:
        return _result("latencyP99", "Inconclusive", None, "latency query failed")
    served = _per_variant(inputs.requests, deployment) if inputs.requests.ok else {}
    if served.get(CANDIDATE_VARIANT, 0.0) < analysis.min_requests:
        # A p99 of a handful of requests is their maximum: one cold start would fail it.
        return _result("latencyP99", "Inconclusive", None, "too few requests for a p99")
    p99 = _per_variant(inputs.latency_p99, deployment)
    candidate, baseline = p99.get(CANDIDATE_VARIANT), p99.get(champion)
    if candidate is None or baseline is None or baseline <= 0:
        return _result("latencyP99", "Inconclusive", None, "no latency data for both variants")
    ratio = candidate / baseline
    message = f"p99 {candidate * 1000:.0f}ms vs champion {baseline * 1000:.0f}ms ({ratio:.2f}x)"
    slower = ratio > analysis.max_latency_ratio and candidate - baseline > LATENCY_RESOLUTION
    outcome: Outcome = "Failed" if slower else "Successful"
    return _result("latencyP99", outcome, ratio, message)


def prediction_drift(
    deployment: ModelDeployment, inputs: AnalysisInputs, candidate_version: str
) -> AnalysisResult:
    """The candidate's predictions against its own training baseline."""
    if not (inputs.predictions.ok and inputs.baseline.ok):
        return _result("predictionDrift", "Inconclusive", None, "prediction query failed")

    def mine(sample: Sample, **match: str) -> bool:
        wanted = {"namespace": deployment.metadata.namespace, "model": deployment.spec.model}
        return all(sample.labels.get(k) == v for k, v in {**wanted, **match}.items())

    counts: dict[str, float] = {}
    for s in inputs.predictions.samples:
        if mine(s, variant=CANDIDATE_VARIANT, version=candidate_version):
            counts[s.labels.get("label", "")] = counts.get(s.labels.get("label", ""), 0.0) + s.value
    ratios = {
        s.labels.get("label", ""): s.value
        for s in inputs.baseline.samples
        if mine(s, version=candidate_version)
    }
    if not ratios:
        return _result("predictionDrift", "Inconclusive", None, "candidate exports no baseline")
    drift = deployment.spec.drift
    # A canary asks whether the candidate behaves materially unlike its own validation set,
    # not whether any difference at all is detectable: with thousands of predictions a
    # chi-square test flags a one-point shift (seen in the end-to-end run: p = 0.001, PSI
    # 0.01). So the step fails only on a shift that is both significant and large (PSI above
    # its threshold and noise floor), whatever statistic watches the champion.
    statistic = drift.statistic
    if statistic is DriftStatistic.CHI_SQUARE:
        statistic = DriftStatistic.PSI
    criteria = DriftCriteria(
        statistic=statistic,
        alpha=drift.significance,
        threshold=drift.threshold if statistic is drift.statistic else None,
        noise_floor_multiplier=drift.noise_floor_multiplier,
        min_samples=deployment.spec.rollout.analysis.min_requests,
    )
    report = evaluate_drift(counts, BaselineProportions(proportions=ratios), criteria)
    segment = report.segments[0]
    outcome: Outcome = {
        DriftVerdict.DRIFT: "Failed",
        DriftVerdict.NO_DRIFT: "Successful",
        DriftVerdict.INCONCLUSIVE: "Inconclusive",
    }[report.verdict]  # type: ignore[assignment]
    return _result("predictionDrift", outcome, segment.score, report.reason)


def _compare(value: float, operator: ComparisonOperator, bound: float) -> bool:
    return {
        ComparisonOperator.LESS_THAN: value < bound,
        ComparisonOperator.LESS_OR_EQUAL: value <= bound,
        ComparisonOperator.GREATER_THAN: value > bound,
        ComparisonOperator.GREATER_OR_EQUAL: value >= bound,
    }[operator]


def custom_metric(metric: CustomMetric, result: QueryResult | None) -> AnalysisResult:
    if result is None or not result.ok:
        problem = result.error if result is not None else "not queried"
        return _result(metric.name, "Inconclusive", None, f"query failed: {problem}")
    if len(result.samples) != 1 or math.isnan(result.samples[0].value):
        return _result(
            metric.name, "Inconclusive", None, f"expected one value, got {len(result.samples)}"
        )
    value = result.samples[0].value
    ok = _compare(value, metric.success.operator, metric.success.value)
    message = f"{value:.4g} {metric.success.operator.value} {metric.success.value:g}"
    return _result(metric.name, "Successful" if ok else "Failed", value, message)


def analyse(
    deployment: ModelDeployment, inputs: AnalysisInputs, champion: str, candidate_version: str
) -> list[AnalysisResult]:
    """Every measurement of one step, at its end."""
    results = [
        *interim_analysis(deployment, inputs, champion),
        latency_p99(deployment, inputs, champion),
    ]
    if deployment.spec.rollout.analysis.prediction_drift:
        results.append(prediction_drift(deployment, inputs, candidate_version))
    for metric in deployment.spec.rollout.analysis.metrics:
        results.append(custom_metric(metric, inputs.custom.get(metric.name)))
    return results


def interim_analysis(
    deployment: ModelDeployment, inputs: AnalysisInputs, champion: str
) -> list[AnalysisResult]:
    """The measurements looked at during a step: the error rate's sequential test and the
    failed-request bound. Latency waits for the step's end: its p99 ratio is a fixed-threshold
    check, not a sequential one, so looked at every few seconds it fires on a candidate's
    cold start (the demo rolled back a good candidate on p99 202 ms vs 48 ms seconds after
    it began serving) and its false aborts grow with the number of looks."""
    results = [error_rate(deployment, inputs, champion)]
    if deployment.spec.rollout.analysis.max_failed_requests is not None:
        results.append(failed_requests(deployment, inputs))
    return results


def verdict(results: list[AnalysisResult]) -> Outcome:
    """Failed if anything failed; else Inconclusive if anything was; else Successful."""
    outcomes = {r.outcome for r in results}
    if "Failed" in outcomes:
        return "Failed"
    if "Inconclusive" in outcomes:
        return "Inconclusive"
    return "Successful"


__all__ = ["analyse", "analysis_queries", "custom_query", "interim_analysis", "verdict"]
