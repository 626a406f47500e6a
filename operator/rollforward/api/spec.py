"""The desired state of a ModelDeployment, as written in Git. The operator never writes it.

Every rule the OpenAPI schema cannot express is written twice on purpose, next to each
other: a pydantic validator (for the CLI, the tests and the bentos) and a CEL rule in
`x-kubernetes-validations` (for the API server, so GitOps users see the error at sync).
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from rollforward.api.base import ApiModel, DnsLabel, Duration, HeaderName, parse_duration
from rollforward.api.schedule import SCHEDULE_PATTERN, is_valid


def _cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


def field_error(relative_path: str, message: str) -> ValueError:
    """An error of a cross-field validator that names the field it is about, relative to the
    model being validated (rollforward.api.resource.validation_messages joins the paths)."""
    return ValueError(f"{relative_path}: {message}")


def _quantity_to_str(value: object) -> object:
    # Kubernetes users write `cpu: 1` as often as `cpu: "1"`; both mean the same quantity.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity_to_str),
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|E|Ei)?$",
        json_schema_extra={"x-kubernetes-int-or-string": True},
    ),
]


class VariantRole(StrEnum):
    """What a variant is for in the A/B split."""

    CHAMPION = "champion"
    """The model that serves by default; exactly one per ModelDeployment."""
    CHALLENGER = "challenger"
    """A model that gets a share of the traffic to be compared with the champion."""
    SHADOW = "shadow"
    """A model that receives a mirrored copy of the traffic; its answers are discarded."""


class Resources(ApiModel):
    """Compute resources of one container, as in a Pod spec."""

    requests: dict[str, Quantity] | None = None
    """Minimum resources, e.g. {cpu: 250m, memory: 512Mi}."""
    limits: dict[str, Quantity] | None = None
    """Maximum resources, e.g. {memory: 1Gi}."""


class Variant(ApiModel):
    """One model version served behind the router."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.bento) || has(self.image)", "set bento, image, or both"),
                _cel(
                    "self.role != 'shadow' || self.weight == 0",
                    "a shadow variant receives mirrored traffic only, so its weight must be 0",
                    ".weight",
                ),
            ]
        }
    )

    name: DnsLabel
    """Variant name, unique in this ModelDeployment; it names the child Deployment and Service."""
    role: VariantRole = VariantRole.CHALLENGER
    """champion, challenger or shadow."""
    bento: str | None = Field(
        default=None, pattern=r"^[a-z0-9][a-z0-9._-]*(:[A-Za-z0-9._-]+)?$", max_length=128
    )
    """BentoML bento tag to serve, e.g. upsell:v1 (run as `bentoml serve <tag>`)."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Container image. With bento set it runs `bentoml serve <bento>`; alone, its entrypoint."""
    replicas: int = Field(default=1, ge=0, le=100)
    """Number of pods of this variant."""
    resources: Resources | None = None
    """Compute resources of the serving container."""
    weight: int = Field(default=0, ge=0, le=100)
    """Percentage of traffic routed to this variant; weights of all variants sum to 100."""

    @model_validator(mode="after")
    def _check_source_and_shadow(self) -> Variant:
        if self.bento is None and self.image is None:
            raise ValueError("set bento, image, or both")
        if self.role is VariantRole.SHADOW and self.weight != 0:
            raise field_error("weight", "a shadow variant receives mirrored traffic only, so 0")
        return self


class RouterKind(StrEnum):
    """How traffic is split between the variants."""

    NGINX = "nginx"
    """An operator-owned nginx with sticky weighted split_clients (the default)."""
    GATEWAY_API = "gateway-api"
    """A Gateway API HTTPRoute with weighted backendRefs; random per request, not sticky."""
    SERVICE = "service"
    """No router: one Service over all variants, split approximately by replica ratio."""


