"""Test-suite wiring: layer markers by folder, and the harness fixtures as plugins."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent

# Each area of the harness contributes its fixtures as a `harness/fixtures_<area>.py` plugin,
# so adding an area never means editing this file.
pytest_plugins = sorted(f"harness.{p.stem}" for p in (_HERE / "harness").glob("fixtures_*.py"))

_LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its layer, taken from the folder it lives in."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(_HERE).parts
        if parts and parts[0] in _LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
