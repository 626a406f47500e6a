"""How the local pod runner turns one container of a pod into a local process: pure decisions.

There are no images here, so a container runs as its own command in the project's Python
environment, with three translations a kubelet plus a container runtime would make unnecessary:
- Ports: every declared containerPort gets a free loopback port of its own (pods all share
  127.0.0.1), and `--host H` / `--port N` arguments are rewritten to 127.0.0.1 and N's local port.
- Executables: `python` and the venv's console scripts (`bentoml`) resolve to the venv.
- Files: the termination message goes to a local file named by ROLLFORWARD_TERMINATION_MESSAGE_PATH.
A container without a command runs only when it is an nginx router (the image's entrypoint is
known: nginx on the config mounted from a ConfigMap); anything else cannot run locally and is
reported as such on the pod, as a kubelet reports an image it cannot pull.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from devenv.scrape_config import kubernetes_sd_labels
from rollforward.serving.contract import ENV_TERMINATION_MESSAGE_PATH

LOCAL_HOST = "127.0.0.1"
NGINX_CONFIG_PATH = "/etc/nginx/nginx.conf"
# Images (last path segment, no tag) whose own entrypoint runs nginx on NGINX_CONFIG_PATH.
NGINX_IMAGES = frozenset({"nginx", "nginx-unprivileged", "router"})
PYTHON_NAMES = frozenset({"python", "python3", "python3.11"})
_VAR_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")

Manifest = dict[str, Any]


class LaunchError(ValueError):
    """The container cannot run locally; `reason` is the kubelet-style waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Workload(StrEnum):
    """What runs a container locally."""

    # The container's own command, as a child process.
    PROCESS = "process"
    # Debian's nginx on the ConfigMap's nginx.conf, with Service names resolved to local pods.
    NGINX = "nginx"


@dataclass(frozen=True)
class HttpProbe:
    """An httpGet probe, with its port resolved to the container port number."""

    path: str
    container_port: int
    period_seconds: float
    failure_threshold: int


@dataclass(frozen=True)
class ConfigMapFile:
    """Where a mounted file's content comes from."""

    config_map: str
    key: str


@dataclass(frozen=True)
class ContainerLaunch:
    """Everything the runner needs to start one container, decided from the pod alone."""

    name: str
    workload: Workload
    argv: tuple[str, ...]
    env: dict[str, str]
    # container port -> local port on 127.0.0.1
    ports: dict[int, int]
    readiness: HttpProbe | None
    nginx_config: ConfigMapFile | None = None
    # Kubernetes' terminationMessagePolicy: FallbackToLogsOnError uses the log tail on failure.
    fallback_to_logs_on_error: bool = False
    serves_bento: bool = False


def container_ports(container: Mapping[str, Any]) -> list[int]:
    """The declared containerPorts, in order."""
    return [int(p["containerPort"]) for p in container.get("ports") or []]


def port_number(container: Mapping[str, Any], port: int | str) -> int:
    """A probe's or a Service's target port: a number, or the name of a declared port."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise LaunchError("CreateContainerConfigError", f"no container port named {port!r}")


def readiness_probe(container: Mapping[str, Any]) -> HttpProbe | None:
    probe = container.get("readinessProbe")
    if not probe:
        return None
    http = probe.get("httpGet")
    if http is None:
        raise LaunchError("CreateContainerConfigError", "only httpGet readiness probes run locally")
    return HttpProbe(
        path=str(http.get("path", "/")),
        container_port=port_number(container, http["port"]),
        period_seconds=float(probe.get("periodSeconds", 10)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


def field_value(pod: Mapping[str, Any], field_path: str, pod_ip: str) -> str:
    """The value of an env `fieldRef` (the fields the downward API offers for env)."""
    metadata = pod["metadata"]
    simple = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "metadata.uid": metadata.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": pod_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", field_path)
    if match:
        return str((metadata.get(match[1]) or {}).get(match[2], ""))
    raise LaunchError("CreateContainerConfigError", f"unsupported fieldRef {field_path!r}")


SecretValue = Callable[[str, str], str | None]
"""(Secret name, key) in the pod's namespace -> the decoded value, or None when absent."""


def declared_env(
    pod: Mapping[str, Any], container: Mapping[str, Any], secret_value: SecretValue | None = None
) -> dict[str, str]:
    """The container's `env`, with `$(VAR)` references to earlier variables expanded."""
    env: dict[str, str] = {}
    for variable in container.get("env") or []:
        name = variable["name"]
        if "valueFrom" in variable:
            env[name] = _value_from(pod, name, variable["valueFrom"], secret_value)
        else:
            env[name] = expand_references(str(variable.get("value", "")), env)
    return env


