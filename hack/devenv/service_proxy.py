"""Stable local addresses for Services, as ClusterIPs are: the local pod runner's kube-proxy.

Pods come and go (a rollout replaces them, the operator rolls its router pod on every new
split), and each local pod has a port of its own, so a client holding a pod's address loses it
when the pod is replaced. A Service's proxy port stays for the runner's lifetime; every new
connection goes to one of the Service's ready pods at that moment (round robin), and the bytes
are copied both ways. A Service with no ready pod refuses the connection (it is closed at once),
as a ClusterIP without endpoints does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence

from devenv.nginx_localize import ServiceRef

ServicePort = tuple[ServiceRef, int]
EndpointTable = Mapping[ServicePort, Sequence[str]]
_CHUNK = 65536


class ServiceProxies:
    """One listening port per Service port, forwarding to what `endpoints()` says now."""

    def __init__(self, endpoints: Callable[[], EndpointTable], host: str = "127.0.0.1") -> None:
        self._endpoints = endpoints
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._servers: dict[ServicePort, asyncio.Server] = {}
        self._ports: dict[ServicePort, int] = {}
        self._turns = itertools.count()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="service-proxies", daemon=True
        )

    def start(self) -> ServiceProxies:
        self._thread.start()
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def address(self, service: ServiceRef, port: int) -> str | None:
        """`host:port` of a Service port's proxy, if it has one."""
        local = self._ports.get((service, port))
        return None if local is None else f"{self._host}:{local}"

    def addresses(self) -> dict[ServicePort, str]:
        return {key: f"{self._host}:{port}" for key, port in self._ports.items()}

    def sync(self, wanted: Sequence[ServicePort]) -> None:
        """Open a proxy for each wanted Service port, close those of Services now gone."""
        future = asyncio.run_coroutine_threadsafe(self._sync(list(wanted)), self._loop)
        future.result(timeout=30)

    async def _sync(self, wanted: list[ServicePort]) -> None:
        for key in [k for k in self._servers if k not in wanted]:
            server = self._servers.pop(key)
            self._ports.pop(key, None)
            server.close()
            await server.wait_closed()
        for key in wanted:
            if key in self._servers:
                continue
            server = await asyncio.start_server(
                functools.partial(self._forward, key), self._host, 0
            )
            self._servers[key] = server
            self._ports[key] = int(server.sockets[0].getsockname()[1])

    async def _close_all(self) -> None:
        await self._sync([])

    async def _forward(
        self, key: ServicePort, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        endpoints = list(self._endpoints().get(key, ()))
        try:
            if not endpoints:
                return
            host, port = endpoints[next(self._turns) % len(endpoints)].rsplit(":", 1)
            try:
                backend_reader, backend = await asyncio.open_connection(host, int(port))
            except OSError:
                return
            try:
                await asyncio.gather(_copy(client_reader, backend), _copy(backend_reader, client))
            finally:
                backend.close()
        finally:
            client.close()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        if sink.can_write_eof():
            sink.write_eof()
