"""Render the nginx.conf of the default router: sticky, weighted A/B assignment by `split_clients`.

Pure: the renderer reads only its input and returns text, so the same config always gives the
same bytes (and the same checksum), and nothing is resolved or touched at render time.

How a request is routed
-----------------------
1. The sticky key is the value of the configured key header (for example `X-User-Id`). A request
   without it gets `$request_id`, a fresh random value, so it is still served and keyless traffic
   as a whole follows the weights.
2. `split_clients` hashes the key (MurmurHash2, 32 bits) and walks its buckets in declaration
   order; each bucket owns the next `weight`% of the hash range, and the last bucket (`*`) owns
   the rest. The challengers come first, in declaration order, and the champion last. So with one
   challenger its range is always `[0, w)`: raising `w` from 10% to 25% only moves champion users
   onto the challenger, never a challenger user back.
3. A pin header naming a known variant (compared case-insensitively, as nginx's `map` does) wins
   over the split; any other value is ignored.
4. The name of the variant that answered goes back to the client in the served-by response
   header, on every status: the bento's own `X-Rollforward-Variant`
   (rollforward.serving.contract.VARIANT_HEADER) when it names a variant of this router, so a
   request the champion answered on fallback (below) names the champion; otherwise (no bento
   answered, e.g. nginx's own 502, or a bento without the header) the variant of step 2 or 3.
5. With a mirror variant, every request is also copied (with its body) to that shadow variant;
   nginx discards the shadow's response, and the shadow's failures never reach the client.

Stickiness with several challengers
-----------------------------------
Challenger `i` owns `[C(i-1), C(i))` where `C(i)` is the sum of the weights of the first `i`
challengers (zero-weight ones own nothing). A key stays on challenger `i` across a re-weighting
exactly when its hash stays in the new range, so the users of challenger `i` all stay when the
total weight of the challengers declared before it does not grow and the total through it does not
shrink. In particular the first challenger keeps its users whenever its own weight does not
shrink, and no challenger user ever moves to the champion while the sum of the challenger weights
does not shrink. Reordering, inserting or removing an earlier challenger shifts the later ranges.
nginx rounds each bucket boundary down to a whole hash value, so two splits with equal totals can
disagree on at most one hash value in 2^32.

The split assigns a key, not a pod: while a challenger has no ready pod, its users are served
by the champion (fallback, below), and the served-by header says so; they are back on the
challenger as soon as one of its pods is ready, with the same ranges as before. While a
variant rolls to a new version (its Deployment keeps its old pods until new ones are ready),
its users are served by its old and new pods, as the champion's are during the champion's roll.

What the cluster needs
----------------------
Upstreams are plain `host:port` strings in `upstream` blocks, resolved once when nginx starts
(no `resolver`). A ClusterIP Service name (`<svc>.<ns>.svc:3000`) keeps its address for the
Service's lifetime, so the Service must exist before the router starts, and nginx fails to start
while a name does not resolve. Temporary files live under nginx's prefix, which the router's
command (`rollforward.routers.nginx.nginx_command`) sets to the pod's /tmp emptyDir, so an
unprivileged nginx runs it on a read-only root filesystem. The config sets neither `pid`,
`daemon` nor `user`: the command sets the first two, and a non-root master has no user to switch
to.
Losing no request
-----------------
Each variant's upstream lists its Service `UPSTREAM_ATTEMPTS` times, without keep-alive, and
`proxy_next_upstream error timeout http_502` moves a failed attempt to the next entry: a new
connection, which kube-proxy sends to a (possibly other) ready endpoint. So a connection
refused or reset by a pod that just left, or a connect timeout, is retried within the same
variant, and it is safe for `/predict` because nothing reached a bento. A request whose bytes
were sent is retried only for an idempotent method: nginx leaves POST out unless
`non_idempotent` is set, and it is not, since a bento may have counted and answered a
prediction whose response was then lost. Without keep-alive there is no idle upstream
connection that a bento closes just as nginx reuses it, the one failure after sending that a
retry could not cover; a new connection inside the node costs well under a millisecond.
`max_fails=0` keeps nginx from marking the Service down.
`/healthz` is answered by nginx itself for the router's probes; every other path, BentoML's
`/readyz`, `/livez` and `/metrics` included, is proxied, except `/_rollforward_mirror`, the
internal location that feeds the shadow (it answers 404 from outside). A request pinned to the
mirror variant reaches it twice: once as the answer, once as the copy.

Falling back to the champion
----------------------------
The upstream of every variant other than the champion and the mirror then lists the champion's
Service `FALLBACK_ATTEMPTS` time, as a `backup` server: nginx tries a backup only once every
primary entry of the upstream failed for this request, so a variant whose Service has no ready
endpoint (kube-proxy rejects the connection at once) is answered by the champion, on the
attempt after its own `UPSTREAM_ATTEMPTS` (`proxy_next_upstream_tries` counts both). So the
operator writes the declared split once, and a new or crashed variant costs no request and no
router rewrite (rollforward.traffic_gate gates only routers without such a fallback). The
retry rules above decide what falls back: a refused or timed-out connect always (nothing was
sent, so a POST too); a POST that reached a bento never, to the champion neither; and a
variant's own answer, a 503 of a bad candidate included, is the answer (`http_503` is no retry
condition), so the client and the canary analysis see it. Only a 502 or a read timeout of an
idempotent request is retried after sending, as it always was, and may end at the champion;
a variant whose connects time out (2 s each) falls back after its own three. The mirror
variant never falls back (its copy would reach the champion a second time), and the champion
has nowhere to fall back to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rollforward.serving.contract import VARIANT_HEADER

DEFAULT_SERVED_BY_HEADER = VARIANT_HEADER
HEALTH_PATH = "/healthz"
MIRROR_LOCATION = "/_rollforward_mirror"
UPSTREAM_PREFIX = "rollforward-"
UPSTREAM_ATTEMPTS = 3
"""Tries per request, each on a new connection through the variant's Service."""
FALLBACK_ATTEMPTS = 1
"""Tries on the champion's Service after a falling-back variant's own attempts all failed."""
SHUTDOWN_TIMEOUT = "20s"
"""Below the pod's termination grace minus its preStop (rollforward.pod_lifecycle)."""