class GatewayRef(ApiModel):
    """The Gateway an HTTPRoute attaches to (router gateway-api only)."""

    name: DnsLabel
    """Gateway name."""
    namespace: DnsLabel | None = None
    """Gateway namespace; the ModelDeployment's own when empty."""


SERVED_BY_HEADER = "x-rollforward-variant"
"""Response header naming the variant that served; reserved, so no request header may use it."""


class TrafficSpec(ApiModel):
    """How requests reach the variants."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.stickyHeader) || !has(self.pinHeader) || "
                    "self.stickyHeader.lowerAscii() != self.pinHeader.lowerAscii()",
                    "pinHeader must differ from stickyHeader",
                    ".pinHeader",
                ),
                _cel(
                    f"!has(self.pinHeader) || self.pinHeader.lowerAscii() != '{SERVED_BY_HEADER}'",
                    f"{SERVED_BY_HEADER} is the response header naming the serving variant",
                    ".pinHeader",
                ),
            ]
        }
    )

    router: RouterKind = RouterKind.NGINX
    """nginx (sticky, default), gateway-api, or service."""
    sticky_header: HeaderName = "x-user-id"
    """Request header whose value keeps a user on one variant; missing means a random bucket."""
    pin_header: HeaderName = "x-rollforward-pin"
    """Request header naming a variant that must serve the request, for tests and debugging."""
    gateway: GatewayRef | None = None
    """Parent Gateway of the HTTPRoute; required when router is gateway-api."""

    @model_validator(mode="after")
    def _headers_differ(self) -> TrafficSpec:
        if self.pin_header.lower() == self.sticky_header.lower():
            raise field_error("pinHeader", "pinHeader must differ from stickyHeader")
        if self.pin_header.lower() == SERVED_BY_HEADER:
            raise field_error(
                "pinHeader", f"{SERVED_BY_HEADER} is the response header naming the serving variant"
            )
        return self


SecretName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", min_length=1, max_length=253)
]
SecretKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)]


class SecretKeySelector(ApiModel):
    """One key of a Secret in the ModelDeployment's namespace."""

    name: SecretName
    """Secret name."""
    key: SecretKey
    """Key within the Secret's data."""


class BasicAuthSecret(ApiModel):
    """A Secret of type kubernetes.io/basic-auth (keys `username` and `password`)."""

    name: SecretName
    """Secret name, in the ModelDeployment's namespace."""


class MonitoringSpec(ApiModel):
    """Where the prediction metrics of this model are read from, and how to reach them.

    Certificates are always verified (against the system CAs, or `caSecret`) unless
    `insecureSkipVerify` says otherwise. Credentials given here are sent only to the URL they
    come with; the operator's own credentials only to the operator's default URL.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.bearerTokenSecret) && has(self.basicAuthSecret))",
                    "give bearerTokenSecret or basicAuthSecret, not both",
                )
            ]
        }
    )

    prometheus_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=512)
    """Prometheus base URL; the operator-wide default when empty."""
    ca_secret: SecretKeySelector | None = None
    """PEM CA bundle that signs Prometheus's certificate, e.g. {name: prom-ca, key: ca.crt}."""
    bearer_token_secret: SecretKeySelector | None = None
    """Bearer token sent as `Authorization: Bearer`, from a Secret."""
    basic_auth_secret: BasicAuthSecret | None = None
    """HTTP basic auth, from a kubernetes.io/basic-auth Secret."""
    insecure_skip_verify: bool = False
    """Do not verify Prometheus's certificate. Only for test setups: anyone on the path can
    then read the credentials and feed the operator fake metrics."""

    @model_validator(mode="after")
    def _one_credential(self) -> MonitoringSpec:
        if self.bearer_token_secret is not None and self.basic_auth_secret is not None:
            raise field_error(
                "basicAuthSecret", "give bearerTokenSecret or basicAuthSecret, not both"
            )
        return self

    @property
    def has_access_settings(self) -> bool:
        """Whether this spec says anything about TLS or credentials."""
        return bool(
            self.ca_secret
            or self.bearer_token_secret
            or self.basic_auth_secret
            or self.insecure_skip_verify
        )


