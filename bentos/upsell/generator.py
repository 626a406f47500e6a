"""Synthetic Soom sign-ups: seeded, reproducible, with named drift scenarios.

Each record joins three services: billing (plan history), users (country, company size,
channel) and product usage in the first 14 days (meetings, minutes, hits on the free plan's
45-minute limit, event types). The label says whether the user upgraded within 90 days.

Two populations mix: "personal" users (small, short meetings) and "business" users (larger
companies, long meetings that hit the limit, webinars and conferences). Scenarios move the
mix or the conversion behaviour over time; see `SCENARIOS`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from upsell.schema import (
    COMPANY_SIZES,
    COUNTRIES,
    EVENT_TYPES,
    FREE_PLAN_LIMIT_MINUTES,
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    REGION_OF_COUNTRY,
    SIGNUP_CHANNELS,
    USAGE_WINDOW_DAYS,
)

SCENARIOS: Final = {
    "baseline": "the population the first model was trained on",
    "new-category": "the product team adds a 'festival' event type",
    "locality": "sign-ups shift to one region (APAC), which converts differently",
    "seasonality": "a weekly cycle: business sign-ups peak mid-week, personal ones at weekends",
    "concept-drift": "after a pivot, sign-ups skew personal and the same features convert less",
    "label-delay": "baseline data whose labels are revealed only up to 90 days later",
}
DEFAULT_START: Final = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_HORIZON: Final = timedelta(days=90)
FESTIVAL: Final = "festival"


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the scenarios; defaults give the documented behaviour."""

    # Time covered by `generate`; sign-up times are spread evenly at random across it.
    span: timedelta = timedelta(days=180)
    # concept-drift: when the pivot happens, as a fraction of `span` (or an absolute time).
    pivot_fraction: float = 0.6
    pivot_at: datetime | None = None
    # seasonality: the cycle's period (tests use seconds) and its strength.
    period: timedelta = timedelta(days=7)
    seasonal_amplitude: float = 0.35
    # new-category: share of users who have hosted a festival.
    festival_share: float = 0.35
    # locality: share of sign-ups from the favoured region.
    locality_share: float = 0.8
    # locality: how much less (logit) APAC converts for the same features; 0 leaves a pure
    # covariate shift (only the mix of sign-ups moves).
    locality_conversion_shift: float = 0.5
    # Multiplies label delays, so a traffic driver can compress 90 days into seconds.
    label_delay_scale: float = 1.0


@dataclass(frozen=True)
class _Mix:
    """Per-record parameters at each record's sign-up time."""

    business_share: np.ndarray
    post_pivot: np.ndarray


def generate(
    scenario: str,
    n: int,
    seed: int,
    *,
    start: datetime | None = None,
    config: GeneratorConfig | None = None,
) -> pd.DataFrame:
    """`n` sign-ups of `scenario`, ordered by sign-up time from `start` over `config.span`.

    label-delay: `upgraded` is missing (pd.NA) where the label is not known by the end
    of the span, exactly as a training extract taken "now" would see it.
    """
    _check_scenario(scenario)
    cfg = config or GeneratorConfig()
    origin = start or DEFAULT_START
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0.0, cfg.span.total_seconds(), size=n))
    times = pd.to_datetime(origin) + pd.to_timedelta(offsets, unit="s")
    frame = _sample(rng, scenario, cfg, times, pivot=_pivot(cfg, origin))
    frame.insert(0, "user_id", [f"u{seed:x}-{i:07d}" for i in range(n)])
    if scenario == "label-delay":
        end = pd.Timestamp(origin + cfg.span)
        frame["upgraded"] = (
            frame["upgraded"].astype("boolean").where(frame["label_known_at"] <= end, pd.NA)
        )
    return frame


def records(
    scenario: str,
    n: int,
    seed: int,
    *,
    start: datetime | None = None,
    config: GeneratorConfig | None = None,
) -> Iterator[dict[str, Any]]:
    """The prediction payloads of `generate(...)`: what a client would POST to /predict."""
    for row in generate(scenario, n, seed, start=start, config=config).itertuples(index=False):
        yield payload_of(row._asdict())


