"""Localizing the operator's rendered router config: Service names -> local ready pods."""

from __future__ import annotations

from collections.abc import Sequence

from devenv.nginx_localize import (
    UNREACHABLE,
    ServiceRef,
    localize_nginx_config,
    service_of_host,
)
from rollforward.routers.nginx_config import NginxRouterConfig, RoutedVariant, render_nginx_config

ENDPOINTS = {
    (ServiceRef("ml", "upsell-champion"), 3000): ["127.0.0.1:41001", "127.0.0.1:41002"],
    (ServiceRef("ml", "upsell-candidate"), 3000): [],
}


def resolve(service: ServiceRef, port: int) -> Sequence[str]:
    return ENDPOINTS.get((service, port), [])


def rendered() -> str:
    return render_nginx_config(
        NginxRouterConfig(
            listen_port=8080,
            sticky_header="X-User-Id",
            pin_header="X-Rollforward-Pin",
            champion="champion",
            variants=(
                RoutedVariant(name="candidate", weight=10, upstream="upsell-candidate.ml.svc:3000"),
                RoutedVariant(name="champion", weight=90, upstream="upsell-champion.ml.svc:3000"),
            ),
        )
    )


def test_upstreams_become_the_ready_local_pods_and_listen_binds_loopback() -> None:
    text = localize_nginx_config(rendered(), "ml", resolve, {8080: 42000})

    assert "    listen 127.0.0.1:42000;" in text
    assert "listen 8080;" not in text
    assert "server 127.0.0.1:41001;" in text and "server 127.0.0.1:41002;" in text
    assert ".svc:3000" not in text


def test_a_service_without_ready_pods_gets_a_down_server_so_nginx_answers_502() -> None:
    text = localize_nginx_config(rendered(), "ml", resolve, {8080: 42000})

    assert f"server {UNREACHABLE} down;" in text


def test_everything_else_is_left_byte_for_byte() -> None:
    original = rendered()
    text = localize_nginx_config(original, "ml", resolve, {8080: 42000})

    changed = {line.strip() for line in original.splitlines()} ^ {
        line.strip() for line in text.splitlines()
    }
    assert all(line.startswith(("server ", "listen ")) for line in changed)
    assert "server {" in text


def test_service_names_in_every_cluster_dns_form() -> None:
    assert service_of_host("svc", "ml") == ServiceRef("ml", "svc")
    assert service_of_host("svc.other", "ml") == ServiceRef("other", "svc")
    assert service_of_host("svc.other.svc", "ml") == ServiceRef("other", "svc")
    assert service_of_host("svc.other.svc.cluster.local", "ml") == ServiceRef("other", "svc")
    assert service_of_host("127.0.0.1", "ml") is None
    assert service_of_host("example.com.eu.west", "ml") is None