# nginx turns a header into `$http_<name>` only for letters, digits and hyphens (underscores are
# dropped by default), and anything else would be injected into the config.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123_LABEL_MAX = 63
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_UPSTREAM = re.compile(
    rf"^(?P<host>{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{{1,5}})$"
)
# Words with a meaning of their own as the first column of a `map` block; a leading backslash
# makes nginx read them as plain strings.
_MAP_KEYWORDS = frozenset({"default", "hostnames", "include", "volatile"})

HeaderName = Annotated[str, Field(min_length=1, max_length=128)]


def _check_header_name(name: str) -> str:
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} may contain only letters, digits and '-'")
    return name


class RoutedVariant(BaseModel):
    """One variant as the router sees it: where it listens and what share of users it gets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="DNS-1123 label; also the pin value and the served-by value.")
    weight: int = Field(ge=0, le=100, description="Percent of users; the weights sum to 100.")
    upstream: str = Field(description="host:port, resolved by nginx when it starts.")

    @field_validator("name")
    @classmethod
    def _name_is_dns_label(cls, name: str) -> str:
        if len(name) > _DNS_1123_LABEL_MAX or not _DNS_1123_LABEL.fullmatch(name):
            raise ValueError(f"variant name {name!r} is not a DNS-1123 label")
        return name

    @field_validator("upstream")
    @classmethod
    def _upstream_is_host_port(cls, upstream: str) -> str:
        match = _UPSTREAM.fullmatch(upstream)
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise ValueError(f"upstream {upstream!r} is not host:port")
        return upstream


class NginxRouterConfig(BaseModel):
    """Everything the rendered nginx.conf depends on, and nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listen_port: int = Field(ge=1, le=65535)
    listen_address: str | None = Field(
        default=None, description="IP literal to bind; None binds every address (in a pod)."
    )
    sticky_header: HeaderName = Field(description="Request header holding the user key.")
    pin_header: HeaderName = Field(description="Request header naming a variant to force.")
    served_by_header: HeaderName = DEFAULT_SERVED_BY_HEADER
    champion: str = Field(description="Name of the variant that takes the remainder of the split.")
    variants: tuple[RoutedVariant, ...] = Field(min_length=1)
    mirror_variant: str | None = Field(
        default=None, description="Zero-weight variant that receives a copy of every request."
    )
    worker_processes: int = Field(default=2, ge=1, le=64)

    @field_validator("sticky_header", "pin_header", "served_by_header")
    @classmethod
    def _header_is_safe(cls, name: str) -> str:
        return _check_header_name(name)

    @field_validator("listen_address")
    @classmethod
    def _address_is_ip(cls, address: str | None) -> str | None:
        if address is not None:
            ipaddress.ip_address(address)  # raises ValueError naming the bad address
        return address

    @model_validator(mode="after")
    def _variants_are_consistent(self) -> Self:
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(duplicates)}")
        total = sum(variant.weight for variant in self.variants)
        if total != 100:
            weights = ", ".join(f"{v.name}={v.weight}" for v in self.variants)
            raise ValueError(f"variant weights must sum to 100, got {total} ({weights})")
        if self.champion not in names:
            raise ValueError(f"champion {self.champion!r} is not one of the variants {names}")
        self._check_mirror(names)
        headers = [self.sticky_header, self.pin_header, self.served_by_header]
        if len({header.lower() for header in headers}) != len(headers):
            raise ValueError(f"sticky, pin and served-by headers must differ, got {headers}")
        return self

    def _check_mirror(self, names: list[str]) -> None:
        if self.mirror_variant is None:
            return
        if self.mirror_variant not in names:
            raise ValueError(f"mirror variant {self.mirror_variant!r} is not one of {names}")
        # A shadow with users of its own would get their requests twice.
        if self.variant(self.mirror_variant).weight != 0:
            raise ValueError(f"mirror variant {self.mirror_variant!r} must have weight 0")

    def variant(self, name: str) -> RoutedVariant:
        return next(variant for variant in self.variants if variant.name == name)

    def falls_back(self, name: str) -> bool:
        """Whether the champion answers for variant `name` when none of its pods does."""
        return name not in (self.champion, self.mirror_variant)


