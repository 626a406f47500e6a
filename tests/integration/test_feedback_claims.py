"""Feedback counts once per prediction across replicas and restarts, against a real S3 server.

Given two serving processes of one model (two replicas) that share only the bento store
(versitygw), when the same label reaches both, then the first counts the outcome and the
second counts a duplicate_feedback anomaly and no outcome; when the second replica restarts
(a new process with an empty memory), it still refuses the label; two creates of one key at
the same instant have exactly one winner; and a replica whose store does not answer still
accepts a label, counted as unverified.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.api_cases import example_manifest
from devenv.bento import REPO_ROOT
from devenv.s3 import S3Server
from rollforward.api import parse_model_deployment
from rollforward.bentostore.location import log_prefix
from rollforward.serving import contract
from rollforward.serving.feedback_claims import claim_key, claims_prefix
from rollforward.serving.objectstore.s3 import S3Store
from rollforward.serving.prediction_ids import PredictionIdCodec

KEY = "an-integration-feedback-key"
MODEL = "soom-upsell"
LABELS = ("stay", "upgrade")
ROUNDS = 200
REPLICA = Path(__file__).resolve().parents[1] / "fixtures" / "feedback_replica.py"
OUTCOMES = contract.OUTCOMES_TOTAL
DUPLICATES = f"{contract.INPUT_ANOMALIES_TOTAL}:duplicate_feedback"
LOG_PREFIX = log_prefix(parse_model_deployment(example_manifest()))
"""Where the operator puts the example ModelDeployment's log and claims (logs/default/upsell)."""


class Replica:
    """A serving process's feedback intake: one JSON item in, one JSON answer out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPLICA)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._read() == {"ready": True}

    def send(self, item: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(item) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the replica exited"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def replicas(s3_server: S3Server) -> Iterator[Any]:
    started: list[Replica] = []

    def start(store: dict[str, str] | None = None) -> Replica:
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO_ROOT / "operator"),
            "ROLLFORWARD_MODEL": MODEL,
            "ROLLFORWARD_VERSION": "v1",
            "ROLLFORWARD_VARIANT": "champion",
            "ROLLFORWARD_FEEDBACK_SECRET": KEY,
            "ROLLFORWARD_PREDICTION_LOG_ENABLED": "false",
            contract.ENV_PREDICTION_LOG_PREFIX: LOG_PREFIX,
            **(s3_server.store_env() if store is None else store),
        }
        replica = Replica(env)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def _issue(label: str) -> str:
    return PredictionIdCodec(KEY, LABELS).issue(label, "champion", "v1", time.time())


def test_the_store_creates_a_key_only_once(s3_server: S3Server) -> None:
    store = s3_server.store()

    assert store.create("claims-test/one", b"first")
    assert not store.create("claims-test/one", b"second")
    assert store.create("claims-test/two", b"other")

    target = s3_server.root / s3_server.bucket / "claims-test" / "one"
    assert target.read_bytes() == b"first"


def _race(stores: list[S3Store], key: str) -> int:
    """Create `key` from two threads released at the same instant; how many won."""
    barrier = threading.Barrier(len(stores), timeout=10)
    wins = [False] * len(stores)

    def create(i: int) -> None:
        barrier.wait()
        wins[i] = stores[i].create(key, b"marker")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return sum(wins)


def test_simultaneous_creates_of_one_key_have_exactly_one_winner(s3_server: S3Server) -> None:
    """Two replicas claiming one id at the same instant: the store must settle it."""
    stores = [s3_server.store(), s3_server.store()]

    winners = [_race(stores, f"claims-race/{n}") for n in range(ROUNDS)]

    assert winners == [1] * ROUNDS


def test_a_label_counts_once_across_two_replicas_and_a_restart(
    replicas: Any, s3_server: S3Server
) -> None:
    prediction_id = _issue("upgrade")
    label = {"predictionId": prediction_id, "label": "stay"}
    a, b = replicas(), replicas()

    on_a = a.send(label)
    on_b = b.send(label)
    again_on_a = a.send(label)

    assert on_a["accepted"] and on_a.get(OUTCOMES) == 1 and not on_a.get(DUPLICATES)
    assert not on_b["accepted"] and "duplicate_feedback" in on_b["reason"]
    assert on_b.get(DUPLICATES) == 1 and not on_b.get(OUTCOMES)
    assert not again_on_a["accepted"] and again_on_a.get(OUTCOMES) == 1

    b.stop()
    restarted = replicas()
    on_restarted = restarted.send(label)

    assert not on_restarted["accepted"] and on_restarted.get(DUPLICATES) == 1
    assert not on_restarted.get(OUTCOMES)
    markers = s3_server.store().list(claims_prefix(LOG_PREFIX, MODEL))
    issued = int(prediction_id.split(".")[3])
    assert markers == [claim_key(LOG_PREFIX, MODEL, prediction_id, issued)]
    assert markers[0].startswith(f"logs/default/upsell/{MODEL}/feedback-claims/date=")
    other = {"predictionId": _issue("stay"), "label": "stay"}
    assert restarted.send(other)["accepted"]


def test_a_replica_without_an_answering_store_counts_the_label_unverified(
    replicas: Any, s3_server: S3Server
) -> None:
    dead = {**s3_server.store_env(), "ROLLFORWARD_BENTO_STORE_ENDPOINT": "http://127.0.0.1:9"}
    replica = replicas(dead)
    started = time.monotonic()

    answers = [replica.send({"predictionId": _issue("upgrade"), "label": 1}) for _ in range(3)]

    assert all(a["accepted"] for a in answers) and answers[-1][OUTCOMES] == 3
    unverified = f"{contract.FEEDBACK_UNVERIFIED_TOTAL}:"
    assert answers[-1][unverified + "store_error"] == 1
    assert answers[-1][unverified + "backing_off"] == 2
    assert time.monotonic() - started < 5