class DriftStatistic(StrEnum):
    """How the predicted-label distribution is compared with its baseline."""

    CHI_SQUARE = "chiSquare"
    """Chi-square test on predicted-label counts; fires when p < significance (default).
    Every statistic also needs the shift to clear minEffect."""
    PSI = "psi"
    """Population Stability Index, above threshold and above the sample-size noise floor."""
    JENSEN_SHANNON = "jensenShannon"
    """Jensen-Shannon divergence, above threshold and above the sample-size noise floor."""


class BaselineKind(StrEnum):
    """What the current predicted-label distribution is compared against."""

    TRAINING = "training"
    """The distribution the bento reports from its validation set (rollforward_baseline_ratio)."""
    REFERENCE = "reference"
    """The window right after the serving version was promoted; its start is kept in status."""
    SEASONAL = "seasonal"
    """The same window at an offset in the past (e.g. 7d), so weekly cycles do not alarm."""


class BaselineSpec(ApiModel):
    """The baseline of the drift check."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.kind) || self.kind != 'seasonal' || has(self.offset)",
                    "a seasonal baseline needs offset, e.g. 7d",
                )
            ]
        }
    )

    kind: BaselineKind = BaselineKind.TRAINING
    """training, reference or seasonal."""
    offset: Duration | None = None
    """How far back the seasonal window lies, e.g. 7d. Required for kind seasonal."""
    reference_window: Duration | None = None
    """Length of the reference window after promotion; the drift window when empty."""

    @model_validator(mode="after")
    def _seasonal_needs_offset(self) -> BaselineSpec:
        if self.kind is BaselineKind.SEASONAL and self.offset is None:
            raise field_error("offset", "a seasonal baseline needs offset, e.g. 7d")
        return self


class DriftSpec(ApiModel):
    """Prediction-distribution drift detection."""

    statistic: DriftStatistic = DriftStatistic.CHI_SQUARE
    """chiSquare (default), psi or jensenShannon."""
    significance: float = Field(default=0.01, gt=0, le=0.5)
    """False-alarm level of a check for chiSquare, before hysteresis (0 < a <= 0.5)."""
    threshold: float | None = Field(default=None, gt=0, le=10)
    """Score threshold for psi (default 0.1) and jensenShannon (default 0.0125, in nats)."""
    noise_floor_multiplier: float = Field(default=4.0, ge=1, le=100)
    """psi/jensenShannon fire only above this multiple of their expected no-drift value."""
    min_effect: float = Field(default=0.03, ge=0, le=0.5)
    """Smallest shift worth an alarm, as total variation distance of the predicted-label
    shares (0.03 = 3 points); every statistic fires only when the effect's lower confidence
    bound reaches it. 0 leaves the significance test alone (0 <= minEffect <= 0.5)."""
    window: Duration = "5m"
    """Length of the current window of predictions. The default equals the interval, so the
    windows tile time: each prediction is tested once, and a check after a step sees only
    shifted traffic instead of half a window of it."""
    min_samples: int = Field(default=200, ge=10, le=100_000_000)
    """Fewer predictions than this in a window (or baseline window) is inconclusive."""
    interval: Duration = "5m"
    """How often the check runs. Checks closer than half a window share most of their data,
    so they breach together and weaken consecutiveBreaches; keep interval >= window / 2."""
    consecutive_breaches: int = Field(default=2, ge=1, le=100)
    """Breaching checks in a row before Drifted=True; as many clean checks clear it. 2 by
    default: minEffect keeps benign shifts quiet, and 2 lets a step be flagged within 3
    intervals of it whatever its phase (3 cannot: the first check may see none of it)."""
    baseline: BaselineSpec = Field(default_factory=BaselineSpec)
    """What the current window is compared against."""
    segment_label: DnsLabel | None = None
    """Evaluate each value of the bento's segment label separately (Holm-corrected)."""