@dataclass(frozen=True)
class SplitBucket:
    """One line of the `split_clients` block."""

    variant: str
    percent: int | None
    """Share of the hash range; None is `*`, the remainder after the buckets before it."""


def split_buckets(config: NginxRouterConfig) -> tuple[SplitBucket, ...]:
    """The `split_clients` buckets: challengers in declaration order, then the champion as `*`.

    nginx rejects `0%`, so zero-weight variants get no bucket. When the champion has weight 0 the
    last challenger becomes `*`, which owns the same range as its percentage would (plus the one
    hash value 2^32-1 that a 100% total leaves over), instead of a `*` for a variant with no share.
    """
    challengers = [
        variant
        for variant in config.variants
        if variant.name != config.champion and variant.weight > 0
    ]
    champion = config.variant(config.champion)
    if champion.weight > 0:
        return (
            *(SplitBucket(v.name, v.weight) for v in challengers),
            SplitBucket(champion.name, None),
        )
    *leading, last = challengers
    return (*(SplitBucket(v.name, v.weight) for v in leading), SplitBucket(last.name, None))


def header_variable(header: str) -> str:
    """The nginx variable holding a request header: `X-User-Id` -> `$http_x_user_id`."""
    return "$http_" + _check_header_name(header).lower().replace("-", "_")


def _upstream_variable(header: str) -> str:
    """The nginx variable holding the last upstream response's header."""
    return "$upstream_http_" + _check_header_name(header).lower().replace("-", "_")


def upstream_name(variant: str) -> str:
    return UPSTREAM_PREFIX + variant


