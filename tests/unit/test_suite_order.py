"""`make test`'s order and xdist work units: the e2e first, the real-node modules one after
another on one worker, whole modules per worker, unit tests last (fixtures/suite_order.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdist.remote import Producer

from fixtures.suite_order import (
    REAL_NODE_MODULES,
    REAL_NODE_UNIT,
    SLOW_INTEGRATION_MODULES,
    ordered,
    unlisted,
    work_unit,
)
from fixtures.suite_scheduling import SuiteScheduling, make_scheduler

ROOT = Path(__file__).resolve().parents[2]
NODE, TEARDOWN = REAL_NODE_MODULES[2], REAL_NODE_MODULES[3]
CHAOS = SLOW_INTEGRATION_MODULES[0]


def test_the_e2e_then_the_real_node_then_slow_then_other_integration_then_unit() -> None:
    collected = [
        "tests/unit/test_a.py",
        "tests/integration/test_b.py",
        TEARDOWN,
        CHAOS,
        "tests/e2e/test_whole_loop.py",
        "tests/integration/test_a.py",
        NODE,
        "tests/unit/test_b.py",
    ]
    assert ordered(collected) == [
        "tests/e2e/test_whole_loop.py",
        TEARDOWN,  # the collection order within a rank
        NODE,
        CHAOS,
        "tests/integration/test_b.py",
        "tests/integration/test_a.py",
        "tests/unit/test_a.py",
        "tests/unit/test_b.py",
    ]


def test_a_work_unit_is_the_module_or_for_every_real_node_module_the_real_node() -> None:
    assert work_unit("tests/unit/test_a.py::test_x[a::b]") == "tests/unit/test_a.py"
    assert work_unit("tests/integration/test_b.py::TestC::test_y") == "tests/integration/test_b.py"
    assert {work_unit(f"{path}::test_z") for path in REAL_NODE_MODULES} == {REAL_NODE_UNIT}
    assert work_unit("tests/e2e/test_whole_loop.py::test_w") == "tests/e2e/test_whole_loop.py"


def test_the_listed_modules_exist_and_an_unlisted_one_that_starts_a_node_is_named() -> None:
    for path in (*REAL_NODE_MODULES, *SLOW_INTEGRATION_MODULES):
        assert (ROOT / path).is_file(), path
    new = "tests/integration/test_new_node_thing.py"
    assert unlisted([NODE, new, "tests/e2e/test_whole_loop.py"]) == [new]


# --- the scheduler, driven as xdist's controller drives it, with two fake workers -----------


@dataclass(eq=False)
class FakeWorker:
    """What the scheduler uses of xdist's WorkerController."""

    name: str
    queue: list[int] = field(default_factory=list)
    ran: list[int] = field(default_factory=list)
    shutting_down: bool = False

    @property
    def gateway(self) -> Any:
        return type("Gateway", (), {"id": self.name})()

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue.extend(indices)

    def send_runtest_all(self) -> None:
        raise AssertionError("the scheduler sends units, never everything")

    def shutdown(self) -> None:
        self.shutting_down = True


class FakeConfig:
    def __init__(self, dist: str) -> None:
        self.values = {"dist": dist, "tx": ["2*popen"]}
        self.option = type("Option", (), {"loadscopereorder": False})()

    def getvalue(self, name: str) -> Any:
        return self.values[name]


def _run(collection: list[str], durations: dict[str, int]) -> dict[str, list[str]]:
    """Schedule `collection` on two workers; each test takes `durations[module]` ticks (1 when
    not given). Returns each worker's node ids in the order it ran them."""
    scheduler = make_scheduler(FakeConfig("loadfile"), Producer("test", enabled=False))  # type: ignore[arg-type]
    assert isinstance(scheduler, SuiteScheduling)
    workers = [FakeWorker("gw0"), FakeWorker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    busy_until = {worker.name: 0 for worker in workers}
    for _ in range(10 * len(collection)):
        running = [w for w in workers if w.queue]
        if not running:
            break
        worker = min(running, key=lambda w: busy_until[w.name])
        index = worker.queue.pop(0)
        busy_until[worker.name] += durations.get(collection[index].split("::")[0], 1)
        worker.ran.append(index)
        scheduler.mark_test_complete(worker, index)
    assert scheduler.tests_finished
    return {w.name: [collection[i] for i in w.ran] for w in workers}


def test_whole_modules_per_worker_and_the_real_node_modules_on_one_worker_in_turn() -> None:
    modules = [
        *REAL_NODE_MODULES,
        CHAOS,
        *(f"tests/integration/test_{n}.py" for n in "abcdef"),
        *(f"tests/unit/test_{n}.py" for n in "ghijklmn"),
    ]
    collection = [f"{module}::test_{i}" for module in ordered(modules) for i in range(3)]

    ran = _run(collection, durations={NODE: 5, CHAOS: 20})

    workers_of = {
        module: {name for name, ids in ran.items() if any(i.startswith(module) for i in ids)}
        for module in modules
    }
    assert all(len(workers) == 1 for workers in workers_of.values()), workers_of
    assert len(set.union(*(workers_of[m] for m in REAL_NODE_MODULES))) == 1
    node_worker = workers_of[NODE].pop()
    # The real-node modules run back to back, in their order, from the worker's start.
    ids = ran[node_worker]
    assert [i.split("::")[0] for i in ids[: 3 * len(REAL_NODE_MODULES)]] == [
        m for m in ordered(list(REAL_NODE_MODULES)) for _ in range(3)
    ]
    # The other worker starts with the slow module; every test ran once.
    other = "gw1" if node_worker == "gw0" else "gw0"
    assert ran[other][0].startswith(CHAOS)
    assert sorted(ran["gw0"] + ran["gw1"]) == sorted(collection)


def test_other_distribution_modes_keep_xdists_own_scheduler() -> None:
    assert make_scheduler(FakeConfig("load"), None) is None  # type: ignore[arg-type]


def test_make_test_runs_the_e2e_alone_then_the_rest_with_the_suites_scheduler() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--dist loadfile --no-loadscope-reorder" in makefile
    assert "pytest -q -rA --durations=10 tests/e2e ||" in makefile
