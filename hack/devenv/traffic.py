"""The traffic driver: Soom sign-ups sent through the router at a set rate, logged per request.

Every request is a POST of one fresh Soom record (`upsell.generator.SoomStream`) to the router's
predict path, carrying a user id in the sticky header. User ids come from a fixed pool drawn from
the generator, so each user comes back many times and stickiness can be checked; the features are
drawn fresh for every request, so the predicted-label distribution follows the scenario rather
than the few hundred records of a pool. The scenario switches at set times (`baseline`, then
`concept-drift`), or when the caller says (`switch_scenario`). The driver is bounded by a number
of requests and a duration, whichever comes first, and sends open-loop: request i is due at
i / rate seconds, whatever the latency of earlier ones. With a `FeedbackPlan`, each answered
prediction's true label (from the same generated record) goes back to the router's /feedback
later, as real labels do (`devenv.feedback_sender`).

Each request becomes one JSON line in the log: when it was sent, the scenario, the user, the
status, the variant the router says served it (`X-Rollforward-Variant`) and what the bento
answered (label, version). `sticky_violations` reads such a log back and finds users who went
from a challenger back to the champion.

    python -m devenv.traffic drive --url http://127.0.0.1:8080 --rate 20 --duration 60 \\
        --switch-at 30 --log traffic.jsonl
    python -m devenv.traffic sticky --log traffic.jsonl --champion champion
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from devenv.feedback_sender import FeedbackPlan, FeedbackSender, label_delay, label_delay_scale
from devenv.netns import NETNS_DIR, enter
from rollforward.routers.nginx_config import DEFAULT_SERVED_BY_HEADER
from rollforward.serving.contract import PREDICT_PATH
from upsell.generator import GeneratorConfig, SoomStream, generate

DEFAULT_STICKY_HEADER = "X-User-Id"


@dataclass(frozen=True)
class ScenarioSwitch:
    """From `at_seconds` after the start on, records come from `scenario`."""

    at_seconds: float
    scenario: str


@dataclass(frozen=True)
class TrafficPlan:
    url: str
    rate: float = 20.0
    duration_seconds: float = 60.0
    max_requests: int | None = None
    initial_scenario: str = "baseline"
    switches: tuple[ScenarioSwitch, ...] = ()
    users: int = 500
    seed: int = 1
    sticky_header: str = DEFAULT_STICKY_HEADER
    served_by_header: str = DEFAULT_SERVED_BY_HEADER
    path: str = PREDICT_PATH
    request_timeout: float = 10.0
    # In-flight requests at most; enough to keep the rate through the router's latency.
    concurrency: int = 8
    # A network namespace (its /run/netns path) the sending threads enter: a real node's
    # Service addresses exist only inside its namespace.
    netns: str | None = None
    # Delayed /feedback labels of the answered predictions; none when empty.
    feedback: FeedbackPlan | None = None


@dataclass(frozen=True)
class TrafficRecord:
    """One request, as logged."""

    seq: int
    sent_at: str
    elapsed: float
    scenario: str
    user_id: str
    status: int
    variant: str | None
    label: str | None = None
    version: str | None = None
    latency_ms: float = 0.0
    error: str | None = None

    @classmethod
    def from_json(cls, line: str) -> TrafficRecord:
        return cls(**json.loads(line))


@dataclass
class TrafficStats:
    """Counts so far, for progress displays."""

    sent: int = 0
    completed: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_variant: Counter[str] = field(default_factory=Counter)
    by_scenario: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Truth:
    """What the generator says about one request's user: the true label, and how many seconds
    after the prediction it becomes known."""

    label: str
    delay: float


def _generator_config(plan: TrafficPlan) -> GeneratorConfig:
    """The generator's knobs for `plan`: label delays compressed to the feedback's horizon."""
    if plan.feedback is None:
        return GeneratorConfig()
    return GeneratorConfig(label_delay_scale=label_delay_scale(plan.feedback.horizon_seconds))


def user_pool(users: int, seed: int) -> list[str]:
    """Stable user ids drawn from the Soom generator."""
    return [str(u) for u in generate("baseline", users, seed)["user_id"]]


class TrafficDriver:
    """Sends `plan` to its router, logging to `log_path`; `run()` blocks, `start()` does not."""

    def __init__(self, plan: TrafficPlan, log_path: Path) -> None:
        self.plan = plan
        self.log_path = log_path
        self.stats = TrafficStats()
        self._users = user_pool(plan.users, plan.seed)
        self._rng = np.random.default_rng(plan.seed)
        self._stream = SoomStream(plan.initial_scenario, plan.seed, config=_generator_config(plan))
        self.feedback: FeedbackSender | None = None
        if plan.feedback is not None:
            self.feedback = FeedbackSender(
                plan.url, plan.feedback, plan.sticky_header, self._enter_netns
            )
        self._pending_switches = sorted(plan.switches, key=lambda s: s.at_seconds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log: IO[str] | None = None
        self._started = 0.0

    @property
    def scenario(self) -> str:
        return self._stream.scenario

    def switch_scenario(self, scenario: str) -> None:
        """From the next request on, records come from `scenario` (e.g. inject drift now)."""
        with self._lock:
            if scenario != self._stream.scenario:
                self._stream = self._stream.with_scenario(scenario)

    def start(self) -> TrafficDriver:
        if self.feedback is not None:
            self.feedback.start()
        self._thread = threading.Thread(target=self.run, name="traffic-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending; requests in flight still finish and are logged."""
        self._stop.set()
        self.join()
        if self.feedback is not None:
            self.feedback.stop()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> TrafficStats:
        plan = self.plan
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        limit = plan.max_requests if plan.max_requests is not None else sys.maxsize
        with (
            self.log_path.open("a") as self._log,
            ThreadPoolExecutor(
                plan.concurrency, thread_name_prefix="traffic", initializer=self._enter_netns
            ) as pool,
        ):
            seq = 0
            while seq < limit and not self._stop.is_set():
                due = self._started + seq / plan.rate
                elapsed = due - self._started
                if elapsed >= plan.duration_seconds:
                    break
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                self._apply_switches(time.monotonic() - self._started)
                request = self._next_request(seq)
                pool.submit(self._send, *request)
                seq += 1
        self._log = None
        return self.stats

    def _enter_netns(self) -> None:
        if self.plan.netns is not None:
            enter(Path(self.plan.netns))

    def _apply_switches(self, elapsed: float) -> None:
        while self._pending_switches and self._pending_switches[0].at_seconds <= elapsed:
            self.switch_scenario(self._pending_switches.pop(0).scenario)

    def _next_request(self, seq: int) -> tuple[int, str, str, dict[str, Any], Truth]:
        with self._lock:
            user = self._users[int(self._rng.integers(len(self._users)))]
            scenario = self._stream.scenario
            now = datetime.now(UTC)
            event = self._stream.sample(now)
            record = dict(event.record, user_id=user)
            self.stats.sent += 1
            self.stats.by_scenario[scenario] += 1
        return (
            seq,
            scenario,
            user,
            record,
            Truth(event.label, label_delay(now, event.label_known_at)),
        )

    def _send(
        self, seq: int, scenario: str, user: str, record: Mapping[str, Any], truth: Truth
    ) -> None:
        plan = self.plan
        sent_at = datetime.now(UTC)
        began = time.monotonic()
        request = urllib.request.Request(
            plan.url.rstrip("/") + plan.path,
            data=json.dumps(record).encode(),
            headers={"Content-Type": "application/json", plan.sticky_header: user},
            method="POST",
        )
        status, variant, body, error = 0, None, None, None
        try:
            with urllib.request.urlopen(request, timeout=plan.request_timeout) as response:
                status, variant = response.status, response.headers.get(plan.served_by_header)
                body = _json_or_none(response.read())
        except urllib.error.HTTPError as failure:
            status, variant = failure.code, failure.headers.get(plan.served_by_header)
            error = failure.read().decode(errors="replace")[:200]
        except (urllib.error.URLError, OSError) as failure:
            error = f"{type(failure).__name__}: {failure}"[:200]
        answer = body if isinstance(body, dict) else {}
        prediction_id = answer.get("predictionId")
        if self.feedback is not None and status == 200 and isinstance(prediction_id, str):
            self.feedback.submit(time.monotonic() + truth.delay, prediction_id, truth.label)
        entry = TrafficRecord(
            seq=seq,
            sent_at=sent_at.isoformat(),
            elapsed=round(began - self._started, 4),
            scenario=scenario,
            user_id=user,
            status=status,
            variant=variant,
            label=answer.get("label"),
            version=answer.get("version"),
            latency_ms=round((time.monotonic() - began) * 1000, 2),
            error=error,
        )
        self._write(entry)

    def _write(self, entry: TrafficRecord) -> None:
        with self._lock:
            self.stats.completed += 1
            self.stats.by_status[entry.status] += 1
            self.stats.by_variant[entry.variant or "-"] += 1
            if self._log is not None:
                self._log.write(json.dumps(asdict(entry)) + "\n")
                self._log.flush()


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- reading a log back -----------------------------------------------------------------------


