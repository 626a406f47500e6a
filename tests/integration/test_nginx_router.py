"""The rendered router config, run by a real nginx in front of real HTTP backends.

Each backend answers with its own variant name, in its body and, as a bento does, in the
variant header, and records what it received, so every claim about the router (split,
stickiness, pinning, mirroring, falling back to the champion) is checked at the backends too.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devenv.nginx import NGINX_BINARY, NginxConfigError, NginxProcess, check_config, run_nginx
from devenv.nginx_split_clients import assigned_variant
from devenv.processes import ManagedProcess, free_port, wait_until
from rollforward.routers.nginx import nginx_command
from rollforward.routers.nginx_config import (
    NginxRouterConfig,
    RoutedVariant,
    render_nginx_config,
    split_buckets,
)
from rollforward.serving.contract import VARIANT_HEADER

STICKY = "X-User-Id"
PIN = "X-Rollforward-Pin"
SERVED_BY = "X-Rollforward-Variant"
USERS = [f"user-{i:04d}" for i in range(1000)]
REQUESTS_PER_USER = 10
TOLERANCE_PP = 2.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class VariantBackend:
    """A keep-alive HTTP server that answers every request with its variant name."""

    name: str
    bind_port: int = 0
    """0: any free port."""
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def start(self) -> VariantBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle on, the body would wait for
            # nginx's delayed ACK (40 ms) on every request.
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with backend._lock:
                    backend.received.append(
                        Received(self.command, self.path, body, dict(self.headers.items()))
                    )
                status = int(self.path.rsplit("/", 1)[1]) if "/status/" in self.path else 200
                payload = backend.name.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                # As a bento does (rollforward.serving.variant_header), unless the path asks
                # for a bento without it, or for one naming no variant of the router.
                if "/silent" not in self.path:
                    forged = "/forged" in self.path
                    self.send_header(VARIANT_HEADER, "set-by-backend" if forged else backend.name)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.bind_port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    served_by: list[str]


class RouterClient:
    """One keep-alive connection to the router, reopened if nginx closes it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(
        self,
        path: str = "/",
        user: str | None = None,
        pin: str | None = None,
        method: str = "GET",
        body: bytes | None = None,
    ) -> Reply:
        headers = {}
        if user is not None:
            headers[STICKY] = user
        if pin is not None:
            headers[PIN] = pin
        try:
            return self._send(method, path, headers, body)
        except (http.client.RemoteDisconnected, ConnectionError):
            self._conn.close()
            return self._send(method, path, headers, body)

    def _send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Reply:
        self._conn.request(method, path, body=body, headers=headers)
        response = self._conn.getresponse()
        text = response.read().decode()
        return Reply(response.status, text, response.headers.get_all(SERVED_BY) or [])

    def close(self) -> None:
        self._conn.close()


@dataclass
class Backends:
    champion: VariantBackend
    challenger: VariantBackend
    shadow: VariantBackend

    def all(self) -> list[VariantBackend]:
        return [self.champion, self.challenger, self.shadow]


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    started = Backends(
        VariantBackend("champion").start(),
        VariantBackend("challenger").start(),
        VariantBackend("shadow").start(),
    )
    yield started
    for backend in started.all():
        backend.stop()


@pytest.fixture
def fresh_backends(backends: Backends) -> Backends:
    for backend in backends.all():
        backend.clear()
    return backends


def router_config(
    backends: Backends,
    port: int,
    challenger_weight: int = 10,
    mirror: bool = False,
    shadow_upstream: str | None = None,
) -> NginxRouterConfig:
    variants = [
        RoutedVariant(
            name="champion", weight=100 - challenger_weight, upstream=backends.champion.upstream
        ),
        RoutedVariant(
            name="challenger", weight=challenger_weight, upstream=backends.challenger.upstream
        ),
    ]
    if mirror:
        variants.append(
            RoutedVariant(
                name="shadow", weight=0, upstream=shadow_upstream or backends.shadow.upstream
            )
        )
    return NginxRouterConfig(
        listen_port=port,
        listen_address="127.0.0.1",
        sticky_header=STICKY,
        pin_header=PIN,
        served_by_header=SERVED_BY,
        champion="champion",
        variants=tuple(variants),
        mirror_variant="shadow" if mirror else None,
    )


