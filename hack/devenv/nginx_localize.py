"""Make a router's nginx.conf, written for a pod, run on this machine: pure text rewriting.

In a cluster, nginx resolves `<svc>.<ns>.svc:3000` to the Service's ClusterIP and kube-proxy
forwards to a ready pod. Here there is no cluster DNS or kube-proxy, so the local pod runner
plays both: each upstream `server <svc-host>:<port>;` line becomes one line per ready local pod
behind that Service, and `listen <port>` binds 127.0.0.1 on the pod's local port. The rest of
the operator's rendered config (split, pin, headers) is left byte for byte as it is.

A Service with no ready pod gets a single `down` server, so nginx starts and answers 502 for
it, as a ClusterIP without endpoints refuses connections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# `server host:port [params];` inside an upstream block (never `server {`, which has no port).
_UPSTREAM_SERVER = re.compile(
    r"^(?P<indent>\s*)server\s+(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)(?P<params>[^;]*);\s*$"
)
_LISTEN = re.compile(
    r"^(?P<indent>\s*)listen\s+(?:(?P<address>\[[^\]]*\]|[0-9.]+|\*|localhost):)?"
    r"(?P<port>\d+)(?P<params>[^;]*);\s*$"
)
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# A port nothing listens on, for the `down` placeholder server (nginx never connects to it).
UNREACHABLE = "127.0.0.1:9"


@dataclass(frozen=True)
class ServiceRef:
    """A Service addressed by DNS name."""

    namespace: str
    name: str


def service_of_host(host: str, default_namespace: str) -> ServiceRef | None:
    """The Service a cluster DNS name stands for: svc, svc.ns, svc.ns.svc[.cluster.local].

    IP literals and `localhost` are not Services and stay as written.
    """
    if host == "localhost" or _IPV4.match(host):
        return None
    parts = host.split(".")
    if len(parts) == 1:
        return ServiceRef(default_namespace, parts[0])
    if len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"]):
        return ServiceRef(parts[1], parts[0])
    return None


Resolver = Callable[[ServiceRef, int], Sequence[str]]


def localize_nginx_config(
    text: str,
    namespace: str,
    resolve: Resolver,
    listen_ports: Mapping[int, int],
    listen_address: str = "127.0.0.1",
) -> str:
    """`text` with Service upstreams resolved by `resolve(service, port) -> ["ip:port", ...]` and
    each `listen <port>` bound to `listen_address` on `listen_ports[port]`."""
    lines = []
    for line in text.splitlines():
        server = _UPSTREAM_SERVER.match(line)
        listen = _LISTEN.match(line)
        if server is not None:
            lines.extend(_servers(server, namespace, resolve))
        elif listen is not None and int(listen["port"]) in listen_ports:
            port = listen_ports[int(listen["port"])]
            lines.append(f"{listen['indent']}listen {listen_address}:{port}{listen['params']};")
        else:
            lines.append(line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def _servers(server: re.Match[str], namespace: str, resolve: Resolver) -> list[str]:
    service = service_of_host(server["host"], namespace)
    if service is None:
        return [server[0].rstrip()]
    indent, params = server["indent"], server["params"]
    addresses = list(resolve(service, int(server["port"])))
    if not addresses:
        return [f"{indent}server {UNREACHABLE} down;"]
    return [f"{indent}server {address}{params};" for address in addresses]
