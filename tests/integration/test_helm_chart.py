"""The Helm chart, rendered by the real helm and checked by the real API server and promtool.

- `helm lint --strict` is clean for every ci/ values file, and the schema refuses bad values.
- `helm template` of every ci/ values file passes `kubectl apply --dry-run=server`.
- The CRD is the repository's crds/ file, and `helm package` carries it.
- RBAC comes from files/rbac-rules.yaml, split by the API server's own idea of scope.
- The rendered PrometheusRule passes `promtool check rules`, and its alerts fire on the series
  they are about (`promtool test rules`).
- Given the chart installed, when the operator runs with the chart's ServiceAccount token, then
  a ModelDeployment becomes Ready with no forbidden error; a `helm upgrade` to a new operator
  image leaves it untouched and serving; `helm uninstall` keeps the CRD and the models.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.api_cases import example_manifest
from devenv.cluster import REPO_ROOT, ClusterBinaries, LocalCluster
from devenv.operator import OperatorProcess, grant_operator_rbac
from rollforward.operator_main import peering_name
from rollforward.settings import OperatorSettings

CHART = REPO_ROOT / "charts" / "rollforward"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
MONITORING_CRDS = REPO_ROOT / "tests" / "data" / "crds" / "monitoring"
PEERING_CRDS = CHART / "files" / "kopf-peering-crds.yaml"
CRD_FILE = REPO_ROOT / "crds" / "modeldeployments.rollforward.io.yaml"
CRD_NAME = "modeldeployments.rollforward.io"
KEEP = "helm.sh/resource-policy"
NAMESPACED_CI = ["team-a", "team-b"]
PEERING_CRD_NAMES = ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """helm without a cluster (template, lint, package)."""
    argv = [str(ClusterBinaries.from_environment().path("helm")), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def render_text(*args: str, namespace: str = "rollforward-system") -> str:
    result = helm("template", "rf", str(CHART), "-n", namespace, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(*args: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(render_text(*args)) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = of_kind(docs, kind)
    return doc


def rules_file() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())
    return loaded


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples a rule list grants."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# --- helm alone ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_lint_strict_is_clean(values: Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("replicaCount=two", "replicaCount"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("config.workers=0", "workers"),
        ("noSuchValue=1", "noSuchValue"),
        ("crds.kep=true", "kep"),
    ],
)
def test_the_schema_refuses_bad_values(setting: str, complaint: str) -> None:
    result = helm("template", "rf", str(CHART), "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_the_crd_is_the_repository_file_with_the_keep_policy() -> None:
    rendered = the(render(), "CustomResourceDefinition")
    assert rendered["metadata"]["annotations"] == {KEEP: "keep"}
    del rendered["metadata"]["annotations"]
    assert rendered == yaml.safe_load(CRD_FILE.read_text())


def test_crds_keep_off_and_crds_off() -> None:
    without_keep = the(render("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in without_keep["metadata"]
    assert of_kind(render("--set", "crds.enabled=false"), "CustomResourceDefinition") == []


def test_helm_package_carries_the_generated_crd(tmp_path: Path) -> None:
    result = helm("package", str(CHART), "-d", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("rollforward-*.tgz")
    with tarfile.open(archive) as packaged:
        member = packaged.getmember(f"rollforward/files/crds/{CRD_FILE.name}")
        assert member.isfile(), "the package must hold the file, not a link"
        extracted = packaged.extractfile(member)
        assert extracted is not None
        assert extracted.read() == CRD_FILE.read_bytes()
        names = packaged.getnames()
    assert not any("/hack/" in name for name in names), "the docs generator is not packaged"


def test_cluster_wide_rbac_is_exactly_the_rules_file() -> None:
    docs = render()
    assert the(docs, "ClusterRole")["rules"] == rules_file()
    assert of_kind(docs, "Role") == []
    binding = the(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rf-rollforward", "namespace": "rollforward-system"}
    ]


def test_namespaced_rbac_splits_the_rules_file_without_losing_a_grant() -> None:
    docs = render("--set", "watch.namespaces={team-a,team-b}")
    roles = of_kind(docs, "Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == NAMESPACED_CI
    cluster_role = the(docs, "ClusterRole")
    for role in roles:
        assert grants(role["rules"]) | grants(cluster_role["rules"]) == grants(rules_file())
        assert not grants(role["rules"]) & grants(cluster_role["rules"])
    bindings = of_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == NAMESPACED_CI
    args = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["run", "--namespace=team-a", "--namespace=team-b"]


def test_the_operator_pod_is_locked_down_and_probed_on_kopf_health() -> None:
    deployment = the(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    health = {p["name"]: p["containerPort"] for p in container["ports"]}["health"]
    assert env["ROLLFORWARD_HEALTH_PORT"] == str(health)
    assert container["args"] == ["run", "--all-namespaces"]
    assert "ROLLFORWARD_PEERING_NAME" not in env
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_operator_wide_defaults_reach_the_environment() -> None:
    docs = render(
        "--set", "config.prometheusUrl=http://prom:9090",
        "--set", "config.routerImage.repository=nginx",
        "--set", "config.routerImage.tag=1.99",
        "--set", "config.bentoImage.repository=example/bento",
        "--set", "config.bentoImage.digest=sha256:" + "a" * 64,
    )  # fmt: skip
    container = the(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["ROLLFORWARD_PROMETHEUS_URL"] == "http://prom:9090"
    assert env["ROLLFORWARD_ROUTER_IMAGE"] == "nginx:1.99"
    assert env["ROLLFORWARD_BENTO_IMAGE"] == "example/bento@sha256:" + "a" * 64


def test_more_than_one_replica_elects_a_leader() -> None:
    docs = render("--set", "replicaCount=2")
    deployment = the(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["ROLLFORWARD_PEERING_NAME"] == "rollforward"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    crds = {doc["metadata"]["name"] for doc in of_kind(docs, "CustomResourceDefinition")}
    assert crds == {CRD_NAME, "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    peering = the(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "rollforward"
    assert "post-install" in peering["metadata"]["annotations"]["helm.sh/hook"]
    namespaced = render("--set", "replicaCount=2", "--set", "watch.namespaces={team-a,team-b}")
    assert sorted(p["metadata"]["namespace"] for p in of_kind(namespaced, "KopfPeering")) == (
        NAMESPACED_CI
    )


def test_shards_are_one_deployment_each_with_their_own_peering() -> None:
    docs = render("--set", "sharding.shards=2", "--set", "leaderElection.enabled=true")
    deployments = of_kind(docs, "Deployment")
    args = [d["spec"]["template"]["spec"]["containers"][0]["args"] for d in deployments]
    assert [a[-1] for a in args] == ["--shard=0/2", "--shard=1/2"]
    selectors = [d["spec"]["selector"]["matchLabels"]["rollforward.io/shard"] for d in deployments]
    assert selectors == ["0", "1"]  # neither Deployment adopts the other's pods
    peerings = [p["metadata"]["name"] for p in of_kind(docs, "ClusterKopfPeering")]
    assert peerings == ["rollforward-shard-0-of-2", "rollforward-shard-1-of-2"]
    # The operator derives the same name from --shard and the peering name.
    settings = OperatorSettings(peering_name="rollforward", shard="1/2")
    assert peering_name(settings) == peerings[1]
    (single,) = of_kind(render(), "Deployment")
    assert not any(
        a.startswith("--shard") for a in single["spec"]["template"]["spec"]["containers"][0]["args"]
    )


# --- promtool ------------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: run `make system-deps` (Debian's prometheus package)"
    return path


def rendered_rules(tmp_path: Path, *args: str) -> Path:
    rule = the(render("--set", "monitoring.prometheusRule.enabled=true", *args), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def test_promtool_checks_the_rendered_rules(tmp_path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(rendered_rules(tmp_path))],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout
    without_ksm = rendered_rules(
        tmp_path, "--set", "monitoring.prometheusRule.kubeStateMetrics=false"
    )
    result = subprocess.run(
        [promtool(), "check", "rules", str(without_ksm)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "SUCCESS: 3 rules found" in result.stdout


def alert(labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": labels,
        "exp_annotations": {"summary": summary, "description": description},
    }


def test_alerts_fire_on_the_series_they_are_about(tmp_path: Path) -> None:
    """`promtool test rules`: each alert fires when its situation happens, and not before."""
    rules = rendered_rules(tmp_path)
    series = [
        # Drift checks breach once a minute from t=0.
        ("rollforward_operator_drift_checks_total{outcome='Drift'}", "0+1x60"),
        # Prometheus queries: 10/min, 9 of them failing.
        ("rollforward_operator_prometheus_queries_total{result='ok'}", "0+1x60"),
        ("rollforward_operator_prometheus_queries_total{result='error'}", "0+9x60"),
        # Reconciles: all fine.
        ("rollforward_operator_reconciles_total{result='ok'}", "0+10x60"),
        ("rollforward_operator_reconciles_total{result='error'}", "0+0x60"),
        # A variant Deployment run by Rollforward stops progressing; another one is fine.
        ("kube_deployment_status_condition{namespace='ml',deployment='upsell-champion',"
         "condition='Progressing',status='false'}", "1x60"),
        ("kube_deployment_labels{namespace='ml',deployment='upsell-champion',"
         "label_app_kubernetes_io_managed_by='rollforward'}", "1x60"),
        ("kube_deployment_status_condition{namespace='ml',deployment='other',"
         "condition='Progressing',status='false'}", "1x60"),
        ("kube_deployment_labels{namespace='ml',deployment='other'}", "1x60"),
        # A retraining Job fails; an unrelated Job fails too.
        ("kube_job_failed{namespace='ml',job_name='upsell-retrain-abc-1',"
         "condition='true'}", "1x60"),
        ("kube_job_failed{namespace='ml',job_name='nightly-backup',condition='true'}", "1x60"),
    ]  # fmt: skip
    rolled = {"namespace": "ml", "deployment": "upsell-champion", "condition": "Progressing",
              "status": "false", "severity": "critical"}  # fmt: skip
    retrain = {"namespace": "ml", "job_name": "upsell-retrain-abc-1", "condition": "true",
               "severity": "warning"}  # fmt: skip
    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "RollforwardDriftDetected", "exp_alerts": []},
                    {"eval_time": "20m", "alertname": "RollforwardDriftDetected",
                     "exp_alerts": [alert(
                         {"severity": "warning"},
                         "Drift checks of a ModelDeployment keep failing.",
                         "15 drift checks breached their threshold in the last 15 minutes. Run"
                         " `kubectl get modeldeployments -A` and look for Phase Drifted or"
                         " Retraining; the Drifted condition's message names the statistic and"
                         " its score.")]},
                    {"eval_time": "25m", "alertname": "RollforwardMonitoringUnavailable",
                     "exp_alerts": [alert(
                         {"severity": "warning"},
                         "Most of the operator's Prometheus queries fail.",
                         "90% of the operator's Prometheus queries failed over 10 minutes. Drift"
                         " detection and canary analysis are on hold; check the"
                         " MonitoringAvailable condition and the operator's Prometheus URL.")]},
                    {"eval_time": "30m", "alertname": "RollforwardReconcileFailing",
                     "exp_alerts": []},
                    {"eval_time": "2m", "alertname": "RollforwardRolloutFailed", "exp_alerts": []},
                    {"eval_time": "10m", "alertname": "RollforwardRolloutFailed",
                     "exp_alerts": [alert(
                         rolled,
                         "Rollout of ml/upsell-champion failed.",
                         "Deployment ml/upsell-champion, run by Rollforward, is not progressing."
                         " The ModelDeployment reports Ready=False (VariantUnavailable); a canary"
                         " in this state is rolled back.")]},
                    {"eval_time": "1m", "alertname": "RollforwardRetrainFailing",
                     "exp_alerts": [alert(
                         retrain,
                         "Retraining Job ml/upsell-retrain-abc-1 failed.",
                         "The retraining Job failed; the ModelDeployment shows Retraining=False"
                         " with reason JobFailed and keeps serving its champion. `kubectl logs"
                         " job/upsell-retrain-abc-1` says why.")]},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": "rollforward_operator_reconciles_total{result='ok'}",
                     "values": "0+1x60"},
                    {"series": "rollforward_operator_reconciles_total{result='error'}",
                     "values": "0+1x60"},
                ],
                "alert_rule_test": [
                    {"eval_time": "10m", "alertname": "RollforwardReconcileFailing",
                     "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "RollforwardReconcileFailing",
                     "exp_alerts": [alert(
                         {"severity": "warning"},
                         "The operator's reconciles keep failing.",
                         "50% of reconciles failed over 10 minutes; the operator's log says why"
                         " (an invalid spec shows as Ready=False, InvalidSpec).")]},
                    {"eval_time": "30m", "alertname": "RollforwardDriftDetected",
                     "exp_alerts": []},
                    {"eval_time": "30m", "alertname": "RollforwardMonitoringUnavailable",
                     "exp_alerts": []},
                ],
            },
        ],
    }  # fmt: skip
    path = tmp_path / "alerts-test.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the API server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart_prerequisites(local_cluster: LocalCluster, installed_crds: list[str]) -> LocalCluster:
    """The monitoring stand-in CRDs, kopf's peering CRDs, and the ci/ namespaces."""
    local_cluster.install_crds(MONITORING_CRDS)
    local_cluster.kubectl("apply", "--server-side", "-f", str(PEERING_CRDS))
    for name in PEERING_CRD_NAMES:
        local_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}")
    for namespace in [*NAMESPACED_CI, "rollforward-system"]:
        local_cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    return local_cluster