StartRouter = Callable[[NginxRouterConfig], NginxProcess]


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[StartRouter]:
    running: list[NginxProcess] = []

    def start(config: NginxRouterConfig) -> NginxProcess:
        nginx = run_nginx(render_nginx_config(config), tmp_path / f"nginx-{len(running)}")
        running.append(nginx)
        return nginx

    yield start
    for nginx in running:
        nginx.stop()


def served(reply: Reply) -> str:
    """The variant that served, after checking the router's and the backend's stories agree."""
    assert reply.status == 200, reply
    assert reply.served_by == [reply.body], reply
    return reply.body


def assignments(client: RouterClient, users: list[str]) -> dict[str, str]:
    return {user: served(client.request(user=user)) for user in users}


def test_rendered_configs_pass_nginx_config_test(backends: Backends, tmp_path: Path) -> None:
    port = free_port()
    configs = {
        "90/10": router_config(backends, port),
        "100/0": router_config(backends, port, challenger_weight=0),
        "0/100": router_config(backends, port, challenger_weight=100),
        "mirror": router_config(backends, port, mirror=True),
        "by-name": NginxRouterConfig(
            listen_port=port,
            sticky_header=STICKY,
            pin_header=PIN,
            champion="default",
            variants=(
                RoutedVariant(name="default", weight=50, upstream=f"localhost:{port}"),
                RoutedVariant(name="include", weight=25, upstream="127.0.0.1:1"),
                RoutedVariant(name="volatile", weight=25, upstream="[::1]:2"),
            ),
        ),
    }
    for name, config in configs.items():
        check_config(render_nginx_config(config), tmp_path / name)
    # The check itself can fail: nginx refuses 0% buckets, which the renderer never writes.
    broken = render_nginx_config(configs["90/10"]).replace("10%", "0%")
    with pytest.raises(NginxConfigError, match="invalid percent value"):
        check_config(broken, tmp_path / "broken")


