"""The traffic driver against a real nginx router (the operator's rendered config) in front of
two real backends, and against the real Soom bento.

Given a router splitting users between a champion and a challenger,
when the driver sends Soom traffic at a set rate and switches scenario part-way,
then the log holds every request, in order, with the scenario it was drawn from and the
variant that served it, and the sticky analysis finds exactly the users a re-split moved back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from devenv.bento import BentoServer, metric_value
from devenv.nginx import NginxProcess, run_nginx
from devenv.processes import ManagedProcess, free_port, port_is_open, wait_until
from devenv.traffic import (
    ScenarioSwitch,
    TrafficDriver,
    TrafficPlan,
    read_log,
    sticky_violations,
    variant_sequences,
)
from rollforward.routers.nginx_config import NginxRouterConfig, RoutedVariant, render_nginx_config

TESTS = Path(__file__).resolve().parents[1]
ECHO_SERVER = TESTS / "fixtures" / "echo_server.py"
PYTHONPATH = [str(TESTS.parent / p) for p in ("operator", "bentos", "hack")]


def router_config(port: int, backends: dict[str, int], challenger_weight: int) -> str:
    return render_nginx_config(
        NginxRouterConfig(
            listen_port=port,
            listen_address="127.0.0.1",
            sticky_header="X-User-Id",
            pin_header="X-Rollforward-Pin",
            champion="champion",
            variants=(
                RoutedVariant(
                    name="challenger",
                    weight=challenger_weight,
                    upstream=f"127.0.0.1:{backends['challenger']}",
                ),
                RoutedVariant(
                    name="champion",
                    weight=100 - challenger_weight,
                    upstream=f"127.0.0.1:{backends['champion']}",
                ),
            ),
        )
    )


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Two echo servers answering with their own name, by variant name -> port."""
    ports = {"champion": free_port(), "challenger": free_port()}
    processes = [
        ManagedProcess(
            name=name,
            argv=["python3", "-P", str(ECHO_SERVER), "--port", str(port)],
            log_path=tmp_path / f"{name}.log",
            env={"ECHO_NAME": name, "PATH": "/usr/bin:/bin"},
        ).start()
        for name, port in ports.items()
    ]
    try:
        for process, port in zip(processes, ports.values(), strict=True):
            process.wait_until_ready(partial(port_is_open, port), 30)
        yield ports
    finally:
        for process in processes:
            process.stop()


@pytest.fixture
def router(tmp_path: Path, backends: dict[str, int]) -> Iterator[tuple[NginxProcess, int]]:
    port = free_port()
    with run_nginx(router_config(port, backends, 30), tmp_path / "nginx") as nginx:
        yield nginx, port


def test_traffic_is_logged_per_request_with_scenario_and_serving_variant(
    tmp_path: Path, router: tuple[NginxProcess, int]
) -> None:
    # Given a 70/30 router and a plan of 4 s at 25 requests/s switching to drift at 2 s
    _, port = router
    log = tmp_path / "traffic.jsonl"
    plan = TrafficPlan(
        url=f"http://127.0.0.1:{port}",
        rate=25,
        duration_seconds=4,
        switches=(ScenarioSwitch(2.0, "concept-drift"),),
        users=50,
    )

    # When the driver runs
    stats = TrafficDriver(plan, log).run()

    # Then every due request was sent and logged once, in order
    records = read_log(log)
    assert stats.sent == stats.completed == len(records) == 100
    assert [r.seq for r in records] == list(range(100))
    assert all(r.status == 200 for r in records)
    # And the scenario switched once, from baseline to concept-drift, not before 2 s
    scenarios = [r.scenario for r in records]
    switch = scenarios.index("concept-drift")
    assert set(scenarios[:switch]) == {"baseline"}
    assert set(scenarios[switch:]) == {"concept-drift"}
    assert records[switch].elapsed >= 2.0 > records[switch - 1].elapsed
    # And the logged variant is the backend that answered, and users come back
    assert all(r.variant == r.version for r in records)
    assert {r.variant for r in records} == {"champion", "challenger"}
    sequences = variant_sequences(records)
    assert len(sequences) < len(records)
    assert set(sequences) <= {f"u1-{i:07d}" for i in range(50)}
    # And under a fixed split nobody changes variant
    assert all(len(set(seq)) == 1 for seq in sequences.values())
    assert sticky_violations(records, champion="champion") == []


