"""A network namespace that holds a whole local cluster: its node address, pod network,
service rules and every component, so nothing touches the host's routes or iptables.

The namespace gets loopback and a veth pair (both ends inside, the peer down) carrying the
node's address and the default route: traffic to anywhere else is dropped, it never leaves.
Host-side code reaches the namespace through `devenv.netns_forward` (a process) or
`NetworkNamespace.call` (a thread that switches namespace: `setns` moves only that thread).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
NODE_INTERFACE = "rf-node"
NODE_PEER = "rf-node-peer"


@dataclass(frozen=True)
class NetworkNamespace:
    """A named namespace (`ip netns`), so `ip netns exec <name> ...` works for a person too."""

    name: str
    node_ip: str = "10.250.0.1"

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> NetworkNamespace:
        _ip("netns", "add", self.name)
        for args in (
            ("link", "set", "lo", "up"),
            # The node's "NIC": a veth pair with both ends inside (this kernel has no dummy).
            ("link", "add", "name", NODE_INTERFACE, "type", "veth", "peer", "name", NODE_PEER),
            ("addr", "add", f"{self.node_ip}/32", "dev", NODE_INTERFACE),
            ("link", "set", NODE_INTERFACE, "up"),
            # A default route makes ClusterIPs routable from the node itself (kube-proxy's
            # DNAT happens after the route lookup); its peer stays down, so whatever is not
            # DNATed to a pod is dropped: nothing leaves the namespace.
            ("route", "add", "default", "dev", NODE_INTERFACE),
        ):
            _ip("-n", self.name, *args)
        return self

    def delete(self) -> None:
        """Remove the namespace; its interfaces (bridge, veths, dummy) go with it."""
        if self.exists():
            _ip("netns", "del", self.name)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the namespace, still in the host's mount namespace (unlike
        `ip netns exec`), so kubelet's and containerd's mounts are visible to each other."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` in a thread inside the namespace; sockets it opens live there."""
        result: list[T] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                enter(self.path)
                result.append(function())
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)

        thread = threading.Thread(target=run, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return result[0]

    def interfaces(self) -> list[str]:
        """The namespace's interface names (for checks and reports)."""
        out = _ip("-n", self.name, "-o", "link", "show")
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def enter(path: Path) -> None:
    """Move the calling thread into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def list_namespaces() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
