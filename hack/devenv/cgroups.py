"""A dedicated cgroup (in every v1 hierarchy) for one node: kubelet puts every pod under it,
and containerd, its shims and the kubelet run in its `node` child. Killing what is in it and
removing it depth-first is a complete cleanup, shims that re-parented to init included."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers plus a hybrid `unified`)."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    found = [Path(line.split()[1]) for line in mounts if line.split()[2] in ("cgroup", "cgroup2")]
    return sorted(p for p in found if p.parent == CGROUP_ROOT or p == CGROUP_ROOT)


@dataclass(frozen=True)
class NodeCgroup:
    """`/<name>` in each hierarchy; `name` is what kubelet's `cgroupRoot` gets (with a slash)."""

    name: str

    def dirs(self, child: str = "") -> list[Path]:
        return [h / self.name / child if child else h / self.name for h in hierarchies()]

    def create(self) -> None:
        for path in self.dirs("node"):
            path.mkdir(parents=True, exist_ok=True)
            if path.parent.parent.name == "cpuset":
                # A new cpuset has no CPUs or memory nodes; a task can only join once it has.
                for parent in (path.parent, path):
                    for key in ("cpuset.cpus", "cpuset.mems"):
                        value = (parent.parent / key).read_text()
                        (parent / key).write_text(value)

    def join_command(self) -> str:
        """Shell that moves the shell itself into the `node` child of every hierarchy."""
        files = " ".join(str(d / "cgroup.procs") for d in self.dirs("node"))
        return f'for f in {files}; do echo $$ > "$f"; done'

    def pids(self) -> set[int]:
        found: set[int] = set()
        for top in self.dirs():
            for procs in top.rglob("cgroup.procs") if top.exists() else ():
                with contextlib.suppress(OSError):
                    found.update(int(p) for p in procs.read_text().split())
        return found

    def kill_all(self, timeout: float = 15.0) -> set[int]:
        """SIGKILL everything inside until nothing is left; returns what survived."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        return self.pids()

    def remove(self) -> list[Path]:
        """rmdir every cgroup below and including `/<name>`, deepest first; returns leftovers."""
        left = []
        for top in self.dirs():
            if not top.exists():
                continue
            for path in [*sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True), top]:
                try:
                    path.rmdir()
                except OSError:
                    left.append(path)
        return left

    def exists(self) -> bool:
        return any(p.exists() for p in self.dirs())
