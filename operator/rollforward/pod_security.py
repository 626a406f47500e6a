"""Pod Security `restricted` for every pod the operator creates. Pure.

A namespace that enforces the `restricted` Pod Security Standard admits a pod only when it runs
as non-root, with the RuntimeDefault (or a Localhost) seccomp profile, without privilege
escalation and with every capability dropped. The operator's own pods (bentos, the router) set
all of that, and a read-only root filesystem with emptyDirs for the paths they write. The
retraining Job runs the user's pod template: the operator fills in only what the template leaves
unset, so a value the user wrote always wins (also a value that `restricted` refuses: the
namespace's policy, not the operator, decides about it). It does not make the Job's root
filesystem read-only, because only the user knows which paths their trainer writes.
"""

from __future__ import annotations

from rollforward.observed import Manifest

TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"
RUNTIME_DEFAULT_SECCOMP: Manifest = {"type": "RuntimeDefault"}


def pod_security_context(user: int) -> Manifest:
    """Pod-level context of an operator-built pod, running as `user` (its image's user).

    The user is explicit so the kubelet can check runAsNonRoot even for images whose USER is a
    name rather than a number; fsGroup makes mounted volumes writable by that user.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": dict(RUNTIME_DEFAULT_SECCOMP),
    }


def container_security_context() -> Manifest:
    """Container-level context of an operator-built container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def tmp_volume() -> Manifest:
    """The emptyDir behind /tmp, the only path a read-only container writes."""
    return {"name": TMP_VOLUME, "emptyDir": {}}


def tmp_mount() -> Manifest:
    return {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def with_restricted_defaults(pod_spec: Manifest) -> Manifest:
    """`pod_spec` with the `restricted` fields it leaves unset filled in; set ones stay."""
    spec = dict(pod_spec)
    spec["securityContext"] = _pod_defaults(dict(pod_spec.get("securityContext") or {}))
    for key in ("initContainers", "containers"):
        if key in spec:
            spec[key] = [_container_defaults(dict(c)) for c in spec[key]]
    return spec


def _pod_defaults(context: Manifest) -> Manifest:
    # A template that asks for root at pod level gets it; adding runAsNonRoot would only make
    # the kubelet refuse to start the pod with a less clear message than the namespace's policy.
    if context.get("runAsUser") != 0:
        context.setdefault("runAsNonRoot", True)
    context.setdefault("seccompProfile", dict(RUNTIME_DEFAULT_SECCOMP))
    return context


def _container_defaults(container: Manifest) -> Manifest:
    context = dict(container.get("securityContext") or {})
    # The API server refuses allowPrivilegeEscalation=false together with privileged=true.
    if not context.get("privileged"):
        context.setdefault("allowPrivilegeEscalation", False)
    capabilities = dict(context.get("capabilities") or {})
    # Added capabilities are applied after the drop, so `add` alone keeps its meaning.
    capabilities.setdefault("drop", ["ALL"])
    context["capabilities"] = capabilities
    container["securityContext"] = context
    return container
