"""Debian's `prometheus` on loopback, scraping every second, with targets added at run time.

Targets go through file-based service discovery: one JSON file per job under `targets/`,
which Prometheus watches, so adding a target needs no reload. Pods go under `targets/pods/`,
with the labels Kubernetes service discovery would give them, into a job that relabels them as
the chart's PodMonitor does (`devenv.scrape_config`); anything else is scraped with the labels
it is given. The data directory survives
`stop()`/`start()`, and the port stays the same, because tests stop Prometheus mid-run to see
how the operator copes and then bring it back with its history.

`python -m devenv.prometheus up|down [--dir _out/prometheus]` serves `make prometheus-up`.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from devenv.netns import NetworkNamespace
from devenv.processes import (
    ManagedProcess,
    StartStop,
    free_port,
    port_is_open,
    stop_recorded,
    wait_until,
    write_records,
)
from devenv.scrape_config import POD_RELABELINGS

POD_JOB = "kubernetes-pods"
PodJob = Callable[[Sequence[str]], dict[str, Any]]
"""A scrape job for pod targets, given the file_sd files that list them."""


def default_pod_job(files: Sequence[str]) -> dict[str, Any]:
    """The chart's PodMonitor as a plain scrape job (charts/rollforward/README.md shows it)."""
    return {
        "job_name": POD_JOB,
        # BentoML's own `endpoint` label must win over a scrape job's target labels.
        "honor_labels": True,
        "file_sd_configs": [{"files": list(files), "refresh_interval": "1s"}],
        "relabel_configs": [dict(r) for r in POD_RELABELINGS],
    }


REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass(frozen=True)
class WebSecurity:
    """TLS and basic auth of Prometheus's own HTTP server (`--web.config.file`)."""

    cert: Path
    key: Path
    ca: Path
    """The CA that signed `cert`, for this module's own readiness checks and queries."""
    user: str
    password: str

    def web_config(self) -> dict[str, Any]:
        return {
            "tls_server_config": {"cert_file": str(self.cert), "key_file": str(self.key)},
            "basic_auth_users": {self.user: bcrypt_hash(self.password)},
        }

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