@pytest.mark.parametrize("values", CI_VALUES, ids=[p.stem for p in CI_VALUES])
def test_ci_values_pass_server_side_validation(
    chart_prerequisites: LocalCluster, values: Path
) -> None:
    manifest = render_text("-f", str(values))
    result = chart_prerequisites.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
    )
    assert result.returncode == 0, result.stderr
    applied = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len([d for d in yaml.safe_load_all(manifest) if d])


def test_every_cluster_scoped_resource_of_the_rules_goes_to_the_cluster_role(
    chart_prerequisites: LocalCluster,
) -> None:
    listed = chart_prerequisites.kubectl(
        "api-resources", "--namespaced=false", "-o", "name"
    ).stdout.split()
    cluster_scoped = {name.split(".", 1)[0] for name in listed}
    docs = render("--set", "watch.namespaces={team-a}")
    in_cluster_role = {r for rule in the(docs, "ClusterRole")["rules"] for r in rule["resources"]}
    in_role = {r for rule in the(docs, "Role")["rules"] for r in rule["resources"]}
    every = {r for rule in rules_file() for r in rule["resources"]}
    assert in_cluster_role == every & cluster_scoped
    assert in_role == every - cluster_scoped


@pytest.fixture
def release(chart_prerequisites: LocalCluster) -> Iterator[tuple[str, str]]:
    """A release name and namespace of this test; the release is uninstalled afterwards."""
    name = f"rf-{uuid.uuid4().hex[:6]}"
    namespace = f"{name}-system"
    adopt_crd(chart_prerequisites, name, namespace)
    yield name, namespace
    chart_prerequisites.helm("uninstall", name, "-n", namespace, "--wait", check=False)
    chart_prerequisites.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def adopt_crd(cluster: LocalCluster, release: str, namespace: str) -> None:
    """Hand the session's CRDs (applied by kubectl) to this release, as `helm install` would own
    them on a fresh cluster. CRDs are kept on uninstall, so other tests never lose them."""
    for crd in (CRD_NAME, *PEERING_CRD_NAMES):
        cluster.kubectl("label", "--overwrite", f"crd/{crd}", "app.kubernetes.io/managed-by=Helm")
        cluster.kubectl(
            "annotate", "--overwrite", f"crd/{crd}",
            f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
        )  # fmt: skip


