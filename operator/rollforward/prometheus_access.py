"""How to reach a Prometheus: its CA, its credentials, and whether to verify at all.

Credentials from a ModelDeployment's spec.monitoring come from Secrets in its namespace and
are sent only with that spec; the operator's own (files mounted from a Secret) are sent only
to the operator's default URL, so a tenant cannot point prometheusUrl at a server of theirs
and collect the operator's token. A Secret that cannot be read is a failed query with its
own reason, never a query without credentials.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rollforward.api import ModelDeployment, Reason
from rollforward.api.spec import MonitoringSpec, SecretKeySelector
from rollforward.measurements import QueryResult
from rollforward.settings import OperatorSettings

SecretReader = Callable[[str, str], dict[str, str] | None]
"""(namespace, name) -> the Secret's decoded data, or None when it does not exist."""


@dataclass(frozen=True)
class PrometheusAccess:
    """TLS and credentials for one Prometheus; hashable, so clients and caches key on it."""

    ca_pem: str | None = None
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class PrometheusTarget:
    """A URL and how to reach it."""

    url: str
    access: PrometheusAccess = PrometheusAccess()


class _MissingCredentialError(Exception):
    """A credential could not be read; the message names it."""


def resolve_target(
    deployment: ModelDeployment,
    settings: OperatorSettings,
    read_secret: SecretReader | None,
) -> PrometheusTarget | QueryResult | None:
    """The Prometheus of `deployment` and its access; a failed result when a credential is
    missing; None when no Prometheus is configured."""
    monitoring = deployment.spec.monitoring
    url = monitoring.prometheus_url or settings.prometheus_url
    if url is None:
        return None
    problem = url_problem(url)
    if problem is not None:
        # Named before any query: an HTTP client's parse error reads like an outage or a
        # malformed answer, and retrying a URL that cannot be parsed never helps.
        return QueryResult(
            error=f"{url!r} is not a URL: {problem}", reason=Reason.PROMETHEUS_URL_INVALID
        )
    try:
        if monitoring.has_access_settings:
            namespace = deployment.metadata.namespace
            return PrometheusTarget(url, _from_spec(monitoring, namespace, read_secret))
        if monitoring.prometheus_url is None:
            return PrometheusTarget(url, _from_settings(settings))
    except _MissingCredentialError as problem:
        return QueryResult(error=str(problem), reason=Reason.PROMETHEUS_SECRET_MISSING)
    return PrometheusTarget(url)


_HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host (and a valid port), or None when it is.

    The CRD's pattern only asks for a scheme and no blanks, so `http://host:port/` or
    `http://[::1` pass it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: a port that is not a number raises here
    except ValueError as error:
        return str(error)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not http or https"
    host = parts.hostname
    if not host:
        return "no host"
    if port == 0:
        return "port 0"
    return None if _valid_host(host) else f"{host!r} is not a host name or an IP address"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def _from_spec(
    monitoring: MonitoringSpec, namespace: str, read_secret: SecretReader | None
) -> PrometheusAccess:
    def key(selector: SecretKeySelector | None) -> str | None:
        if selector is None:
            return None
        return _secret_key(read_secret, namespace, selector.name, selector.key)

    basic = monitoring.basic_auth_secret
    return PrometheusAccess(
        ca_pem=key(monitoring.ca_secret),
        bearer_token=key(monitoring.bearer_token_secret),
        basic_auth=(
            _secret_key(read_secret, namespace, basic.name, "username"),
            _secret_key(read_secret, namespace, basic.name, "password"),
        )
        if basic is not None
        else None,
        insecure_skip_verify=monitoring.insecure_skip_verify,
    )


def _secret_key(read_secret: SecretReader | None, namespace: str, name: str, key: str) -> str:
    data = read_secret(namespace, name) if read_secret is not None else None
    if data is None:
        raise _MissingCredentialError(f"Secret {namespace}/{name} (spec.monitoring) does not exist")
    if key not in data:
        raise _MissingCredentialError(
            f"Secret {namespace}/{name} (spec.monitoring) has no key {key!r}"
        )
    return data[key]


def _from_settings(settings: OperatorSettings) -> PrometheusAccess:
    user = settings.prometheus_basic_auth_username
    password = _file(
        settings.prometheus_basic_auth_password_file,
        "ROLLFORWARD_PROMETHEUS_BASIC_AUTH_PASSWORD_FILE",
    )
    return PrometheusAccess(
        ca_pem=_file(settings.prometheus_ca_file, "ROLLFORWARD_PROMETHEUS_CA_FILE"),
        bearer_token=_file(
            settings.prometheus_bearer_token_file, "ROLLFORWARD_PROMETHEUS_BEARER_TOKEN_FILE"
        ),
        basic_auth=(user, password) if user is not None and password is not None else None,
        insecure_skip_verify=settings.prometheus_insecure_skip_verify,
    )


def _file(path: Path | None, variable: str) -> str | None:
    # Read on every resolve: a mounted Secret is updated in place when it rotates.
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as problem:
        raise _MissingCredentialError(
            f"{variable}={path} cannot be read: {problem.strerror}"
        ) from None