def _value_from(
    pod: Mapping[str, Any], name: str, source: Mapping[str, Any], secret_value: SecretValue | None
) -> str:
    field_ref, secret_ref = source.get("fieldRef"), source.get("secretKeyRef")
    if field_ref is not None:
        return field_value(pod, field_ref["fieldPath"], LOCAL_HOST)
    if secret_ref is not None and secret_value is not None:
        value = secret_value(secret_ref["name"], secret_ref["key"])
        if value is None:
            # As the kubelet: the container waits until the Secret exists.
            raise LaunchError(
                "CreateContainerConfigError",
                f'env {name}: secret "{secret_ref["name"]}" or its key "{secret_ref["key"]}" '
                "not found",
            )
        return value
    raise LaunchError(
        "CreateContainerConfigError",
        f"env {name}: only value, fieldRef and secretKeyRef are supported locally",
    )


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` is a literal `$`,
    and unknown references stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VAR_REFERENCE.sub(replace, text)


def rewrite_listen_args(args: Sequence[str], ports: Mapping[int, int]) -> list[str]:
    """`--host H` -> 127.0.0.1 and `--port N` -> N's local port (also in `--flag=value` form)."""
    rewritten: list[str] = []
    pending: str | None = None
    for arg in args:
        if pending is not None:
            rewritten.append(_listen_value(pending, arg, ports))
            pending = None
            continue
        flag, equals, value = arg.partition("=")
        if flag in ("--host", "--port") and equals:
            rewritten.append(f"{flag}={_listen_value(flag, value, ports)}")
        else:
            rewritten.append(arg)
            if arg in ("--host", "--port"):
                pending = arg
    return rewritten


def _listen_value(flag: str, value: str, ports: Mapping[int, int]) -> str:
    if flag == "--host":
        return LOCAL_HOST
    if value.isdigit() and int(value) in ports:
        return str(ports[int(value)])
    return value


def resolve_executable(name: str, python: Path) -> str:
    """`python` is the runner's own interpreter; a venv console script resolves to the venv."""
    if name in PYTHON_NAMES:
        return str(python)
    if "/" not in name and (python.parent / name).exists():
        return str(python.parent / name)
    return name


def nginx_config_file(pod: Mapping[str, Any], container: Mapping[str, Any]) -> ConfigMapFile:
    """The ConfigMap key mounted at nginx's config path (whole-volume or subPath mount)."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"], {}).get("configMap")
        if source is None:
            continue
        path = str(mount["mountPath"]).rstrip("/")
        if path == NGINX_CONFIG_PATH and mount.get("subPath"):
            return ConfigMapFile(source["name"], str(mount["subPath"]))
        if path == NGINX_CONFIG_PATH.rsplit("/", 1)[0]:
            return ConfigMapFile(source["name"], NGINX_CONFIG_PATH.rsplit("/", 1)[1])
    raise LaunchError("CreateContainerConfigError", f"no ConfigMap mounted at {NGINX_CONFIG_PATH}")


# Images that are nginx run by its own entrypoint: the stock one, the unprivileged one the
# operator defaults to, and the one `make images` builds (rollforward/router).
NGINX_IMAGES = frozenset({"nginx", "nginx-unprivileged", "router"})


def is_nginx(container: Mapping[str, Any]) -> bool:
    """An nginx router: a container whose command runs `nginx` (the operator's router), or an
    nginx image run with its own entrypoint (no command)."""
    command = container.get("command") or []
    if command:
        return Path(str(command[0])).name == "nginx"
    image = str(container.get("image", "")).rsplit("/", 1)[-1]
    return image.split(":", 1)[0].split("@", 1)[0] in NGINX_IMAGES


def plan_container(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    ports: Mapping[int, int],
    python: Path,
    termination_message_file: Path,
    secret_value: SecretValue | None = None,
) -> ContainerLaunch:
    """How to run `container` of `pod` locally, with `ports` already allocated to it."""
    env = declared_env(pod, container, secret_value)
    fallback = container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
    readiness = readiness_probe(container)
    name = str(container["name"])
    if is_nginx(container):
        return ContainerLaunch(
            name=name,
            workload=Workload.NGINX,
            argv=(),
            env=env,
            ports=dict(ports),
            readiness=readiness,
            nginx_config=nginx_config_file(pod, container),
            fallback_to_logs_on_error=fallback,
        )
    command = [expand_references(str(a), env) for a in container.get("command") or []]
    args = [expand_references(str(a), env) for a in container.get("args") or []]
    if not command:
        raise LaunchError(
            "ErrImagePull",
            f"image {container.get('image')!r} has no known entrypoint here; give a command",
        )
    argv = rewrite_listen_args([*command, *args], ports)
    argv[0] = resolve_executable(argv[0], python)
    serves_bento = Path(argv[0]).name == "bentoml" and argv[1:2] == ["serve"]
    # The container's terminationMessagePath is a file in the container; here it is a local one.
    env[ENV_TERMINATION_MESSAGE_PATH] = str(termination_message_file)
    return ContainerLaunch(
        name=name,
        workload=Workload.PROCESS,
        argv=tuple(argv),
        env=env,
        ports=dict(ports),
        readiness=readiness,
        fallback_to_logs_on_error=fallback,
        serves_bento=serves_bento,
    )


def scrape_target_labels(pod: Mapping[str, Any]) -> dict[str, str]:
    """Target labels of a pod as Prometheus' kubernetes_sd gives them, before relabelling
    (`__meta_kubernetes_namespace`, `__meta_kubernetes_pod_label_rollforward_io_variant`...)."""
    metadata = pod["metadata"]
    containers = pod["spec"].get("containers") or [{}]
    return kubernetes_sd_labels(
        str(metadata["namespace"]),
        str(metadata["name"]),
        {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        str(containers[0].get("name", "")),
    )


def scrape_port(pod: Mapping[str, Any]) -> int | None:
    """The container port named by the `prometheus.io/*` annotations, or None when not scraped."""
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") != "true":
        return None
    if "prometheus.io/port" in annotations:
        return int(annotations["prometheus.io/port"])
    declared = [p for c in pod["spec"]["containers"] for p in container_ports(c)]
    return declared[0] if declared else None


def scrape_path(pod: Mapping[str, Any]) -> str:
    annotations = pod["metadata"].get("annotations") or {}
    return str(annotations.get("prometheus.io/path", "/metrics"))
