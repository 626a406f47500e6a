"""Test-suite wiring: layer markers by folder, the shared fixtures as plugins, and the order
and xdist work units of the modules (see fixtures/suite_order.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.suite_order import module_of, ordered, unlisted
from fixtures.suite_scheduling import make_scheduler

_HERE = Path(__file__).parent

# Each area contributes its fixtures as a `fixtures/fixtures_<area>.py` plugin, so adding an
# area never means editing this file. The environment they start lives in hack/devenv/.
pytest_plugins = sorted(f"fixtures.{p.stem}" for p in (_HERE / "fixtures").glob("fixtures_*.py"))

_LAYERS = ("unit", "integration", "e2e")


def _starts_a_real_node(item: pytest.Item) -> bool:
    """Asks for the real node fixture (directly or through another fixture), or is marked
    `real_node` (a module that starts a node of its own)."""
    return "real_node" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("real_node")
    )


# tryfirst: before pytest's `-m` selection reads the layer markers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its layer (from its folder), check that every module starting a
    real node is in the real-node work unit, and put the modules in the suite's order."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(_HERE).parts
        if parts and parts[0] in _LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
    missing = unlisted(module_of(item.nodeid) for item in items if _starts_a_real_node(item))
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} start(s) a real node: add it to REAL_NODE_MODULES in "
            "tests/fixtures/suite_order.py, so that it never runs beside another node"
        )
    paths = ordered(list(dict.fromkeys(module_of(item.nodeid) for item in items)))
    position = {path: index for index, path in enumerate(paths)}
    items.sort(key=lambda item: position[module_of(item.nodeid)])


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With `--dist loadfile`: whole modules per worker, the real-node modules as one unit."""
    return make_scheduler(config, log)
