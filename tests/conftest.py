"""Test-suite wiring: layer markers by folder, and the shared fixtures as plugins."""

from pathlib import Path

import pytest

_HERE = Path(__file__).parent

# Each area contributes its fixtures as a `fixtures/fixtures_<area>.py` plugin, so adding an
# area never means editing this file. The environment they start lives in hack/devenv/.
pytest_plugins = sorted(f"fixtures.{p.stem}" for p in (_HERE / "fixtures").glob("fixtures_*.py"))

_LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its layer, taken from the folder it lives in."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(_HERE).parts
        if parts and parts[0] in _LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
