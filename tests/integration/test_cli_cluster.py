"""`kubectl rollforward` against the local control plane.

Given a ModelDeployment in each phase (its status written through the status subresource,
as the operator would, and its Events posted), `get`, `list`, `history` and `explain` print
exactly the snapshots of tests/data/cli_snapshots (the same files the unit tests check); the
errors are one line with an exit code; `get --watch` redraws in place under a pty.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.cluster import REPO_ROOT, LocalCluster
from devenv.processes import free_port
from rollforward.cli import main
from rollforward.kubectl.commands import CLEAR_SCREEN
from unit.test_cli_render import ALL_PHASES, PHASES, SNAPSHOTS, phase_body

NOW = PHASES["now"]
SNAPSHOT_NAMESPACE = PHASES["metadata"]["namespace"]


def put_in_phase(cluster: LocalCluster, namespace: str, phase: str, name: str = "upsell") -> None:
    """Create the ModelDeployment, then write its status and Events as the operator would."""
    body = phase_body(phase)
    status = body.pop("status")
    body["metadata"] = {
        "name": name,
        "namespace": namespace,
        "annotations": body["metadata"]["annotations"],
    }
    cluster.apply(body)
    cluster.kubectl(
        "-n", namespace, "patch", "modeldeployment", name, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip
    for index, event in enumerate(PHASES["phases"][phase]["events"]):
        post_event(cluster, namespace, name, index, event)


def post_event(
    cluster: LocalCluster, namespace: str, name: str, index: int, event: dict[str, str]
) -> None:
    response = cluster.api(
        "POST",
        f"/api/v1/namespaces/{namespace}/events",
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{index}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "rollforward.io/v1alpha1",
                "kind": "ModelDeployment",
                "name": name,
                "namespace": namespace,
            },
            "type": event["type"],
            "reason": event["reason"],
            "message": event["message"],
            "firstTimestamp": event["at"],
            "lastTimestamp": event["at"],
            "count": 1,
            "source": {"component": "rollforward"},
        },
    )
    assert response.status == 201, response.body


def cli(capsys: pytest.CaptureFixture[str], kubeconfig: Path, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in this process, as a user would with --kubeconfig."""
    capsys.readouterr()
    code = main([*argv, "--kubeconfig", str(kubeconfig)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(name: str, namespace: str) -> str:
    return (
        (SNAPSHOTS / name)
        .read_text()
        .replace(f"Namespace:  {SNAPSHOT_NAMESPACE}", f"Namespace:  {namespace}")
    )


@pytest.fixture
def admin(local_cluster: LocalCluster, installed_crds: list[str]) -> Path:
    return local_cluster.kubeconfig_path


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_get_history_explain_render_each_phase_from_the_cluster(
    phase: str,
    local_cluster: LocalCluster,
    admin: Path,
    cluster_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_in_phase(local_cluster, cluster_namespace, phase)
    for command in ("get", "history", "explain"):
        code, out, err = cli(
            capsys, admin, command, "upsell", "-n", cluster_namespace, "--now", NOW
        )
        assert (code, err) == (0, "")
        assert out == snapshot(f"{command}-{phase}.txt", cluster_namespace), command


def test_list_json_and_yaml(
    local_cluster: LocalCluster,
    admin: Path,
    cluster_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_in_phase(local_cluster, cluster_namespace, "Canary")
    put_in_phase(local_cluster, cluster_namespace, "Drifted", name="churn")
    code, out, _ = cli(capsys, admin, "list", "-n", cluster_namespace, "--now", NOW)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["NAME", "PHASE", "CHAMPION"]
    assert [row.split()[:2] for row in rows] == [["churn", "Drifted"], ["upsell", "Canary"]]

    code, out, _ = cli(capsys, admin, "list", "-A", "--now", NOW)
    assert code == 0 and f"{cluster_namespace}  upsell" in out

    code, out, _ = cli(capsys, admin, "get", "upsell", "-n", cluster_namespace, "-o", "json")
    status = json.loads(out)["status"]
    assert status["phase"] == "Canary"
    assert status["rollout"]["candidateVersion"] == "upsell:v2"
    code, out, _ = cli(capsys, admin, "history", "upsell", "-n", cluster_namespace, "-o", "yaml")
    assert [e["version"] for e in yaml.safe_load(out)] == ["upsell:v1", "upsell:v2"]
    code, out, _ = cli(capsys, admin, "explain", "upsell", "-n", cluster_namespace, "-o", "json")
    reasons = [d["reason"] for d in json.loads(out)["decisions"]]
    assert "CanaryStep" in reasons and "CanaryInProgress" in reasons


def test_actions_write_annotations_and_never_spec(
    local_cluster: LocalCluster,
    admin: Path,
    cluster_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_in_phase(local_cluster, cluster_namespace, "AwaitingApproval")

    def read() -> dict[str, Any]:
        body: dict[str, Any] = local_cluster.kubectl_json(
            "-n", cluster_namespace, "get", "md", "upsell"
        )
        return body

    before = read()
    ns = ["-n", cluster_namespace]
    code, out, _ = cli(capsys, admin, "approve", "upsell", *ns, "--dry-run")
    assert code == 0 and out.startswith("Will: the operator will promote upsell:v2")
    assert "rollforward.io/approve" not in read()["metadata"].get("annotations", {})

    code, out, _ = cli(capsys, admin, "approve", "upsell", *ns)
    assert code == 0 and "Done: annotated modeldeployment/upsell" in out
    for action in ("pause", "retrain", "rollback"):
        code, out, err = cli(capsys, admin, action, "upsell", *ns)
        assert (code, err) == (0, ""), action
    code, out, _ = cli(capsys, admin, "pause", "upsell", *ns)
    assert (code, out.split(":")[0]) == (0, "Nothing to do")

    after = read()
    notes = after["metadata"]["annotations"]
    assert notes["rollforward.io/paused"] == "true"
    for one_shot in ("approve", "retrain", "rollback"):
        assert notes[f"rollforward.io/{one_shot}"].endswith("Z")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]

    code, out, _ = cli(capsys, admin, "resume", "upsell", *ns)
    assert code == 0 and "rollforward.io/paused- (removed)" in out
    assert "rollforward.io/paused" not in read()["metadata"]["annotations"]


def test_refused_action_writes_nothing(
    local_cluster: LocalCluster,
    admin: Path,
    cluster_namespace: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_in_phase(local_cluster, cluster_namespace, "Stable")
    code, out, err = cli(capsys, admin, "approve", "upsell", "-n", cluster_namespace)
    assert code == 1 and out == ""
    assert err == (
        "error: not sent: nothing awaits approval: the phase is Stable, not AwaitingApproval"
        " (use --force to send it anyway)\n"
    )
    body = local_cluster.kubectl_json("-n", cluster_namespace, "get", "md", "upsell")
    assert "rollforward.io/approve" not in body["metadata"].get("annotations", {})


# --- errors -----------------------------------------------------------------------------------


def test_no_such_resource(
    admin: Path, cluster_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, admin, "get", "nope", "-n", cluster_namespace)
    assert (code, out) == (1, "")
    assert err == f"error: modeldeployment 'nope' not found in namespace '{cluster_namespace}'\n"


def test_no_permission_names_the_verb_and_resource(
    local_cluster: LocalCluster,
    admin: Path,
    cluster_namespace: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A reader who may get and list but not patch: reads work, an action says what is missing."""
    put_in_phase(local_cluster, cluster_namespace, "Stable")
    ns = ["-n", cluster_namespace]
    local_cluster.kubectl(*ns, "create", "serviceaccount", "reader")
    local_cluster.kubectl(
        *ns, "create", "role", "md-reader", "--verb=get,list",
        "--resource=modeldeployments.rollforward.io",
    )  # fmt: skip
    local_cluster.kubectl(
        *ns, "create", "rolebinding", "md-reader", "--role=md-reader",
        f"--serviceaccount={cluster_namespace}:reader",
    )  # fmt: skip
    reader = local_cluster.kubeconfig_for_service_account(
        cluster_namespace, "reader", tmp_path / "reader.kubeconfig"
    )
    code, out, _ = cli(capsys, reader, "get", "upsell", *ns, "--now", NOW)
    assert code == 0 and "Stable" in out
    # Without -n, the namespace is the context's (this kubeconfig's context names one).
    code, out, _ = cli(capsys, reader, "get", "upsell", "--now", NOW)
    assert code == 0 and f"Namespace:  {cluster_namespace}\n" in out
    code, out, err = cli(capsys, reader, "pause", "upsell", *ns)
    assert code == 1
    assert err.startswith(
        f"error: forbidden: you may not patch modeldeployments.rollforward.io in namespace"
        f" '{cluster_namespace}'"
    )
    assert len(err.splitlines()) == 1
    # explain still works without the right to read Events, and says what it could not show.
    code, out, _ = cli(capsys, reader, "explain", "upsell", *ns, "--now", NOW)
    assert code == 0
    assert "Events not shown: forbidden: you may not list events" in out
    code, out, err = cli(capsys, reader, "list", "-A")
    assert code == 1 and "you may not list modeldeployments.rollforward.io at cluster scope" in err


def test_unreachable_cluster_and_bad_context(
    local_cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(local_cluster.kubeconfig_path.read_text())
    port = free_port()
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    code, out, err = cli(capsys, dead, "list")
    assert code == 1 and out == ""
    assert err.startswith(f"error: cannot reach the cluster at https://127.0.0.1:{port}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err

    code, _, err = cli(capsys, dead, "list", "--context", "nope")
    assert code == 2 and err.startswith("error: context 'nope' not found in kubeconfig")
    code, _, err = cli(capsys, tmp_path / "missing", "list")
    assert code == 2 and err.startswith("error: cannot")


def test_the_console_script_fails_without_a_traceback(local_cluster: LocalCluster) -> None:
    """The installed entry point, as kubectl would run it: one line, exit 1."""
    script = Path(sys.executable).parent / "kubectl-rollforward"
    result = subprocess.run(
        [str(script), "get", "missing", "-n", "default"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(local_cluster.kubeconfig_path)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_kubectl_finds_the_plugin_on_path(
    local_cluster: LocalCluster, admin: Path, cluster_namespace: str
) -> None:
    """`kubectl rollforward ...` runs kubectl-rollforward from PATH, with kubectl's arguments."""
    put_in_phase(local_cluster, cluster_namespace, "Stable")
    kubectl = local_cluster.binaries.path("kubectl")
    result = subprocess.run(
        [str(kubectl), "rollforward", "list", "-n", cluster_namespace, "--now", NOW],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "KUBECONFIG": str(admin),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split()[:3] == ["upsell", "Stable", "upsell:v1"]
    usage = subprocess.run(
        [str(kubectl), "rollforward", "--help"],
        capture_output=True,
        text=True,
        env={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        timeout=60,
        check=False,
    )
    assert usage.stdout.startswith("usage: kubectl rollforward")


# --- get --watch under a terminal -------------------------------------------------------------


class PtyProcess:
    """A child whose stdout is a pseudo-terminal, so it behaves as on a person's screen."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, needle: bytes, count: int = 1, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        while self.screen.count(needle) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise AssertionError(
                    f"{needle!r} x{count} never shown; got {self.screen[-2000:]!r}"
                )
            ready, _, _ = select.select([self.master], [], [], min(remaining, 1.0))
            if ready:
                with contextlib.suppress(OSError):  # the child closed the terminal
                    self.screen += os.read(self.master, 65536)
        return self.screen

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        os.close(self.master)


def test_get_watch_redraws_in_place_when_the_status_changes(
    local_cluster: LocalCluster, admin: Path, cluster_namespace: str
) -> None:
    put_in_phase(local_cluster, cluster_namespace, "Retraining")
    env = {
        **os.environ,
        "KUBECONFIG": str(admin),
        "PYTHONPATH": str(REPO_ROOT / "operator"),
        "NO_COLOR": "1",
    }
    argv = [sys.executable, "-m", "rollforward.cli", "get", "upsell", "-n", cluster_namespace]
    terminal = PtyProcess([*argv, "--watch", "--interval", "0.3", "--now", NOW], env)
    try:
        first = terminal.read_until(b"Job upsell-retrain-d41f0c9a7e-1 Running")
        assert first.startswith(CLEAR_SCREEN.encode())
        assert first.count(CLEAR_SCREEN.encode()) == 1

        # When: the operator's next status write moves the model into its canary.
        canary = phase_body("Canary")["status"]
        local_cluster.kubectl(
            "-n", cluster_namespace, "patch", "md", "upsell", "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": canary}),
        )  # fmt: skip
        screen = terminal.read_until(b"Canary  candidate upsell:v2")

        # Then: exactly one more frame, drawn over the first, and it is the new state.
        frames = screen.split(CLEAR_SCREEN.encode())
        assert len(frames) == 3 and frames[0] == b""
        latest = frames[-1].decode().replace("\r\n", "\n")
        assert latest == snapshot("get-Canary.txt", cluster_namespace)
        assert "Phase:      Retraining" in frames[1].decode()
    finally:
        terminal.stop()
