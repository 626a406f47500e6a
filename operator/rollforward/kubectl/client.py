"""Talking to the cluster for `kubectl rollforward`, with every failure turned into one line.

The kubeconfig and context are kubectl's: --kubeconfig, else $KUBECONFIG, else
~/.kube/config; --context, else the current context; the namespace from -n, else the
context's, else "default".

Operator version mismatch is decided from what the cluster serves: this CLI speaks
rollforward.io/v1alpha1, so a cluster serving the group at other versions only (a newer or
older operator's CRD) is a mismatch, and so is a status this CLI's models cannot read (a
field changed meaning).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from rollforward import __version__
from rollforward.api import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    ModelDeployment,
    parse_model_deployment,
    validation_messages,
)

RESOURCE = f"{PLURAL}.{GROUP}"
REQUEST_TIMEOUT_SECONDS = 15.0


class CliError(Exception):
    """A failure the user can act on; printed as one line, never as a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Connection:
    """Where to talk to: the resolved kubeconfig, context and default namespace."""

    api_client: k8s.ApiClient
    server: str
    context: str
    namespace: str


def kubeconfig_path(explicit: str | None, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return explicit or env.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def connect(kubeconfig: str | None, context: str | None) -> Connection:
    """Load the kubeconfig like kubectl does. Raises CliError (exit 2) when it is unusable."""
    path = kubeconfig_path(kubeconfig)
    try:
        contexts, active = k8s_config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            raise CliError(f"context {context!r} not found in kubeconfig {path}", 2)
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=chosen["name"], client_configuration=configuration
        )
    except k8s_config.ConfigException as error:
        raise CliError(f"cannot use kubeconfig {path}: {error}", 2) from None
    except OSError as error:
        raise CliError(f"cannot read kubeconfig {path}: {error.strerror or error}", 2) from None
    # Fail fast: an unreachable cluster is reported, not retried for a minute.
    configuration.retries = 0
    namespace = (chosen.get("context") or {}).get("namespace") or "default"
    return Connection(k8s.ApiClient(configuration), configuration.host, chosen["name"], namespace)


class ModelDeploymentClient:
    """Read ModelDeployments and their Events; write annotations. Nothing else."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._objects = k8s.CustomObjectsApi(connection.api_client)
        self._core = k8s.CoreV1Api(connection.api_client)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            "get",
            namespace,
            name,
            lambda: self._objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
        )
        return found

    def list_all(self, namespace: str | None) -> list[dict[str, Any]]:
        def call() -> Any:
            if namespace is None:
                return self._objects.list_cluster_custom_object(
                    GROUP, VERSION, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
                )
            return self._objects.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )

        listed = self._call("list", namespace, None, call)
        items: list[dict[str, Any]] = listed.get("items", [])
        return sorted(items, key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]))

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Events whose involvedObject is this ModelDeployment."""
        selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
        listed = self._call(
            "list",
            namespace,
            None,
            lambda: self._core.list_namespaced_event(
                namespace,
                field_selector=selector,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
                _preload_content=False,
            ),
            resource="events",
        )
        items: list[dict[str, Any]] = json.loads(listed.data).get("items", [])
        return items

    def annotate(self, namespace: str, name: str, patch: dict[str, str | None]) -> dict[str, Any]:
        """A merge patch of metadata.annotations only: spec is never written."""
        body = {"metadata": {"annotations": patch}}
        patched: dict[str, Any] = self._call(
            "patch",
            namespace,
            name,
            lambda: self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body,
                field_manager="kubectl-rollforward",
                _content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
        )
        return patched

    # --- errors ---------------------------------------------------------------------------

    def _call(
        self,
        verb: str,
        namespace: str | None,
        name: str | None,
        call: Any,
        resource: str = RESOURCE,
    ) -> Any:
        try:
            return call()
        except ApiException as error:
            raise self._api_error(error, verb, namespace, name, resource) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise CliError(
                f"cannot reach the cluster at {self._connection.server}"
                f" (context {self._connection.context}): {_short(reason)}"
            ) from None

    def _api_error(
        self, error: ApiException, verb: str, namespace: str | None, name: str | None, resource: str
    ) -> CliError:
        where = f"in namespace {namespace!r}" if namespace else "at cluster scope"
        if error.status == 403:
            return CliError(
                f"forbidden: you may not {verb} {resource} {where}"
                f" (context {self._connection.context}); ask for RBAC to {verb} {resource}"
            )
        if error.status == 401:
            return CliError(
                f"unauthorized: the cluster rejected the credentials of context"
                f" {self._connection.context}"
            )
        if error.status == 404:
            mismatch = self.version_problem()
            if mismatch:
                return CliError(mismatch)
            if resource == RESOURCE and name:
                return CliError(f"modeldeployment {name!r} not found {where}")
        return CliError(
            f"the API server refused to {verb} {resource}: {error.status} {error.reason}"
        )

    def served_versions(self) -> list[str]:
        """The versions of rollforward.io the cluster serves ([] if none)."""
        try:
            groups = k8s.ApisApi(self._connection.api_client).get_api_versions(
                _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError):
            return [VERSION]  # cannot tell; do not blame a version we could not see
        for group in groups.groups or []:
            if group.name == GROUP:
                return [v.version for v in group.versions]
        return []

    def version_problem(self) -> str:
        return version_problem(self.served_versions())


def version_problem(served: list[str]) -> str:
    """Pure: what is wrong (or "") given the versions of rollforward.io the cluster serves."""
    if VERSION in served:
        return ""
    if not served:
        return (
            f"the ModelDeployment CRD ({RESOURCE}) is not installed in this cluster;"
            " install the rollforward chart or `kubectl apply -f crds/`"
        )
    return (
        f"operator version mismatch: the cluster serves {GROUP} {', '.join(served)}, but this"
        f" kubectl-rollforward {__version__} speaks {VERSION}; install the matching plugin"
    )


def parse(body: dict[str, Any]) -> ModelDeployment:
    """The object as the CLI's models see it; a status it cannot read is a version mismatch."""
    try:
        return parse_model_deployment(body)
    except ValidationError as error:
        name = (body.get("metadata") or {}).get("name", "?")
        detail = "; ".join(validation_messages(error)[:2])
        raise CliError(
            f"operator version mismatch: modeldeployment {name!r} has fields this"
            f" kubectl-rollforward {__version__} ({VERSION}) cannot read ({detail});"
            " install the plugin that matches the operator"
        ) from None


def _short(reason: object) -> str:
    text = str(reason)
    # urllib3 wraps the socket error in a long repr; the last clause is the useful part.
    return text.rsplit(": ", 1)[-1].strip(" ')\"") or text