class RetrainingTrigger(StrEnum):
    """What starts a retraining Job automatically. A manual request always works."""

    ON_DRIFT = "onDrift"
    """When Drifted becomes True."""
    SCHEDULE = "schedule"
    """On the cron schedule in spec.retraining.schedule."""
    MANUAL = "manual"
    """Only when asked, through the rollforward.io/retrain annotation."""


class AcceptanceSpec(ApiModel):
    """What a retrained candidate must reach before it may serve any traffic."""

    min_auc: float = Field(default=0.7, ge=0, le=1)
    """Minimum AUC on the random holdout."""
    min_recent_auc: float | None = Field(default=None, ge=0, le=1)
    """Minimum AUC on the most recent slice of data."""
    not_worse_than_champion: bool = True
    """Reject a candidate whose recent-data AUC is below the champion's by more than tolerance."""
    tolerance: float = Field(default=0.01, ge=0, le=1)
    """Allowed AUC shortfall against the champion on recent data."""


class PodSpecShape(ApiModel):
    """A Pod spec. Only what the operator relies on is checked here; the API server checks
    the rest when the operator creates the Job."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )

    containers: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    """Containers; the first runs the bento's retraining entrypoint."""


class PodTemplateSpec(ApiModel):
    """A Pod template, as in a Job."""

    metadata: dict[str, Any] | None = None
    """Labels and annotations of the retraining pod."""
    spec: PodSpecShape
    """The Pod spec."""


class RetrainingSpec(ApiModel):
    """Retraining Jobs and the gate their result must pass."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.trigger != 'schedule' || has(self.schedule)",
                    "trigger schedule needs a cron schedule",
                ),
                _cel(
                    f"!has(self.schedule) || self.schedule.matches('{SCHEDULE_PATTERN}')",
                    "schedule needs five cron fields (minute 0-59, hour 0-23, day 1-31, "
                    "month 1-12, weekday 0-7), or @hourly, @daily, @weekly or @monthly",
                    ".schedule",
                ),
            ]
        }
    )

    trigger: RetrainingTrigger = RetrainingTrigger.ON_DRIFT
    """onDrift (default), schedule or manual."""
    schedule: str | None = Field(
        default=None, pattern=r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$", max_length=128
    )
    """Cron schedule (five fields, or @daily style), for trigger schedule."""
    template: PodTemplateSpec
    """Pod template of the retraining Job."""
    acceptance: AcceptanceSpec = Field(default_factory=AcceptanceSpec)
    """The gate a candidate must pass."""
    cooldown: Duration = "1h"
    """Least time between the starts of two retraining Jobs."""
    max_per_day: int = Field(default=3, ge=1, le=100)
    """Most retraining Jobs started in any 24 hours."""
    timeout: Duration = "30m"
    """A Job running longer is stopped and counted as failed."""
    max_attempts: int = Field(default=2, ge=1, le=10)
    """Attempts per trigger, with exponential backoff between them."""

    @field_validator("schedule")
    @classmethod
    def _schedule_is_cron(cls, schedule: str | None) -> str | None:
        if schedule is not None and not is_valid(schedule):
            raise ValueError(f"{schedule!r} is not a valid cron schedule")
        return schedule

    @model_validator(mode="after")
    def _schedule_needs_cron(self) -> RetrainingSpec:
        if self.trigger is RetrainingTrigger.SCHEDULE and self.schedule is None:
            raise field_error("schedule", "trigger schedule needs a cron schedule")
        return self


class CanaryStep(ApiModel):
    """One step of a canary: give the candidate a weight, wait, then analyse."""

    weight: int = Field(ge=1, le=100)
    """Percentage of traffic to the candidate during this step."""
    pause: Duration = "1m"
    """How long the step lasts before its analysis decides."""


class ComparisonOperator(StrEnum):
    """How a custom metric's value is compared with its bound."""

    LESS_THAN = "lessThan"
    """Success when value < bound."""
    LESS_OR_EQUAL = "lessOrEqual"
    """Success when value <= bound."""
    GREATER_THAN = "greaterThan"
    """Success when value > bound."""
    GREATER_OR_EQUAL = "greaterOrEqual"
    """Success when value >= bound."""