def model_deployment(namespace: str) -> dict[str, Any]:
    manifest = example_manifest()
    manifest["metadata"]["namespace"] = namespace
    manifest["spec"]["variants"][0]["replicas"] = 1
    return manifest


def snapshot(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    """What must not change across an operator upgrade: the ModelDeployment's identity,
    generation and spec, and the identity and spec of every child."""
    body = cluster.kubectl_json("-n", namespace, "get", "modeldeployment", "upsell")
    children = cluster.kubectl_json(
        "-n", namespace, "get", "deployments,services,configmaps",
        "-l", "app.kubernetes.io/managed-by=rollforward",
    )["items"]  # fmt: skip
    return {
        "uid": body["metadata"]["uid"],
        "generation": body["metadata"]["generation"],
        "spec": body["spec"],
        "children": {
            (c["kind"], c["metadata"]["name"]): (c["metadata"]["uid"], c.get("spec", c.get("data")))
            for c in children
        },
    }


def wait_ready(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl(
        "-n", namespace, "wait", "modeldeployment/upsell", "--for=condition=Ready",
        "--timeout=120s", timeout=130,
    )  # fmt: skip


def operator_deployment(cluster: LocalCluster, release: str, namespace: str) -> dict[str, Any]:
    deployment: dict[str, Any] = cluster.kubectl_json(
        "-n", namespace, "get", "deployment", f"{release}-rollforward"
    )
    return deployment


def test_install_run_upgrade_uninstall(
    chart_prerequisites: LocalCluster,
    release: tuple[str, str],
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    cluster = chart_prerequisites
    name, namespace = release
    account = f"{name}-rollforward"

    # Given the chart installed in namespaced mode, watching the test's namespace
    cluster.helm(
        "install", name, str(CHART), "-n", namespace, "--create-namespace",
        "--set", f"watch.namespaces={{{cluster_namespace}}}",
        "--wait", "--timeout=120s",
    )  # fmt: skip
    # Then the operator Deployment is Available
    cluster.kubectl(
        "-n", namespace, "wait", f"deployment/{account}", "--for=condition=Available",
        "--timeout=60s",
    )  # fmt: skip

    # When the operator runs with the chart's ServiceAccount token
    kubeconfig = cluster.kubeconfig_for_service_account(
        namespace, account, tmp_path / "chart-account.kubeconfig"
    )
    with OperatorProcess(kubeconfig, tmp_path, namespaces=[cluster_namespace]) as operator:
        cluster.apply(model_deployment(cluster_namespace))
        # Then it reconciles a ModelDeployment to Ready
        wait_ready(cluster, cluster_namespace)
        before = snapshot(cluster, cluster_namespace)
        assert len(before["children"]) >= 3

        # When the operator image changes with `helm upgrade`
        old_image = operator_deployment(cluster, name, namespace)["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
        cluster.helm(
            "upgrade", name, str(CHART), "-n", namespace, "--reuse-values",
            "--set", "image.tag=0.1.1", "--wait", "--timeout=120s",
        )  # fmt: skip
        upgraded = operator_deployment(cluster, name, namespace)
        new_image = upgraded["spec"]["template"]["spec"]["containers"][0]["image"]
        assert (old_image, new_image) == (
            "ghcr.io/rollforward/operator:0.1.0",
            "ghcr.io/rollforward/operator:0.1.1",
        )
        cluster.kubectl(
            "-n", namespace, "rollout", "status", f"deployment/{account}", "--timeout=60s"
        )
        # Then every ModelDeployment and child is untouched, and still Ready
        wait_ready(cluster, cluster_namespace)
        assert snapshot(cluster, cluster_namespace) == before
    log = operator.log_path.read_text()
    assert "is forbidden: User" not in log, "the chart's RBAC denied the operator something"

    # When the release is uninstalled
    cluster.helm("uninstall", name, "-n", namespace, "--wait", "--timeout=120s")
    # Then the operator and its RBAC are gone
    gone = cluster.kubectl("-n", namespace, "get", "deployment", account, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert cluster.kubectl("get", "clusterrole", account, check=False).returncode != 0
    # And the kept CRD keeps the ModelDeployment and every model it serves
    crd = cluster.kubectl_json("get", "crd", CRD_NAME)
    assert crd["metadata"]["annotations"][KEEP] == "keep"
    assert snapshot(cluster, cluster_namespace) == before


# --- GitOps --------------------------------------------------------------------------------

GITOPS_EXAMPLE = REPO_ROOT / "gitops" / "example" / "models" / "upsell" / "production"
GIT_MANAGER = "gitops-controller"


def test_git_equals_live_after_the_operator_reconciles(
    chart_prerequisites: LocalCluster, cluster_namespace: str, tmp_path: Path
) -> None:
    """Given the example GitOps overlay applied the way Argo CD and Flux apply it (server-side,
    their own field manager), when the operator has reconciled it to Ready, then a diff of Git
    against the live object is empty, and no field of spec belongs to anyone but Git."""
    cluster = chart_prerequisites
    rendered = cluster.kubectl("kustomize", str(GITOPS_EXAMPLE)).stdout
    (manifest,) = [doc for doc in yaml.safe_load_all(rendered) if doc]
    manifest["metadata"]["namespace"] = cluster_namespace
    git = yaml.safe_dump(manifest)
    apply_as_git = ("apply", "--server-side", f"--field-manager={GIT_MANAGER}", "-f", "-")
    cluster.kubectl(*apply_as_git, input=git)

    kubeconfig = grant_operator_rbac(cluster, tmp_path)
    with OperatorProcess(kubeconfig, tmp_path, namespaces=[cluster_namespace]):
        wait_ready(cluster, cluster_namespace)
        diff = cluster.kubectl(
            "diff", "--server-side", f"--field-manager={GIT_MANAGER}", "-f", "-",
            input=git, check=False,
        )  # fmt: skip
        assert diff.returncode == 0, f"Git and the live object differ:\n{diff.stdout}"
        live = cluster.kubectl_json(
            "-n", cluster_namespace, "get", "modeldeployment", "upsell", "--show-managed-fields"
        )
        children = cluster.kubectl_json(
            "-n", cluster_namespace, "get", "deployments,services,configmaps",
            "-l", "app.kubernetes.io/managed-by=rollforward", "--show-managed-fields",
        )["items"]  # fmt: skip

    spec_owners = {
        entry["manager"]
        for entry in live["metadata"]["managedFields"]
        if "f:spec" in entry.get("fieldsV1", {})
    }
    assert spec_owners == {GIT_MANAGER}
    # Every child the operator made carries its one stable field manager, and nobody else's.
    assert len(children) >= 3
    for child in children:
        writers = {
            entry["manager"]
            for entry in child["metadata"]["managedFields"]
            if entry.get("subresource") != "status"
        }
        assert writers == {"rollforward"}, (child["kind"], child["metadata"]["name"], writers)
    assert live["metadata"]["annotations"]["rollforward.io/paused"] == "false"
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]


def test_two_replicas_elect_one_leader_through_the_charts_peering(
    chart_prerequisites: LocalCluster,
    release: tuple[str, str],
    cluster_namespace: str,
    tmp_path: Path,
) -> None:
    """Given the chart with two replicas (peering on), when two operators run under its
    ServiceAccount with the chart's peering name, then one reconciles and the other stands by."""
    cluster = chart_prerequisites
    name, namespace = release
    account = f"{name}-rollforward"
    cluster.helm(
        "install", name, str(CHART), "-n", namespace, "--create-namespace",
        "--set", f"watch.namespaces={{{cluster_namespace}}}", "--set", "replicaCount=2",
        "--wait", "--timeout=120s",
    )  # fmt: skip
    peering = cluster.kubectl_json("-n", cluster_namespace, "get", "kopfpeering", "rollforward")
    assert peering["metadata"]["name"] == "rollforward"
    container = operator_deployment(cluster, name, namespace)["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    kubeconfig = cluster.kubeconfig_for_service_account(namespace, account, tmp_path / "sa")
    peering_env = {"ROLLFORWARD_PEERING_NAME": env["ROLLFORWARD_PEERING_NAME"]}
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with (
        OperatorProcess(kubeconfig, first, env=peering_env, namespaces=[cluster_namespace]) as a,
        OperatorProcess(kubeconfig, second, env=peering_env, namespaces=[cluster_namespace]) as b,
    ):
        cluster.apply(model_deployment(cluster_namespace))
        ready = cluster.kubectl(
            "-n", cluster_namespace, "wait", "modeldeployment/upsell", "--for=condition=Ready",
            "--timeout=90s", timeout=100, check=False,
        )  # fmt: skip

        # kopf's peering is eventual: both replicas may act until they have seen each other.
        # Once settled, a change must be handled by exactly one of them.
        time.sleep(10)
        settled = [len(a.log_path.read_text()), len(b.log_path.read_text())]
        cluster.kubectl(
            "-n", cluster_namespace, "annotate", "modeldeployment/upsell", "example.com/touch=1",
        )  # fmt: skip
        time.sleep(8)
        logs = [a.log_path.read_text(), b.log_path.read_text()]
    assert ready.returncode == 0, "no operator reconciled: " + " | ".join(
        line for log in logs for line in log.splitlines() if "Pausing" in line
    )
    acted = [
        "on_model_deployment' succeeded" in log[start:]
        for log, start in zip(logs, settled, strict=True)
    ]
    assert sorted(acted) == [False, True], acted
    assert not any("is forbidden: User" in log for log in logs)


def test_prometheus_credentials_are_mounted_and_named_in_the_environment() -> None:
    docs = render(
        "--set", "config.prometheusUrl=https://prom:9090",
        "--set", "config.prometheusAuth.secretName=prom-auth",
        "--set", "config.prometheusAuth.caKey=ca.crt",
        "--set", "config.prometheusAuth.basicAuthUsername=reader",
        "--set", "config.prometheusAuth.passwordKey=password",
    )  # fmt: skip
    pod = the(docs, "Deployment")["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    assert env["ROLLFORWARD_PROMETHEUS_CA_FILE"] == "/etc/rollforward/prometheus/ca.crt"
    assert env["ROLLFORWARD_PROMETHEUS_BASIC_AUTH_USERNAME"] == "reader"
    assert env["ROLLFORWARD_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE"] == (
        "/etc/rollforward/prometheus/password"
    )
    assert "ROLLFORWARD_PROMETHEUS_INSECURE_SKIP_VERIFY" not in env
    (volume,) = [v for v in pod["volumes"] if v["name"] == "prometheus-auth"]
    assert volume["secret"]["secretName"] == "prom-auth"
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["prometheus-auth"]["readOnly"] is True


# Rendered, not enforced: the real node's bridge CNI enforces no NetworkPolicy, and
# kube-network-policies cannot run on the test kernel (no nftables `queue` expression).
def test_workload_network_policies_admit_only_routers_prometheus_and_feedback() -> None:
    docs = render(
        "--set", "workloadNetworkPolicy.enabled=true",
        "--set", "watch.namespaces={ml,shop}",
        "--set", "workloadNetworkPolicy.prometheusFrom[0].namespaceSelector.matchLabels.team=obs",
        "--set", "workloadNetworkPolicy.feedbackFrom[0].podSelector.matchLabels.app=labeller",
    )  # fmt: skip
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["spec"]
        for p in of_kind(docs, "NetworkPolicy")
    }
    assert {k for k in policies if k[1].startswith("rollforward-")} >= {
        ("ml", "rollforward-bentos"),
        ("ml", "rollforward-routers"),
        ("shop", "rollforward-bentos"),
        ("shop", "rollforward-routers"),
    }
    bentos = policies[("ml", "rollforward-bentos")]
    assert bentos["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "bento"
    (rule,) = bentos["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/managed-by": "rollforward",
                    "app.kubernetes.io/component": "router",
                }
            }
        },
        {"namespaceSelector": {"matchLabels": {"team": "obs"}}},
        {"podSelector": {"matchLabels": {"app": "labeller"}}},
    ]
    failed = helm("template", "x", str(CHART), "--set", "workloadNetworkPolicy.enabled=true")
    assert failed.returncode != 0 and "workloadNetworkPolicy.namespaces" in failed.stderr
