"""Forward TCP from the host's loopback to addresses inside a network namespace.

    python -m devenv.netns_forward --netns rf-abc 127.0.0.1:6443=127.0.0.1:6443

The listening sockets are opened first, in the host's namespace; then the process moves into
the target namespace, so every outgoing connection is made from inside it. A socket keeps the
namespace it was created in, which is what makes one process serve both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from devenv.netns import NETNS_DIR, enter


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""
    with a, b, selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(65536)
                if not data:
                    return
                key.data.sendall(data)


def _connect_and_pipe(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    with contextlib.suppress(OSError):
        _pipe(client, upstream)


def _serve(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_connect_and_pipe, args=(client, target), daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.netns_forward", description=__doc__)
    parser.add_argument("--netns", required=True, help="name under /run/netns")
    parser.add_argument("mappings", nargs="+", help="LISTEN_HOST:PORT=TARGET_HOST:PORT")
    args = parser.parse_args(argv)
    pairs = [tuple(m.split("=", 1)) for m in args.mappings]
    listeners = []
    for listen, target in pairs:
        listener = socket.create_server(_address(listen), reuse_port=False)
        listeners.append((listener, _address(target)))
    enter(Path(NETNS_DIR) / args.netns)
    threads = [threading.Thread(target=_serve, args=pair, daemon=True) for pair in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
