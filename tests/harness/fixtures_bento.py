"""pytest fixtures for the Soom bento: one build per session, one server per module.

Lazy like every fixture: a session that asks for none of them trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.bento import BentoServer, build_soom_bento, start_bento_server

# What the operator would set on a champion pod; tests assert these labels.
SOOM_SERVER_ENV = {
    "ROLLFORWARD_MODEL": "soom-upsell",
    "ROLLFORWARD_VERSION": "v1",
    "ROLLFORWARD_VARIANT": "champion",
    "ROLLFORWARD_SEGMENT_FIELD": "region",
}


@dataclass(frozen=True)
class BuiltBento:
    """A bento in a temporary store."""

    tag: str
    bentoml_home: Path


@pytest.fixture(scope="session")
def soom_bento(tmp_path_factory: pytest.TempPathFactory) -> BuiltBento:
    """The Soom bento trained on `baseline` (seed 0), built once into a temporary store."""
    home = tmp_path_factory.mktemp("bentoml")
    return BuiltBento(tag=build_soom_bento(home), bentoml_home=home)


@pytest.fixture(scope="module")
def soom_server(
    soom_bento: BuiltBento, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BentoServer]:
    """`bentoml serve` of the Soom bento with champion labels (SOOM_SERVER_ENV)."""
    run_dir = tmp_path_factory.mktemp("soom-server")
    server = start_bento_server(
        soom_bento.tag, soom_bento.bentoml_home, run_dir, env=SOOM_SERVER_ENV
    )
    yield server
    server.stop()


StartBentoServer = Callable[..., BentoServer]


@pytest.fixture
def bento_servers(tmp_path: Path) -> Iterator[StartBentoServer]:
    """Start any number of bento servers for one test; all are stopped afterwards.

    Call it as `bento_servers(bento_tag, bentoml_home, env={...})`; each server gets its own
    run directory (and so its own metrics home).
    """
    started: list[BentoServer] = []

    def start(
        bento_tag: str, bentoml_home: Path, env: Mapping[str, str] | None = None
    ) -> BentoServer:
        run_dir = tmp_path / f"server-{len(started)}"
        server = start_bento_server(bento_tag, bentoml_home, run_dir, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
