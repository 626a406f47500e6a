"""The harness's ports come from below the kernel's ephemeral range, where no outgoing
connection can take one between the pick and the server's bind."""

from __future__ import annotations

import socket

import pytest

from devenv.processes import LOWEST_PICKED_PORT, ephemeral_range_start, free_port

pytestmark = pytest.mark.unit


def test_a_picked_port_is_below_the_ephemeral_range_and_bindable() -> None:
    for _ in range(50):
        port = free_port()
        assert LOWEST_PICKED_PORT <= port < max(ephemeral_range_start(), LOWEST_PICKED_PORT + 1000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
