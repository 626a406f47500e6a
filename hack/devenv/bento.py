"""Build the Soom bento and run `bentoml serve` for tests, the demo and the benchmark.

Two facts of BentoML 1.4 shape this module:
- A bento server keeps its Prometheus multiprocess files in `$BENTOML_HOME/
  prometheus_multiproc_dir` and wipes that directory when it starts, so two servers sharing
  one BENTOML_HOME overwrite and then sum each other's metrics. Every server here therefore
  gets its own home, whose `bentos/` and `models/` link to the shared store.
- Building imports the service in a fresh interpreter (see upsell.packaging), so training and
  building run as `python -m upsell.retrain` in a child process; the test process never has
  to point its own BentoML at a temporary store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from devenv.processes import ManagedProcess, free_port
from rollforward.serving.contract import READINESS_PATH, RetrainingResult

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
STORE_DIRS = ("bentos", "models")

MetricKey = tuple[str, frozenset[tuple[str, str]]]


class BentoBuildError(RuntimeError):
    """Training or building the bento failed; the message holds the tool's output."""


def bentoml_env(bentoml_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a BentoML child process using `bentoml_home` as its store."""
    env = {
        **os.environ,
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("operator", "bentos")),
    }
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class RetrainRun:
    """One run of the retraining entrypoint: its exit code and its result."""

    returncode: int
    result: RetrainingResult
    stderr: str


def run_retrain(
    bentoml_home: Path,
    output: Path,
    args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> RetrainRun:
    """`python -m upsell.retrain ARGS --output OUTPUT` against the store in `bentoml_home`.

    `env` adds variables, e.g. the ROLLFORWARD_VERSION the operator sets on its Job.
    """
    done = subprocess.run(
        [PYTHON, "-m", "upsell.retrain", *args, "--output", str(output)],
        env=bentoml_env(bentoml_home, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if not output.exists():
        raise BentoBuildError(f"upsell.retrain wrote no result:\n{done.stderr[-3000:]}")
    result = RetrainingResult.from_termination_message(output.read_text())
    return RetrainRun(done.returncode, result, done.stderr)


def build_soom_bento(
    bentoml_home: Path, *, scenario: str = "baseline", seed: int = 0, rows: int = 20_000
) -> str:
    """Train the Soom model and build its bento into `bentoml_home`; return the bento tag."""
    bentoml_home.mkdir(parents=True, exist_ok=True)
    output = bentoml_home / f"build-{scenario}-{seed}.json"
    run = run_retrain(
        bentoml_home, output, ["--scenario", scenario, "--seed", str(seed), "--rows", str(rows)]
    )
    if run.returncode != 0 or not run.result.version:
        raise BentoBuildError(f"building the Soom bento failed:\n{run.stderr[-3000:]}")
    return run.result.version


README_BENTOS = (("upsell:v1", "logistic"), ("upsell:v1-gbm", "gbm"))
"""The README example's bentos and their classifiers (what `make bentos` builds)."""


def build_readme_bentos(bentoml_home: Path, *, rows: int = 20_000) -> list[str]:
    """Build `upsell:v1` and `upsell:v1-gbm` (baseline, seed 0) into `bentoml_home`."""
    bentoml_home.mkdir(parents=True, exist_ok=True)
    for tag, algorithm in README_BENTOS:
        output = bentoml_home / f"build-{tag.replace(':', '-')}.json"
        args = ["--scenario", "baseline", "--seed", "0", "--rows", str(rows),
                "--algorithm", algorithm, "--bento-tag", tag]  # fmt: skip
        # One OpenMP thread: gradient boosting's thread team spins, and on a busy machine
        # (CI's 2 cores) spinning threads wait for each other for minutes.
        run = run_retrain(bentoml_home, output, args, env={"OMP_NUM_THREADS": "1"})
        if run.returncode != 0 or run.result.version != tag:
            raise BentoBuildError(f"building {tag} failed:\n{run.stderr[-3000:]}")
    return [tag for tag, _ in README_BENTOS]


@dataclass
class BentoServer:
    """A running `bentoml serve` on loopback."""

    bento_tag: str
    port: int
    process: ManagedProcess
    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
        """POST `body` (bytes as-is, anything else as JSON); return (status, decoded JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json_or_text(error.read())

    def get(self, path: str, timeout: float = 10) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metrics(self) -> dict[MetricKey, float]:
        """Every sample on /metrics, keyed by (sample name, labels)."""
        status, text = self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return parse_metrics(text)

    def stop(self) -> None:
        self.process.stop()


def parse_metrics(text: str) -> dict[MetricKey, float]:
    samples: dict[MetricKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric_value(samples: Mapping[MetricKey, float], name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def server_home(shared_home: Path, run_dir: Path) -> Path:
    """A BENTOML_HOME of its own for one server, sharing the store's bentos and models."""
    home = run_dir / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    for name in STORE_DIRS:
        (shared_home / name).mkdir(parents=True, exist_ok=True)
        link = home / name
        if not link.exists():
            link.symlink_to((shared_home / name).resolve(), target_is_directory=True)
    return home


def start_bento_server(
    bento_tag: str,
    bentoml_home: Path,
    run_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    ready_timeout: float = 90,
) -> BentoServer:
    """`bentoml serve BENTO_TAG` on 127.0.0.1, started and ready (/readyz is 200).

    `env` usually holds the ROLLFORWARD_* variables the operator would set.
    """
    chosen = port or free_port()
    home = server_home(bentoml_home, run_dir)
    child_env = bentoml_env(home, env)
    # The bento carries its own copy of rollforward.serving and of upsell.
    child_env.pop("PYTHONPATH", None)
    process = ManagedProcess(
        name=f"bentoml-serve-{bento_tag}",
        argv=[
            PYTHON,
            "-m",
            "bentoml",
            "serve",
            bento_tag,
            "--host",
            "127.0.0.1",
            "--port",
            str(chosen),
        ],
        log_path=run_dir / "bentoml-serve.log",
        env=child_env,
        cwd=run_dir,
    ).start()
    server = BentoServer(bento_tag, chosen, process, home, dict(env or {}))
    try:
        process.wait_until_ready(
            lambda: server.get(READINESS_PATH, timeout=2)[0] == 200, timeout=ready_timeout
        )
    except BaseException:
        process.stop()
        raise
    return server


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