def config_checksum(text: str) -> str:
    """sha256 of the rendered text; a pod-template annotation, so a new config rolls nginx."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_nginx_config(config: NginxRouterConfig) -> str:
    """The complete nginx.conf (main, events, http) for the router of one ModelDeployment."""
    lines = [
        "# Rendered by the rollforward operator from the ModelDeployment; edits are overwritten.",
        f"worker_processes {config.worker_processes};",
        "error_log stderr warn;",
        "# On SIGQUIT (the pod stopping) requests in flight finish within the grace period.",
        f"worker_shutdown_timeout {SHUTDOWN_TIMEOUT};",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        *_indent(_http_settings()),
        "",
        *_indent(_routing_maps(config)),
        *_indent(_upstreams(config)),
        *_indent(_server(config)),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" if line else "" for line in lines]


def _http_settings() -> list[str]:
    return [
        "server_tokens off;",
        "log_format rollforward '$remote_addr \"$request\" $status $body_bytes_sent '",
        "                       'variant=$rf_variant served_by=$rf_served_by '",
        "                       'upstream=$upstream_addr time=$request_time';",
        "access_log /dev/stdout rollforward;",
        "# Model inputs can be large; BentoML enforces its own limits.",
        "client_max_body_size 0;",
        "# Relative to nginx's prefix, so no compiled-in path has to exist on the host.",
        "client_body_temp_path client_body_temp;",
        "proxy_temp_path proxy_temp;",
        "fastcgi_temp_path fastcgi_temp;",
        "uwsgi_temp_path uwsgi_temp;",
        "scgi_temp_path scgi_temp;",
    ]


def _routing_maps(config: NginxRouterConfig) -> list[str]:
    sticky = header_variable(config.sticky_header)
    pin = header_variable(config.pin_header)
    buckets = split_buckets(config)
    pin_keys = [f"\\{v.name}" if v.name in _MAP_KEYWORDS else v.name for v in config.variants]
    return [
        "# A request without the key header still gets a key, a random one.",
        f"map {sticky} $rf_sticky_key {{",
        '    ""      $request_id;',
        f"    default {sticky};",
        "}",
        "",
        "# Challengers first, from 0%: growing a challenger never moves its users elsewhere.",
        'split_clients "${rf_sticky_key}" $rf_split_variant {',
        *(f"    {'*' if b.percent is None else f'{b.percent}%':<5} {b.variant};" for b in buckets),
        "}",
        "",
        "# Only the name of a known variant pins; anything else falls through to the split.",
        f"map {pin} $rf_pinned_variant {{",
        '    default "";',
        *(f"    {key} {v.name};" for key, v in zip(pin_keys, config.variants, strict=True)),
        "}",
        "",
        "map $rf_pinned_variant $rf_variant {",
        '    ""      $rf_split_variant;',
        "    default $rf_pinned_variant;",
        "}",
        "",
        "# Who answered: the bento's own header when it names a variant (the champion, when it",
        "# answered on fallback), else the routed variant (nginx's own errors).",
        f"map {_upstream_variable(VARIANT_HEADER)} $rf_served_by {{",
        "    default $rf_variant;",
        *(f"    {key} {v.name};" for key, v in zip(pin_keys, config.variants, strict=True)),
        "}",
        "",
    ]


def _upstreams(config: NginxRouterConfig) -> list[str]:
    champion = config.variant(config.champion)
    lines: list[str] = []
    for variant in config.variants:
        fallback = (
            [
                "    # Tried only after every entry above failed: the champion answers.",
                *(f"    server {champion.upstream} max_fails=0 backup;",) * FALLBACK_ATTEMPTS,
            ]
            if config.falls_back(variant.name)
            else []
        )
        lines += [
            f"upstream {upstream_name(variant.name)} {{",
            *(f"    server {variant.upstream} max_fails=0;" for _ in range(UPSTREAM_ATTEMPTS)),
            *fallback,
            "}",
            "",
        ]
    return lines


def _listen(config: NginxRouterConfig) -> str:
    if config.listen_address is None:
        return f"listen {config.listen_port};"
    address = ipaddress.ip_address(config.listen_address)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"listen {host}:{config.listen_port};"


def _server(config: NginxRouterConfig) -> list[str]:
    return [
        "server {",
        f"    {_listen(config)}",
        "",
        "    # Inherited by the mirror location too: keep-alive to the upstreams, client's Host.",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "",
        f"    location = {HEALTH_PATH} {{",
        "        access_log off;",
        "        default_type text/plain;",
        '        return 200 "ok\\n";',
        "    }",
        "",
        *_indent(_proxy_location(config)),
        *_indent(_mirror_location(config)),
        "}",
    ]


def _proxy_location(config: NginxRouterConfig) -> list[str]:
    mirror = (
        [f"    mirror {MIRROR_LOCATION};", "    mirror_request_body on;"]
        if config.mirror_variant is not None
        else []
    )
    return [
        "location / {",
        *mirror,
        f"    proxy_pass http://{UPSTREAM_PREFIX}$rf_variant;",
        "    # A connect error or timeout retries the same variant on a new connection, then the",
        "    # champion (backup); a POST whose bytes reached a bento is never sent twice, and a",
        "    # variant's own 503 is its answer.",
        "    proxy_next_upstream error timeout http_502;",
        f"    proxy_next_upstream_tries {UPSTREAM_ATTEMPTS + FALLBACK_ATTEMPTS};",
        "    proxy_connect_timeout 2s;",
        "    # Streamed responses (server-sent events) reach the client as they are produced.",
        "    proxy_buffering off;",
        *(f"    proxy_hide_header {header};" for header in _hidden_headers(config)),
        f"    add_header {config.served_by_header} $rf_served_by always;",
        "}",
    ]


def _hidden_headers(config: NginxRouterConfig) -> list[str]:
    """The upstream's served-by header, and the bento's variant header when it is another:
    the router sends its own, from the bento's when it is a variant's name."""
    if config.served_by_header.lower() == VARIANT_HEADER.lower():
        return [config.served_by_header]
    return [config.served_by_header, VARIANT_HEADER]


def _mirror_location(config: NginxRouterConfig) -> list[str]:
    if config.mirror_variant is None:
        return []
    return [
        "",
        "# nginx discards the shadow's response; short timeouts keep a slow shadow from holding",
        "# the client's keep-alive connection.",
        f"location = {MIRROR_LOCATION} {{",
        "    internal;",
        f"    proxy_pass http://{upstream_name(config.mirror_variant)}$request_uri;",
        "    proxy_connect_timeout 2s;",
        "    proxy_send_timeout 5s;",
        "    proxy_read_timeout 5s;",
        "}",
    ]