def payload_of(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready /predict record from one generated row (no label, no bookkeeping)."""
    return {
        "user_id": row["user_id"],
        "signup_at": pd.Timestamp(row["signup_at"]).isoformat(),
        "had_paid_plan": bool(row["had_paid_plan"]),
        "card_on_file": bool(row["card_on_file"]),
        "country": row["country"],
        "region": row["region"],
        "company_size": row["company_size"],
        "signup_channel": row["signup_channel"],
        "days_active": int(row["days_active"]),
        "meetings": int(row["meetings"]),
        "minutes": round(float(row["minutes"]), 1),
        "limit_hits": int(row["limit_hits"]),
        "event_types": list(row["event_types"]),
    }


def label_of(upgraded: bool) -> str:
    return POSITIVE_LABEL if upgraded else NEGATIVE_LABEL


@dataclass(frozen=True)
class SoomEvent:
    """One live sign-up: the payload to predict on, and the truth that arrives later."""

    record: dict[str, Any]
    label: str
    label_known_at: datetime


class SoomStream:
    """Live traffic for a traffic driver: `sample(now)` draws one sign-up at time `now`.

    Seeded and reproducible for a given sequence of times. The scenario's clock starts at
    `start` (default: the first `sample` call), so seasonality's phase and concept-drift's
    pivot (`config.pivot_at`, default: immediately) are relative to it.
    """

    def __init__(
        self,
        scenario: str,
        seed: int,
        *,
        start: datetime | None = None,
        config: GeneratorConfig | None = None,
    ) -> None:
        _check_scenario(scenario)
        self.scenario = scenario
        self.seed = seed
        self.config = config or GeneratorConfig()
        self._start = start
        self._rng = np.random.default_rng(seed)
        self._count = 0

    def sample(self, now: datetime) -> SoomEvent:
        start = self._start or now
        self._start = start
        cfg = self.config
        pivot = cfg.pivot_at or start
        frame = _sample(self._rng, self.scenario, cfg, pd.DatetimeIndex([now]), pivot=pivot)
        row = frame.iloc[0].to_dict()
        row["user_id"] = f"s{self.seed:x}-{self._count:07d}"
        self._count += 1
        return SoomEvent(
            record=payload_of(row),
            label=label_of(bool(row["upgraded"])),
            label_known_at=pd.Timestamp(row["label_known_at"]).floor("us").to_pydatetime(),
        )

    def with_scenario(self, scenario: str) -> SoomStream:
        """The same stream (seed, clock) switched to another scenario, e.g. at a pivot."""
        switched = SoomStream(
            scenario, self.seed + self._count, start=self._start, config=self.config
        )
        switched._count = self._count
        return switched


def seasonal_business_share(moment: datetime, config: GeneratorConfig | None = None) -> float:
    """Share of business sign-ups at `moment` in `seasonality` (the cycle's phase is measured
    from DEFAULT_START), so a driver or a test can tell a peak from a trough."""
    cfg = config or GeneratorConfig()
    seconds = (pd.Timestamp(moment) - pd.Timestamp(DEFAULT_START)).total_seconds()
    return float(_seasonal_share(np.array([seconds]), cfg)[0])


def _seasonal_share(seconds: np.ndarray, cfg: GeneratorConfig) -> np.ndarray:
    phase = 2 * math.pi * seconds / cfg.period.total_seconds()
    share: np.ndarray = 0.5 + cfg.seasonal_amplitude * np.sin(phase)
    return share


def _check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")


def _pivot(cfg: GeneratorConfig, origin: datetime) -> datetime:
    return cfg.pivot_at or origin + cfg.span * cfg.pivot_fraction


def _mix(scenario: str, cfg: GeneratorConfig, times: pd.DatetimeIndex, pivot: datetime) -> _Mix:
    n = len(times)
    share = np.full(n, 0.5)
    post_pivot = np.zeros(n, dtype=bool)
    if scenario == "seasonality":
        seconds = (times - pd.Timestamp(DEFAULT_START)).total_seconds().to_numpy()
        share = _seasonal_share(seconds, cfg)
    elif scenario == "concept-drift":
        post_pivot = np.asarray(times >= pd.Timestamp(pivot))
        share = np.where(post_pivot, 0.3, 0.5)
    return _Mix(business_share=share, post_pivot=post_pivot)


def _choice(rng: np.random.Generator, options: tuple[str, ...], weights: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: weights has one row of probabilities per record."""
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    index = (rng.random((weights.shape[0], 1)) > cumulative).sum(axis=1)
    chosen: np.ndarray = np.asarray(options, dtype=object)[np.minimum(index, len(options) - 1)]
    return chosen


_SIZE_WEIGHTS = {
    False: np.array([0.55, 0.33, 0.09, 0.02, 0.01]),  # personal
    True: np.array([0.05, 0.25, 0.35, 0.20, 0.15]),  # business
}
_SIZE_EFFECT = {"1": -0.6, "2-10": 0.0, "11-50": 0.45, "51-200": 0.7, "201+": 0.8}
_CHANNEL_WEIGHTS = np.array([0.45, 0.25, 0.20, 0.10])
_CHANNEL_EFFECT = {"organic": 0.0, "ads": -0.35, "referral": 0.4, "partner": 0.55}
_COUNTRY_WEIGHTS = np.array(
    [0.30, 0.05, 0.08, 0.07, 0.05, 0.03, 0.12, 0.06, 0.04, 0.02, 0.10, 0.05, 0.03]
)
_REGION_EFFECT = {"NA": 0.2, "EMEA": 0.1, "APAC": -0.1, "LATAM": -0.25}


def _sample(
    rng: np.random.Generator,
    scenario: str,
    cfg: GeneratorConfig,
    times: pd.DatetimeIndex,
    *,
    pivot: datetime,
) -> pd.DataFrame:
    n = len(times)
    mix = _mix(scenario, cfg, times, pivot)
    business = rng.random(n) < mix.business_share

    size = _choice(
        rng, COMPANY_SIZES, np.where(business[:, None], _SIZE_WEIGHTS[True], _SIZE_WEIGHTS[False])
    )
    channel_weights = np.tile(_CHANNEL_WEIGHTS, (n, 1))
    # The pivot comes with an ads campaign aimed at individuals.
    channel_weights[mix.post_pivot] = [0.25, 0.60, 0.10, 0.05]
    channel = _choice(rng, SIGNUP_CHANNELS, channel_weights)
    country_weights = np.tile(_COUNTRY_WEIGHTS, (n, 1))
    if scenario == "locality":
        apac = np.array([REGION_OF_COUNTRY[c] == "APAC" for c in COUNTRIES])
        country_weights[:, apac] *= cfg.locality_share / _COUNTRY_WEIGHTS[apac].sum()
        country_weights[:, ~apac] *= (1 - cfg.locality_share) / _COUNTRY_WEIGHTS[~apac].sum()
    country = _choice(rng, COUNTRIES, country_weights)
    region = np.array([REGION_OF_COUNTRY[c] for c in country], dtype=object)

    had_paid = rng.random(n) < np.where(business, 0.18, 0.07)
    card = rng.random(n) < np.where(business, 0.30, 0.12)
    days_active = rng.binomial(USAGE_WINDOW_DAYS, np.where(business, 0.55, 0.35))
    meetings = rng.poisson(np.where(business, 9.0, 4.0) * (0.4 + days_active / USAGE_WINDOW_DAYS))
    mean_length = np.where(business, 42.0, 28.0)
    # After the pivot the free plan's users hold shorter meetings (the limit matters less).
    mean_length = np.where(mix.post_pivot, mean_length * 0.85, mean_length)
    lengths_sum = rng.gamma(np.maximum(meetings, 1) * 4.0, mean_length / 4.0) * (meetings > 0)
    minutes = np.round(lengths_sum, 1)
    hit_rate = 1.0 / (1.0 + np.exp(-(mean_length - FREE_PLAN_LIMIT_MINUTES) / 6.0))
    limit_hits = rng.binomial(meetings, hit_rate)

    conference = rng.random(n) < np.where(business, 0.45, 0.10)
    webinar = rng.random(n) < np.where(business, 0.30, 0.05)
    meetup = rng.random(n) < np.where(business, 0.08, np.where(mix.post_pivot, 0.45, 0.30))
    meeting = (rng.random(n) < 0.95) | ~(conference | webinar | meetup)
    festival = rng.random(n) < (cfg.festival_share if scenario == "new-category" else 0.0)
    flags = {
        "meeting": meeting,
        "conference": conference,
        "webinar": webinar,
        "meetup": meetup,
        FESTIVAL: festival,
    }
    event_types = [[name for name in (*EVENT_TYPES, FESTIVAL) if flags[name][i]] for i in range(n)]

    logit = (
        -3.0
        + 0.55 * np.minimum(limit_hits, 6)
        + np.array([_SIZE_EFFECT[s] for s in size])
        + np.array([_CHANNEL_EFFECT[c] for c in channel])
        + np.array([_REGION_EFFECT[r] for r in region])
        + 0.9 * webinar
        + 0.5 * conference
        - 0.3 * meetup
        + 0.3 * festival
        + 1.1 * card
        + 0.9 * had_paid
        + 0.08 * days_active
    )
    if scenario == "locality":
        logit = logit - cfg.locality_conversion_shift * (region == "APAC")
    # After the pivot the same features convert less: upgrades matter less to the business.
    logit = np.where(mix.post_pivot, logit - 1.0, logit)
    upgraded = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    # Upgrades happen early more often than late; a non-upgrade is known only at 90 days.
    upgrade_day = np.minimum(rng.exponential(20.0, n), LABEL_HORIZON.days - 1) + 1
    delay_days = np.where(upgraded, upgrade_day, LABEL_HORIZON.days) * cfg.label_delay_scale
    label_known_at = times + pd.to_timedelta(delay_days, unit="D")

    return pd.DataFrame(
        {
            "signup_at": times,
            "had_paid_plan": had_paid,
            "card_on_file": card,
            "country": country,
            "region": region,
            "company_size": size,
            "signup_channel": channel,
            "days_active": days_active,
            "meetings": meetings,
            "minutes": minutes,
            "limit_hits": limit_hits,
            "event_types": event_types,
            "upgraded": upgraded,
            "label_known_at": label_known_at,
            "post_pivot": mix.post_pivot,
        }
    )


def with_config(config: GeneratorConfig | None, **changes: Any) -> GeneratorConfig:
    """A copy of `config` (or the defaults) with some knobs changed."""
    return replace(config or GeneratorConfig(), **changes)