def test_split_holds_per_request_and_every_user_is_sticky(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(fresh_backends, free_port(), challenger_weight=10)
    start_router(config)
    client = RouterClient(config.listen_port)
    seen: dict[str, set[str]] = {user: set() for user in USERS}
    per_request: Counter[str] = Counter()
    # Users take turns, as concurrent users would, rather than sending ten in a row.
    for _ in range(REQUESTS_PER_USER):
        for user in USERS:
            variant = served(client.request(user=user))
            seen[user].add(variant)
            per_request[variant] += 1
    client.close()

    total = len(USERS) * REQUESTS_PER_USER
    assert sum(per_request.values()) == total
    assert all(len(variants) == 1 for variants in seen.values()), "a user changed variant"
    challenger_pct = 100 * per_request["challenger"] / total
    assert abs(challenger_pct - 10) <= TOLERANCE_PP, per_request
    # The backends saw the same split, and nginx chose exactly as split_clients is specified.
    assert fresh_backends.challenger.count() == per_request["challenger"]
    assert fresh_backends.champion.count() == per_request["champion"]
    buckets = split_buckets(config)
    mismatched = [u for u in USERS if seen[u] != {assigned_variant(u, buckets)}]
    assert mismatched == []


def test_growing_the_challenger_never_moves_its_users_back(
    backends: Backends, start_router: StartRouter
) -> None:
    port = free_port()
    nginx = start_router(router_config(backends, port, challenger_weight=10))
    client = RouterClient(port)
    before = assignments(client, USERS)

    nginx.reload(render_nginx_config(router_config(backends, port, challenger_weight=25)))
    client.close()
    client = RouterClient(port)
    after = assignments(client, USERS)
    client.close()

    was_challenger = {user for user, variant in before.items() if variant == "challenger"}
    now_challenger = {user for user, variant in after.items() if variant == "challenger"}
    assert was_challenger, "no user on the challenger at 10%"
    assert was_challenger <= now_challenger
    assert abs(100 * len(now_challenger) / len(USERS) - 25) <= TOLERANCE_PP
    # Growth came from champion users only, so the reload did take effect.
    assert len(now_challenger) > len(was_challenger)


def test_a_refused_reload_keeps_the_running_config(
    backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(backends, free_port())
    nginx = start_router(config)
    broken = render_nginx_config(config).replace("10%", "0%")
    with pytest.raises(NginxConfigError, match="invalid percent value"):
        nginx.reload(broken)
    client = RouterClient(config.listen_port)
    assert served(client.request(pin="challenger")) == "challenger"
    client.close()


def test_pin_header_wins_over_the_split(backends: Backends, start_router: StartRouter) -> None:
    config = router_config(backends, free_port())
    start_router(config)
    client = RouterClient(config.listen_port)
    split = assignments(client, USERS[:200])
    on_challenger = [u for u, v in split.items() if v == "challenger"]
    on_champion = [u for u, v in split.items() if v == "champion"]
    assert on_challenger and on_champion

    for user in on_challenger:
        assert served(client.request(user=user, pin="champion")) == "champion"
    for user in on_champion:
        assert served(client.request(user=user, pin="challenger")) == "challenger"
        # nginx's map compares case-insensitively.
        assert served(client.request(user=user, pin="Challenger")) == "challenger"
    # Without a key, the pin still decides.
    assert {served(client.request(pin="challenger")) for _ in range(50)} == {"challenger"}
    # An unknown pin is ignored and the split decides.
    for user in on_challenger + on_champion:
        assert served(client.request(user=user, pin="no-such-variant")) == split[user]
    client.close()


def test_requests_without_a_key_are_served_by_weight(
    backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(backends, free_port(), challenger_weight=25)
    start_router(config)
    client = RouterClient(config.listen_port)
    counts = Counter(served(client.request()) for _ in range(2000))
    client.close()
    # Each keyless request draws anew: 2,000 draws at 25% have a standard deviation of ~1pp.
    assert set(counts) == {"champion", "challenger"}
    assert abs(100 * counts["challenger"] / 2000 - 25) <= 5, counts


def test_served_by_header_on_every_status_and_health_stays_local(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(fresh_backends, free_port())
    start_router(config)
    client = RouterClient(config.listen_port)
    failed = client.request("/status/503", user="user-0001", pin="challenger")
    assert (failed.status, failed.served_by) == (503, ["challenger"])
    health = client.request("/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    client.close()
    assert [r.path for r in fresh_backends.challenger.received] == ["/status/503"]
    assert fresh_backends.champion.received == []


def test_every_path_method_and_body_pass_through(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(fresh_backends, free_port())
    start_router(config)
    client = RouterClient(config.listen_port)
    # 2 MiB: past nginx's default 1 MiB limit, and buffered to a temp file in the private prefix.
    body = b'{"instances": [[1.0, 2.0]]}' * 80_000
    reply = client.request("/classify?explain=1", pin="champion", method="POST", body=body)
    assert served(reply) == "champion"
    ready = client.request("/readyz", pin="champion")
    assert served(ready) == "champion"
    client.close()
    posted, probed = fresh_backends.champion.received
    assert (posted.method, posted.path, posted.body) == ("POST", "/classify?explain=1", body)
    assert posted.headers["X-Rollforward-Pin"] == "champion"
    assert (probed.method, probed.path) == ("GET", "/readyz")


def test_mirror_copies_every_request_to_the_shadow_and_discards_its_answers(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    config = router_config(fresh_backends, free_port(), mirror=True)
    start_router(config)
    client = RouterClient(config.listen_port)
    sent = 300
    variants = Counter(
        served(
            client.request(
                f"/predict?n={i}", user=USERS[i], method="POST", body=f'{{"n": {i}}}'.encode()
            )
        )
        for i in range(sent)
    )
    client.close()
    assert set(variants) == {"champion", "challenger"}  # never "shadow"
    wait_until(lambda: fresh_backends.shadow.count() >= sent, timeout=30, what="mirrored copies")
    copies = sorted((r.path, r.body) for r in fresh_backends.shadow.received)
    expected = sorted((f"/predict?n={i}", f'{{"n": {i}}}'.encode()) for i in range(sent))
    assert copies == expected
    primaries = fresh_backends.champion.count() + fresh_backends.challenger.count()
    assert primaries == sent


def test_a_dead_shadow_never_reaches_the_client(
    backends: Backends, start_router: StartRouter
) -> None:
    closed_port = free_port()
    config = router_config(
        backends, free_port(), mirror=True, shadow_upstream=f"127.0.0.1:{closed_port}"
    )
    start_router(config)
    client = RouterClient(config.listen_port)
    assert {served(client.request(user=user)) for user in USERS[:100]} == {
        "champion",
        "challenger",
    }
    client.close()


def test_a_bento_naming_no_variant_or_none_gets_the_routed_variant(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    """The served-by header is the backend's variant header only when it names a variant of
    the router; otherwise, and when there is none (an older bento), the routed variant."""
    config = router_config(fresh_backends, free_port())
    start_router(config)
    client = RouterClient(config.listen_port)
    for path in ("/forged", "/silent", "/forged/status/503"):
        reply = client.request(path, pin="challenger")
        assert (reply.body, reply.served_by) == ("challenger", ["challenger"]), (path, reply)
    client.close()


FALLBACK_USERS = USERS[:300]


def test_a_variant_that_refuses_connections_is_answered_by_the_champion(
    backends: Backends, start_router: StartRouter
) -> None:
    """Given a challenger at 30% whose Service has no ready endpoint (the connection is
    refused, as kube-proxy does), its users' requests, GET and POST with a body, are answered
    by the champion, and the served-by header names the champion; once the challenger
    listens, its users are back on it, with the router as it was started."""
    refusing = free_port()
    config = router_config(backends, free_port(), challenger_weight=30)
    config = config.model_copy(
        update={
            "variants": (
                config.variant("champion"),
                config.variant("challenger").model_copy(
                    update={"upstream": f"127.0.0.1:{refusing}"}
                ),
            )
        }
    )
    nginx = start_router(config)
    buckets = split_buckets(config)
    on_challenger = [u for u in FALLBACK_USERS if assigned_variant(u, buckets) == "challenger"]
    assert len(on_challenger) > 50
    for backend in backends.all():
        backend.clear()

    client = RouterClient(config.listen_port)
    for user in FALLBACK_USERS:
        body = f'{{"user": "{user}"}}'.encode()
        assert served(client.request("/predict", user=user, method="POST", body=body)) == (
            "champion"
        )
    assert served(client.request("/readyz", pin="challenger")) == "champion"
    # Exactly one answer per request, each POST sent once, with its body.
    posted = [r for r in backends.champion.received if r.method == "POST"]
    assert sorted(r.body for r in posted) == sorted(
        f'{{"user": "{u}"}}'.encode() for u in FALLBACK_USERS
    )
    assert backends.champion.count() == len(FALLBACK_USERS) + 1
    # nginx logged both routes: the challenger first, then the champion.
    assert "variant=challenger served_by=champion" in nginx.log_tail()

    returned = VariantBackend("challenger", bind_port=refusing).start()
    try:
        for backend in backends.all():
            backend.clear()
        after = {user: served(client.request(user=user)) for user in FALLBACK_USERS}
        assert {u for u, v in after.items() if v == "challenger"} == set(on_challenger)
        assert returned.count() == len(on_challenger)
    finally:
        client.close()
        returned.stop()


def test_a_variants_own_503_is_its_answer_and_never_retried_on_the_champion(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    """A bad candidate's 503s must reach the client and the canary analysis: nginx never
    falls back on an answer, for POST or GET."""
    config = router_config(fresh_backends, free_port())
    start_router(config)
    client = RouterClient(config.listen_port)
    posted = client.request("/status/503", pin="challenger", method="POST", body=b'{"a": 1}')
    got = client.request("/status/503", pin="challenger")
    client.close()
    for reply in (posted, got):
        assert (reply.status, reply.body, reply.served_by) == (503, "challenger", ["challenger"])
    assert [r.method for r in fresh_backends.challenger.received] == ["POST", "GET"]
    assert fresh_backends.champion.received == []


def test_the_mirror_never_falls_back_to_the_champion(
    fresh_backends: Backends, start_router: StartRouter
) -> None:
    """With the shadow refusing connections, its copies reach nobody (never the champion a
    second time), and a request pinned to it gets nginx's own 502, naming the shadow."""
    config = router_config(
        fresh_backends, free_port(), mirror=True, shadow_upstream=f"127.0.0.1:{free_port()}"
    )
    start_router(config)
    client = RouterClient(config.listen_port)
    sent = 100
    variants = Counter(
        served(client.request("/predict", user=USERS[i], method="POST", body=b"{}"))
        for i in range(sent)
    )
    pinned = client.request("/predict", pin="shadow", method="POST", body=b"{}")
    client.close()
    assert (pinned.status, pinned.served_by) == (502, ["shadow"])
    primaries = fresh_backends.champion.count() + fresh_backends.challenger.count()
    assert (sum(variants.values()), primaries) == (sent, sent)
    assert fresh_backends.champion.count() == variants["champion"]


UNPRIVILEGED_UID = 65534


@pytest.fixture
def unprivileged_dirs() -> Iterator[tuple[Path, Path]]:
    """A read-only config dir and a prefix (the pod's /tmp emptyDir) only nginx's user writes.

    Outside pytest's 0700 tmp_path, which an unprivileged user cannot enter.
    """
    base = Path(tempfile.mkdtemp(prefix="rf-router-"))
    base.chmod(0o755)
    config_dir, prefix = base / "etc", base / "tmp"
    config_dir.mkdir(mode=0o755)
    prefix.mkdir(mode=0o700)
    os.chown(prefix, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    yield config_dir, prefix
    shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to an unprivileged user needs root")
def test_the_router_command_runs_unprivileged_writing_only_its_prefix(
    fresh_backends: Backends, unprivileged_dirs: tuple[Path, Path]
) -> None:
    """The router container's exact command, with the pod's paths mapped to local ones, runs
    Debian's nginx as a non-root user that can write nowhere but the /tmp emptyDir."""
    config_dir, prefix = unprivileged_dirs
    config = router_config(fresh_backends, free_port())
    config_file = config_dir / "nginx.conf"
    config_file.write_text(render_nginx_config(config))
    command = nginx_command(prefix=str(prefix), config=str(config_file))
    argv = ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}",
            "--clear-groups", "--", str(NGINX_BINARY), *command[1:]]  # fmt: skip
    # A container's stdout is writable by its user; nginx reopens it for the access log.
    log = config_dir.parent / "nginx.log"
    log.touch()
    os.chown(log, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    process = ManagedProcess("nginx", argv, log, cwd=prefix).start()
    try:
        client = RouterClient(config.listen_port)
        wait_until(lambda: (prefix / "nginx.pid").exists() or not process.running(), 30)
        assert process.running(), process.log_tail()
        assert Path(f"/proc/{process.pid}/status").read_text().count(f"\t{UNPRIVILEGED_UID}") >= 2
        body = b"x" * 2_000_000  # buffered to a temporary file under the prefix
        assert served(client.request("/p", pin="champion", method="POST", body=body)) == "champion"
        assert served(client.request("/", user="user-1")) in {"champion", "challenger"}
        client.close()
        assert {p.name for p in prefix.iterdir()} >= {"nginx.pid", "client_body_temp"}
    finally:
        process.stop()
    assert sorted(p.name for p in config_dir.iterdir()) == ["nginx.conf"]
    assert "Permission denied" not in process.log_tail(), process.log_tail()