class SuccessCondition(ApiModel):
    """A bound a metric must satisfy."""

    operator: ComparisonOperator
    """lessThan, lessOrEqual, greaterThan or greaterOrEqual."""
    value: float
    """The bound."""


class CustomMetric(ApiModel):
    """A PromQL query checked at every analysis. An empty or NaN result is inconclusive."""

    name: DnsLabel
    """Name shown in status and Events."""
    query: str = Field(min_length=1, max_length=4096)
    """PromQL returning one value; {{variant}}, {{namespace}}, {{model}} are replaced, escaped."""
    success: SuccessCondition
    """The condition the value must meet."""


class AnalysisSpec(ApiModel):
    """What is measured during and at the end of every canary step."""

    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1)
    """Allowed rise of the candidate's 5xx ratio over the champion's, absolute (0.01 = 1 pt).
    A sequential test checks it at every interval and aborts as soon as the rise is certain."""
    max_failed_requests: int | None = Field(default=None, ge=1, le=100_000_000)
    """Abort once the candidate has failed this many requests (5xx) in this canary, whatever
    the statistics say: a hard bound on the blast radius. Unset: no such bound."""
    interval: Duration = "5s"
    """How often error rate and latency are checked during a step; a failure aborts at once,
    a success still waits for the whole pause."""
    max_latency_ratio: float = Field(default=1.5, ge=1, le=100)
    """Allowed ratio of the candidate's p99 latency to the champion's."""
    prediction_drift: bool = True
    """Check the candidate's predictions against its own training baseline."""
    min_requests: int = Field(default=50, ge=1, le=100_000_000)
    """Fewer candidate requests in a step than this is inconclusive."""
    metrics: list[CustomMetric] = Field(default_factory=list, max_length=10)
    """Custom PromQL checks."""


class OnInconclusive(StrEnum):
    """What a canary does when an analysis cannot decide (missing or too little data)."""

    HOLD = "hold"
    """Keep the current step and measure again (default). Never rolls back on missing data."""
    ROLLBACK = "rollback"
    """Treat inconclusive analysis as a reason to roll back (for strict teams)."""


class Approval(StrEnum):
    """Who makes the final step to 100%."""

    AUTOMATIC = "Automatic"
    """Promote as soon as the last step's analysis succeeds."""
    MANUAL = "Manual"
    """Wait for the rollforward.io/approve annotation (or a change in Git) before promoting."""


class RolloutSpec(ApiModel):
    """How a retrained candidate goes from 0 to 100% of the traffic."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.steps) || (self.steps.map(s, s.weight).isSorted() && "
                    "self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight)))",
                    "canary step weights must be strictly increasing",
                    ".steps",
                )
            ]
        }
    )

    steps: list[CanaryStep] = Field(
        default_factory=lambda: [
            CanaryStep(weight=10, pause="1m"),
            CanaryStep(weight=50, pause="2m"),
        ],
        min_length=1,
        max_length=20,
    )
    """Canary steps, with strictly increasing weights."""
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    """The analysis run at the end of each step."""
    on_inconclusive: OnInconclusive = OnInconclusive.HOLD
    """hold (default) or rollback."""
    inconclusive_limit: int = Field(default=10, ge=1, le=1000)
    """With hold: inconclusive analyses in a row after which the canary is paused for a person."""
    approval: Approval = Approval.AUTOMATIC
    """Automatic or Manual."""
    revision_history_limit: int = Field(default=2, ge=0, le=20)
    """Old champion versions kept scaled down for a quick rollback."""

    @field_validator("steps")
    @classmethod
    def _weights_increase(cls, steps: list[CanaryStep]) -> list[CanaryStep]:
        weights = [step.weight for step in steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"canary step weights must be strictly increasing, got {weights}")
        return steps


class BentoStoreSpec(ApiModel):
    """S3-compatible object storage that carries bentos from retraining Jobs to serving pods.

    A bento tagged name:version is stored as `<prefix>/<name>/<version>.bento` (the output of
    `bentoml export`). The credentials Secret holds the keys AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; the operator reads it, and the pods get it as environment.
    """

    endpoint: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=512)
    """S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com or http://minio.storage:9000."""
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    """Bucket that holds the bentos (path-style addressing, so any S3-compatible server works)."""
    prefix: str = Field(default="bentos", pattern=r"^[A-Za-z0-9._/-]*$", max_length=256)
    """Key prefix under which bentos are stored."""
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]+$", max_length=64)
    """Region the requests are signed for."""
    credentials_secret: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253
    )
    """Secret in the ModelDeployment's namespace with AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; anonymous requests when empty."""