def read_log(path: Path) -> list[TrafficRecord]:
    """The records of a traffic log, in the order they were sent."""
    records = [TrafficRecord.from_json(line) for line in path.read_text().splitlines() if line]
    return sorted(records, key=lambda r: r.seq)


def variant_sequences(records: Iterable[TrafficRecord]) -> dict[str, list[str]]:
    """Per user, the variants that served their requests, in sending order (unrouted skipped)."""
    sequences: dict[str, list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.seq):
        if record.variant:
            sequences[record.user_id].append(record.variant)
    return dict(sequences)


@dataclass(frozen=True)
class StickyViolation:
    """A user served by a challenger, then by the champion again."""

    user_id: str
    challenger: str
    seq_on_challenger: int
    seq_back_on_champion: int


def sticky_violations(
    records: Iterable[TrafficRecord],
    champion: str,
    window: Callable[[TrafficRecord], bool] = lambda _: True,
) -> list[StickyViolation]:
    """Users who moved from any non-champion variant back to `champion`, among the records
    `window` keeps (e.g. those sent between the canary's start and its promotion or rollback)."""
    first_off_champion: dict[str, TrafficRecord] = {}
    violations = []
    reported: set[str] = set()
    for record in sorted(records, key=lambda r: r.seq):
        if not record.variant or not window(record) or record.user_id in reported:
            continue
        if record.variant != champion:
            first_off_champion.setdefault(record.user_id, record)
        elif record.user_id in first_off_champion:
            earlier = first_off_champion[record.user_id]
            violations.append(
                StickyViolation(record.user_id, str(earlier.variant), earlier.seq, record.seq)
            )
            reported.add(record.user_id)
    return violations