def bcrypt_hash(password: str) -> str:
    """The bcrypt hash Prometheus's web config wants, made by htpasswd (apache2-utils)."""
    result = subprocess.run(
        ["htpasswd", "-niB", "-C", "10", "user"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().split(":", 1)[1]


class PrometheusQueryError(RuntimeError):
    """The Prometheus HTTP API answered with an error."""


class LocalPrometheus(StartStop):
    """One Prometheus server under `base_dir`: config, targets/, data/ and its log."""

    def __init__(
        self,
        base_dir: Path,
        port: int | None = None,
        scrape_interval: str = "1s",
        executable: str = "prometheus",
        startup_timeout: float = 120.0,
        die_with_parent: bool = True,
        netns: NetworkNamespace | None = None,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        security: WebSecurity | None = None,
        pod_job: PodJob = default_pod_job,
        host: str = "127.0.0.1",
    ) -> None:
        self.base_dir = base_dir
        # A real node's pods reach Prometheus only on the namespace's node address.
        self.host = host
        self.security = security
        # Inside a network namespace (a real node's), Prometheus listens on the namespace's
        # loopback and this class talks to it from a thread that enters the namespace.
        self.netns = netns
        self.scrape_configs = list(scrape_configs)
        self.pod_job = pod_job
        self.die_with_parent = die_with_parent
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.executable = shutil.which(executable) or executable
        self.startup_timeout = startup_timeout
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.security is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.base_dir / "targets"

    @property
    def pods_dir(self) -> Path:
        return self.targets_dir / "pods"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def process(self) -> ManagedProcess | None:
        return self._process

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalPrometheus:
        """Start (or restart, keeping data and port) and wait until it answers /-/ready."""
        if self.running():
            return self
        if self._in_net(lambda: port_is_open(self.port, self.host)):
            raise OSError(f"port {self.port} is taken; Prometheus cannot (re)start on it")
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.base_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config(), sort_keys=False))
        web: list[str] = []
        if self.security is not None:
            web_config = self.base_dir / "web.yml"
            web_config.write_text(yaml.safe_dump(self.security.web_config()))
            web = [f"--web.config.file={web_config}"]
        self._process = ManagedProcess(
            name="prometheus",
            argv=[
                *(self.netns.wrap([]) if self.netns is not None else []),
                self.executable,
                *web,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address={self.host}:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            log_path=self.base_dir / "prometheus.log",
            cwd=self.base_dir,
            die_with_parent=self.die_with_parent,
        ).start()
        self._process.wait_until_ready(
            lambda: self._get(f"{self.url}/-/ready").startswith("Prometheus"),
            self.startup_timeout,
        )
        return self

    def stop(self) -> None:
        """Shut down cleanly (SIGTERM), so the next start replays the write-ahead log."""
        if self._process is not None:
            self._process.stop(grace=30.0)
            wait_until(
                lambda: not self._in_net(lambda: port_is_open(self.port, self.host)),
                30.0,
                what="Prometheus's port to close",
            )

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._process is not None:
            self._process.kill()

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    # --- targets ---------------------------------------------------------------------------

    def add_target(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """Scrape `address` (host:port, path /metrics) as `job` with extra target labels."""
        self._add(self._targets_file(job), job, address, labels or {})

    def add_pod_target(self, job: str, address: str, labels: Mapping[str, str]) -> None:
        """Scrape a pod's `address` as the pod job does; `labels` are the kubernetes_sd labels
        of the pod (`devenv.scrape_config.kubernetes_sd_labels`), `job` names its group."""
        self._add(self._pods_file(job), job, address, labels)

    def remove_target(self, job: str, address: str) -> None:
        for path in (self._targets_file(job), self._pods_file(job)):
            if path.exists():
                groups = [g for g in _read_groups(path) if g["targets"] != [address]]
                _write_groups(path, groups)

    def _add(self, path: Path, job: str, address: str, labels: Mapping[str, str]) -> None:
        groups = [g for g in _read_groups(path) if g["targets"] != [address]]
        groups.append({"targets": [address], "labels": {**labels, "job": job}})
        _write_groups(path, groups)

    def active_targets(self) -> list[dict[str, Any]]:
        """The targets Prometheus is scraping now, as /api/v1/targets reports them."""
        targets: list[dict[str, Any]] = self._api("targets", {"state": "active"})["activeTargets"]
        return targets

    def wait_for_target_up(self, job: str, address: str, timeout: float = 60.0) -> None:
        """Wait until `address` in `job` has been scraped successfully."""

        def is_up() -> bool:
            return any(
                t["labels"].get("job") == job
                and t["labels"].get("instance") == address
                and t["health"] == "up"
                for t in self.active_targets()
            )

        wait_until(is_up, timeout, what=f"Prometheus to scrape {address} (job {job})")

    # --- queries ---------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; returns the `result` list (vector samples, or a scalar pair)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("query", params)
        result = data["result"]
        return result if isinstance(result, list) else [result]

    def query_value(self, promql: str, at: float | None = None) -> float | None:
        """The value of a query with at most one sample, or None when it has none."""
        result = self.query(promql, at)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusQueryError(f"{promql!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    # --- internals -------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    # Each target group sets its own `job` label, which Prometheus keeps.
                    "job_name": "file-sd",
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": "1s"}
                    ],
                },
                self.pod_job([str(self.pods_dir / "*.json")]),
                *self.scrape_configs,
            ],
        }

    def _in_net(self, function: Callable[[], T]) -> T:
        return function() if self.netns is None else self.netns.call(function)

    def _targets_file(self, job: str) -> Path:
        return self.targets_dir / _file_name(job)

    def _pods_file(self, job: str) -> Path:
        return self.pods_dir / _file_name(job)

    def _api(self, endpoint: str, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(self._get(url))
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{endpoint} {dict(params)}: {body.get('error', body)}")
        data: dict[str, Any] = body["data"]
        return data

    def _get(self, url: str) -> str:
        return self._in_net(lambda: _get(url, self.security))


def _file_name(job: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in job) + ".json"


def _read_groups(path: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    return groups


def _write_groups(path: Path, groups: Sequence[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so Prometheus never reads a half-written file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(list(groups), indent=2))
    tmp.replace(path)


def _get(url: str, security: WebSecurity | None = None) -> str:
    if security is None:
        request = urllib.request.Request(url)
        context = None
    else:
        request = urllib.request.Request(url, headers={"Authorization": security.authorization()})
        context = security.ssl_context()
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        body: bytes = response.read()
        return body.decode()


# --- `make prometheus-up` / `make prometheus-down` -------------------------------------------

_STATE_FILE = "state.json"


def prometheus_up(state_dir: Path) -> LocalPrometheus:
    state = state_dir / _STATE_FILE
    if state.exists():
        raise FileExistsError(f"Prometheus may still run from {state_dir}; stop it first")
    if state_dir.exists():
        shutil.rmtree(state_dir)  # a previous, stopped run's leftovers
    prometheus = LocalPrometheus(state_dir, die_with_parent=False)
    prometheus.start()
    assert prometheus.process is not None
    write_records(state, [prometheus.process], url=prometheus.url)
    return prometheus


def prometheus_down(state_dir: Path) -> list[str]:
    state = state_dir / _STATE_FILE
    if not state.exists():
        return []
    stopped = stop_recorded(state, grace=30.0)
    state.unlink()
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.prometheus", description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "_out" / "prometheus")
    args = parser.parse_args(argv)
    state_dir: Path = args.dir.resolve()
    if args.command == "up":
        prometheus = prometheus_up(state_dir)
        print(f"prometheus is up: {prometheus.url}")
        print(f"add scrape targets as file_sd JSON in {prometheus.targets_dir}")
    else:
        stopped = prometheus_down(state_dir)
        print("stopped prometheus" if stopped else "no prometheus was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