def test_sticky_analysis_finds_users_a_rollback_moved_back_to_the_champion(
    tmp_path: Path, router: tuple[NginxProcess, int], backends: dict[str, int]
) -> None:
    # Given traffic through a 70/30 split
    nginx, port = router
    log = tmp_path / "traffic.jsonl"
    plan = TrafficPlan(url=f"http://127.0.0.1:{port}", rate=40, max_requests=240, users=40)
    driver = TrafficDriver(plan, log).start()
    wait_until(lambda: driver.stats.completed >= 80, 60, what="80 requests")

    # When the router is re-split to 0% challenger mid-run (what a rollback does)
    sent_before_reload = driver.stats.sent
    nginx.reload(router_config(port, backends, 0))
    driver.join(60)
    records = read_log(log)

    # Then the challenger's users who came back are found, and only after the re-split
    # (a request queued a few slots before the reload may already meet the new config)
    margin = plan.concurrency
    violations = sticky_violations(records, champion="champion")
    assert violations
    assert all(v.challenger == "challenger" for v in violations)
    assert all(v.seq_back_on_champion >= sent_before_reload - margin for v in violations)
    before = sticky_violations(
        records, "champion", window=lambda r: r.seq < sent_before_reload - margin
    )
    assert before == []
    assert len(records) == 240


def test_soom_traffic_reaches_the_bento_through_the_predict_contract(
    tmp_path: Path, soom_server: BentoServer
) -> None:
    # Given the real Soom bento, and its prediction count before
    before = metric_value(soom_server.metrics(), "rollforward_predictions_total")

    # When 200 Soom records are sent straight to it, baseline then concept-drift
    log = tmp_path / "traffic.jsonl"
    plan = TrafficPlan(
        url=soom_server.url,
        rate=100,
        max_requests=200,
        switches=(ScenarioSwitch(1.0, "concept-drift"),),
    )
    driver = TrafficDriver(plan, log)
    stats = driver.run()
    records = read_log(log)

    # Then every record was predicted, with a label and the bento's version
    assert stats.completed == len(records) == 200
    assert {r.scenario for r in records} == {"baseline", "concept-drift"}
    assert all(r.status == 200 for r in records), {r.error for r in records if r.error}
    assert {r.label for r in records} <= {"upgrade", "stay"}
    assert all(r.version for r in records)
    after = metric_value(soom_server.metrics(), "rollforward_predictions_total")
    assert after - before == len(records)


def test_the_command_line_drives_and_checks_stickiness(
    tmp_path: Path, router: tuple[NginxProcess, int]
) -> None:
    _, port = router
    log = tmp_path / "traffic.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(PYTHONPATH)}
    url = f"http://127.0.0.1:{port}"
    drive = [sys.executable, "-m", "devenv.traffic", "drive", "--url", url, "--log", str(log),
             "--rate", "50", "--max-requests", "40", "--users", "10"]  # fmt: skip
    sticky = [sys.executable, "-m", "devenv.traffic", "sticky", "--log", str(log)]

    driven = subprocess.run(drive, env=env, capture_output=True, text=True, timeout=120)
    checked = subprocess.run(sticky, env=env, capture_output=True, text=True, timeout=120)

    assert driven.returncode == 0, driven.stderr
    assert "completed 40" in driven.stdout
    assert len(read_log(log)) == 40
    assert checked.returncode == 0, checked.stdout
    assert "0 violations" in checked.stdout
