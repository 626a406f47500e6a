"""Images and bentos are built once per test run, also when xdist's workers ask at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from fixtures.run_once import run_once, shared_dir


def test_the_first_caller_builds_and_every_later_one_reads_its_result(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    builds: list[Path] = []

    def build(directory: Path) -> list[str]:
        builds.append(directory)
        (directory / "artefact").write_text("built")
        time.sleep(0.3)  # long enough for the other callers to arrive meanwhile
        return ["upsell:v1", "upsell:v1-gbm"]

    shared_dir(tmp_path_factory)  # made once, as each xdist worker's own base dir is
    results: list[tuple[Path, object]] = []
    callers = [
        threading.Thread(target=lambda: results.append(run_once(tmp_path_factory, "x", build)))
        for _ in range(3)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert len(builds) == 1
    assert results == [(builds[0], ["upsell:v1", "upsell:v1-gbm"])] * 3
    assert (builds[0] / "artefact").read_text() == "built"
    # Another name is another build.
    assert run_once(tmp_path_factory, "y", lambda d: 1) == (
        shared_dir(tmp_path_factory) / "once-y",
        1,
    )


def test_a_failed_build_records_nothing_so_the_next_caller_builds_again(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    def fail(_: Path) -> None:
        raise RuntimeError("no disk")

    with pytest.raises(RuntimeError, match="no disk"):
        run_once(tmp_path_factory, "flaky", fail)
    assert run_once(tmp_path_factory, "flaky", lambda d: "ok")[1] == "ok"


def test_under_xdist_the_workers_share_the_directory_above_their_own(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path_factory.getbasetemp()
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert shared_dir(tmp_path_factory) == base
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert shared_dir(tmp_path_factory) == base.parent
