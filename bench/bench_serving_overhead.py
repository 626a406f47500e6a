"""Per-request latency of the Soom bento with and without rollforward.serving instrumentation.

Both servers run the same bento, on the same machine, in the same run; only
ROLLFORWARD_INSTRUMENT differs. With it off the bento still sanitizes input and predicts,
but exports no rollforward_* metrics, logs no anomalies and issues no prediction ids.
Requests alternate between the two servers so that a change in machine load hits both
alike. The result is a ratio, written as Markdown (target: <= 1.10).

    PYTHONPATH=operator:bentos:tests python bench/bench_serving_overhead.py
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devenv.bento import BentoServer, build_soom_bento, start_bento_server
from upsell.generator import records

TARGET_RATIO = 1.10
BASE_ENV = {
    "ROLLFORWARD_MODEL": "soom-upsell",
    "ROLLFORWARD_VERSION": "bench",
    "ROLLFORWARD_SEGMENT_FIELD": "region",
}


@dataclass(frozen=True)
class Latencies:
    name: str
    seconds: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)


def measure(
    servers: dict[str, BentoServer], bodies: list[bytes], warmup: int
) -> dict[str, Latencies]:
    connections = {
        name: http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for name, server in servers.items()
    }
    timings: dict[str, list[float]] = {name: [] for name in servers}
    for index, body in enumerate(bodies):
        # Alternate which server goes first, so neither always follows the other.
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        for name in order:
            elapsed = _post(connections[name], body)
            if index >= warmup:
                timings[name].append(elapsed)
    for connection in connections.values():
        connection.close()
    return {name: Latencies(name, values) for name, values in timings.items()}


def _post(connection: http.client.HTTPConnection, body: bytes) -> float:
    started = time.perf_counter()
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"/predict answered {response.status}")
    return elapsed


def report(results: dict[str, Latencies], requests: int) -> str:
    on, off = results["instrumented"], results["plain"]
    ratio_median = on.median / off.median
    ratio_mean = on.mean / off.mean
    verdict = "within" if ratio_median <= TARGET_RATIO else "ABOVE"
    rows = [
        f"| {r.name} | {r.median * 1e3:.2f} | {r.mean * 1e3:.2f} | {r.quantile(0.9) * 1e3:.2f} "
        f"| {r.quantile(0.99) * 1e3:.2f} |"
        for r in (on, off)
    ]
    return "\n".join(
        [
            "# Serving overhead of rollforward.serving",
            "",
            f"Run at {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {requests} single-record "
            "`POST /predict` requests per server, alternating, after warm-up.",
            "",
            "| server | median ms | mean ms | p90 ms | p99 ms |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"**Latency ratio, instrumented / plain: {ratio_median:.3f} (median), "
            f"{ratio_mean:.3f} (mean)**; target <= {TARGET_RATIO:.2f}: {verdict} target.",
            "",
            "Same bento, same machine, same run; only `ROLLFORWARD_INSTRUMENT` differs.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("bench-results/serving-overhead.md"))
    args = parser.parse_args()
    bodies = [json.dumps(r).encode() for r in records("baseline", args.requests + args.warmup, 3)]
    with tempfile.TemporaryDirectory(prefix="bench-bento-") as workdir:
        home = Path(workdir) / "bentoml"
        tag = build_soom_bento(home)
        servers: dict[str, BentoServer] = {}
        try:
            for name, instrument in (("instrumented", "true"), ("plain", "false")):
                env = {
                    **BASE_ENV,
                    "ROLLFORWARD_VARIANT": name,
                    "ROLLFORWARD_INSTRUMENT": instrument,
                }
                servers[name] = start_bento_server(tag, home, Path(workdir) / name, env=env)
            results = measure(servers, bodies, args.warmup)
        finally:
            for server in servers.values():
                server.stop()
    text = report(results, args.requests)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
