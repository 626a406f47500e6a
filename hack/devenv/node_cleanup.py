"""Finding and removing what a node leaves on the host: processes in its network namespace,
mounts under its directory, shim sockets and CNI cache files. Also used by the teardown test
to check that nothing is left."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

SHIM_SOCKET_DIR = Path("/run/containerd/s")
CNI_CACHE_DIR = Path("/var/lib/cni")


def _unescape(path: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below `base` in the host's mount namespace, in mount order."""
    prefix = str(base)
    found = []
    for line in Path("/proc/1/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def unmount_all(base: Path) -> list[str]:
    """Detach every mount below `base`, newest first; returns what is still mounted."""
    for _ in range(3):
        points = mounts_under(base)
        if not points:
            break
        for point in reversed(points):
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return mounts_under(base)


def pids_in_netns(netns_path: Path) -> set[int]:
    """Processes whose network namespace is the one at `netns_path` (never this one)."""
    try:
        target = netns_path.stat().st_ino
    except FileNotFoundError:
        return set()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if (entry / "ns" / "net").stat().st_ino == target:
                    found.add(int(entry.name))
    return found


def kill_netns_processes(netns_path: Path, timeout: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (pids := pids_in_netns(netns_path)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return pids_in_netns(netns_path)


def shim_sockets(containerd_socket: Path, task_dir: Path) -> list[Path]:
    """The shim sockets containerd put in /run/containerd/s for this node's containers
    (named by sha256 of "<containerd address>/<namespace>/<id>", see containerd's
    pkg/shim.SocketAddress)."""
    sockets = []
    for namespace in task_dir.iterdir() if task_dir.is_dir() else ():
        for container in namespace.iterdir():
            for suffix in ("", "/debug"):
                key = f"{containerd_socket}/{namespace.name}/{container.name}{suffix}"
                sockets.append(SHIM_SOCKET_DIR / hashlib.sha256(key.encode()).hexdigest())
    return [s for s in sockets if s.exists()]


def remove_shim_sockets(containerd_socket: Path, task_dir: Path) -> None:
    for socket_path in shim_sockets(containerd_socket, task_dir):
        socket_path.unlink(missing_ok=True)
    # Only directories this node created are removed, and only when empty.
    for directory in (SHIM_SOCKET_DIR, SHIM_SOCKET_DIR.parent):
        with contextlib.suppress(OSError):
            directory.rmdir()


def cni_cache_files(network_name: str, sandbox_ids: Iterable[str] = ()) -> list[Path]:
    """libcni's cached results of this node: its pod network's, and containerd's loopback
    network's (`cni-loopback-<sandbox id>-lo`)."""
    results = CNI_CACHE_DIR / "results"
    if not results.is_dir():
        return []
    loopback = [results / f"cni-loopback-{sandbox}-lo" for sandbox in sandbox_ids]
    return sorted({*results.glob(f"{network_name}-*"), *(p for p in loopback if p.exists())})


def remove_cni_cache(network_name: str, sandbox_ids: Iterable[str] = ()) -> None:
    for path in cni_cache_files(network_name, sandbox_ids):
        path.unlink(missing_ok=True)
    for directory in (CNI_CACHE_DIR / "results", CNI_CACHE_DIR):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty: another user's cache stays


def remove_image_store(containerd_root: Path) -> None:
    """Drop the node's image content and unpacked snapshots (GBs per run: a test session
    starts several nodes and filled the disk); the CRI records stay for the leftover check."""
    for store in ("io.containerd.content.v1.content", "io.containerd.snapshotter.v1.overlayfs"):
        shutil.rmtree(containerd_root / store, ignore_errors=True)


def sandbox_ids(containerd_root: Path, containerd_state: Path) -> set[str]:
    """Every pod sandbox containerd's CRI plugin recorded under this node's directories."""
    found: set[str] = set()
    for top in (containerd_root, containerd_state):
        sandboxes = top / "io.containerd.grpc.v1.cri" / "sandboxes"
        if sandboxes.is_dir():
            found.update(p.name for p in sandboxes.iterdir())
    return found