def variant_shares(records: Sequence[TrafficRecord]) -> dict[str, float]:
    """Share of routed requests per variant."""
    counts = Counter(r.variant for r in records if r.variant)
    total = sum(counts.values())
    return {variant: count / total for variant, count in sorted(counts.items())} if total else {}


# --- command line -----------------------------------------------------------------------------


def _drive(args: argparse.Namespace) -> int:
    switches = tuple(
        ScenarioSwitch(float(at), scenario)
        for at, scenario in (s.split(":", 1) for s in args.switch)
    )
    if args.switch_at is not None:
        switches += (ScenarioSwitch(args.switch_at, args.to_scenario),)
    plan = TrafficPlan(
        url=args.url,
        rate=args.rate,
        duration_seconds=args.duration,
        max_requests=args.max_requests,
        initial_scenario=args.scenario,
        switches=switches,
        users=args.users,
        seed=args.seed,
        netns=str(NETNS_DIR / args.netns) if args.netns else None,
        feedback=None if args.feedback_horizon is None else FeedbackPlan(args.feedback_horizon),
    )
    driver = TrafficDriver(plan, args.log).start()
    driver.join()
    driver.stop()
    stats = driver.stats
    print(
        f"sent {stats.sent}, completed {stats.completed}; status {dict(stats.by_status)}; "
        f"variants {dict(stats.by_variant)}; scenarios {dict(stats.by_scenario)}"
    )
    if driver.feedback is not None:
        print(f"feedback: {driver.feedback.stats}")
    return 0


def _sticky(args: argparse.Namespace) -> int:
    records = read_log(args.log)
    violations = sticky_violations(records, args.champion)
    users = len(variant_sequences(records))
    shares = variant_shares(records)
    print(f"{len(records)} requests, {users} users, shares {shares}; {len(violations)} violations")
    for violation in violations[:20]:
        print(f"  {violation}")
    return 1 if violations else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.traffic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    drive = commands.add_parser("drive", help="send traffic through a router")
    drive.add_argument("--url", required=True, help="the router, e.g. http://10.96.3.4:80")
    drive.add_argument(
        "--netns", help="send from inside this network namespace (a real node's `rf-<id>`)"
    )
    drive.add_argument("--log", type=Path, required=True, help="JSONL log to append to")
    drive.add_argument("--rate", type=float, default=20.0, help="requests per second")
    drive.add_argument("--duration", type=float, default=60.0, help="seconds, at most")
    drive.add_argument("--max-requests", type=int)
    drive.add_argument("--scenario", default="baseline")
    drive.add_argument("--switch-at", type=float, help="seconds after start to switch scenario")
    drive.add_argument("--to-scenario", default="concept-drift")
    drive.add_argument(
        "--switch", action="append", default=[], metavar="SECONDS:SCENARIO", help="repeatable"
    )
    drive.add_argument("--users", type=int, default=500)
    drive.add_argument("--seed", type=int, default=1)
    drive.add_argument(
        "--feedback-horizon",
        type=float,
        metavar="SECONDS",
        help="send each prediction's true label to /feedback, the 90-day horizon compressed to "
        "this many seconds",
    )
    sticky = commands.add_parser("sticky", help="find users who went back to the champion")
    sticky.add_argument("--log", type=Path, required=True)
    sticky.add_argument("--champion", default="champion")
    args = parser.parse_args(argv)
    return _drive(args) if args.command == "drive" else _sticky(args)


if __name__ == "__main__":
    sys.exit(main())