class QualitySpec(ApiModel):
    """Realized quality of a binary model, from the labels sent to each bento's /feedback."""

    positive_label: str = Field(min_length=1, max_length=63)
    """The positive class (e.g. upgrade): the outcome rate is its share of true labels, and
    precision and recall are computed for it."""
    interval: Duration = "5m"
    """How often outcome counts are read: one batched query per interval; each reading adds
    the interval's new labels to status.quality."""


class ExperimentMetric(StrEnum):
    """What an A/B experiment compares between the challenger and the champion."""

    OUTCOME_RATE = "outcomeRate"
    """Share of labelled predictions whose true label is quality.positiveLabel."""
    ACCURACY = "accuracy"
    """Share of labelled predictions whose predicted label was the true one."""


class OnChallengerBetter(StrEnum):
    """What a ChallengerBetter verdict does."""

    REPORT = "Report"
    """Only report the verdict (status.experiment and an Event); a person acts on it."""
    PROMOTE = "Promote"
    """Hand the challenger's version to the canary, as a retrained candidate that passed its
    gate: the same steps, analysis, approval and rollback. Once the ModelDeployment is stable
    (no retraining or canary under way, not paused); once per verdict; never a version that
    was rolled back or rejected before. Needs a challenger with a bento."""


class ExperimentSpec(ApiModel):
    """An A/B experiment between the champion and a challenger that ends in a verdict.

    A sequential test (mSPRT) looks after every quality interval, so watching it does not
    inflate false winners: over the whole experiment a false ChallengerBetter or
    ChampionBetter happens at most alpha of the time."""

    metric: ExperimentMetric = ExperimentMetric.OUTCOME_RATE
    """outcomeRate or accuracy, realized from /feedback labels."""
    challenger: DnsLabel | None = None
    """The challenger variant's name; the first variant with role challenger when empty."""
    min_effect: float = Field(default=0.02, gt=0, le=0.5)
    """Smallest difference of the metric worth acting on (0.02 = 2 points). An interval
    inside (-minEffect, +minEffect) ends the experiment as NoDifference."""
    alpha: float = Field(default=0.05, gt=0, le=0.2)
    """Bound on a false winner over the whole experiment, however often it is looked at."""
    min_samples: int = Field(default=100, ge=10, le=100_000_000)
    """Labelled predictions each variant needs before any verdict."""
    max_duration: Duration = "14d"
    """Without a verdict by then, the experiment ends Inconclusive."""
    higher_is_better: bool = True
    """Whether a higher value of the metric is the better one."""
    label_horizon: Duration = "0s"
    """How long after a prediction nearly all its labels have arrived. The experiment counts
    only labels that arrive from the first look at least this long after it (re)starts, so a
    version that has just begun serving is not judged on its early labels (e.g. only the
    positives, which come back first). 0s, the default, counts from the starting look:
    right when labels arrive within one quality interval."""
    on_challenger_better: OnChallengerBetter = OnChallengerBetter.REPORT
    """Report (default): the verdict only. Promote: the challenger goes through the canary."""


class ModelDeploymentSpec(ApiModel):
    """A model served as BentoML variants behind an A/B router, watched for drift, and
    retrained and rolled forward when it drifts."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.variants.all(v, v.role != 'shadow') || "
                    "!has(self.traffic) || self.traffic.router == 'nginx'",
                    "only the nginx router can mirror traffic to a shadow variant",
                    ".variants",
                ),
                _cel(
                    "!has(self.traffic) || self.traffic.router != 'gateway-api' || "
                    "has(self.traffic.gateway)",
                    "router gateway-api needs traffic.gateway",
                    ".traffic",
                ),
                _cel(
                    "!has(self.experiment) || has(self.quality)",
                    "an experiment needs quality (its positiveLabel)",
                    ".experiment",
                ),
                _cel(
                    "!has(self.experiment) || self.variants.exists(v, v.role == 'challenger')",
                    "an experiment needs a variant with role challenger",
                    ".experiment",
                ),
            ]
        }
    )

    model: DnsLabel
    """Model name; the `model` label of every prediction metric."""
    variants: list[Variant] = Field(
        min_length=1,
        max_length=10,
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.all(v, self.exists_one(w, w.name == v.name))",
                    "variant names must be unique",
                ),
                _cel("self.map(v, v.weight).sum() == 100", "variant weights must sum to 100"),
                _cel(
                    "self.exists_one(v, v.role == 'champion')",
                    "exactly one variant must have role champion",
                ),
            ]
        },
    )
    """The champion and its challengers (and shadows)."""
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    """Routing of requests to variants."""
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    """Where metrics are read from."""
    drift: DriftSpec = Field(default_factory=DriftSpec)
    """Prediction-distribution drift detection."""
    retraining: RetrainingSpec | None = None
    """Retraining on drift, on a schedule, or on request. No retraining when empty."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """Canary steps, analysis and promotion of retrained candidates."""
    bento_store: BentoStoreSpec | None = None
    """Where this model's bentos are stored; replaces the operator-wide store as a whole.
    With no store at all, pods serve bentos already in their image's BentoML home."""
    quality: QualitySpec | None = None
    """Realized quality per variant and version from /feedback labels. Off when empty."""
    experiment: ExperimentSpec | None = None
    """An A/B experiment of a challenger against the champion. Needs quality."""

    @field_validator("variants")
    @classmethod
    def _variants_are_consistent(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique, repeated: {', '.join(duplicates)}")
        total = sum(v.weight for v in variants)
        if total != 100:
            raise ValueError(f"variant weights must sum to 100, got {total}")
        champions = [v.name for v in variants if v.role is VariantRole.CHAMPION]
        if len(champions) != 1:
            raise ValueError(f"exactly one variant must have role champion, got {len(champions)}")
        return variants

    @model_validator(mode="after")
    def _router_capabilities(self) -> ModelDeploymentSpec:
        if self.traffic.router is not RouterKind.NGINX and any(
            v.role is VariantRole.SHADOW for v in self.variants
        ):
            raise field_error("variants", "only the nginx router can mirror traffic to a shadow")
        if self.traffic.router is RouterKind.GATEWAY_API and self.traffic.gateway is None:
            raise field_error("traffic", "router gateway-api needs traffic.gateway")
        if self.experiment is not None and self.quality is None:
            raise field_error("experiment", "an experiment needs quality (its positiveLabel)")
        if self.experiment is not None and not any(
            v.role is VariantRole.CHALLENGER for v in self.variants
        ):
            raise field_error("experiment", "an experiment needs a variant with role challenger")
        return self

    def champion(self) -> Variant:
        return next(v for v in self.variants if v.role is VariantRole.CHAMPION)


def duration_seconds(text: str) -> float:
    """Seconds in a spec duration such as "5m"."""
    return parse_duration(text).total_seconds()
