"""Start and stop local server processes for tests and the demo, leaving nothing behind."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Self

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PICKED_PORT = 10000


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port at `address` that nothing listens on right now, below the kernel's ephemeral
    range: a port of that range can be taken between this pick and the server's bind as the
    local port of any outgoing connection (most likely how a kube-scheduler lost its port in
    one run)."""
    below = max(ephemeral_range_start(), LOWEST_PICKED_PORT + 1000)
    picker = random.SystemRandom()
    for _ in range(200):
        port = picker.randrange(LOWEST_PICKED_PORT, below)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port at {address} in [{LOWEST_PICKED_PORT}, {below})")


def ephemeral_range_start() -> int:
    """The first port the kernel hands out for outgoing connections (32768 by default)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ProcessStartError(RuntimeError):
    """A managed process exited or never became ready; the message ends with its log tail."""


def wait_until(
    condition: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file.

    Its own group lets `stop` kill everything the command forked (bentoml and nginx
    both start workers), so a test never leaks a process or a port.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    # Have the kernel kill the process if the Python that started it dies (a killed pytest
    # must not leave an apiserver behind); off for servers meant to outlive their starter.
    die_with_parent: bool = False
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            list(self.argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(self.env) if self.env is not None else None,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_kill_me_when_parent_dies if self.die_with_parent else None,
        )
        return self

    @property
    def pid(self) -> int:
        assert self._popen is not None, f"{self.name} was never started"
        return self._popen.pid

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once it exited (negative: the signal that killed it)."""
        return None if self._popen is None else self._popen.poll()

    def wait_until_ready(
        self, probe: Callable[[], bool], timeout: float, interval: float = 0.25
    ) -> None:
        """Poll `probe` until it holds, failing fast if the process exits meanwhile.

        Errors carry the tail of the process's log, because that is where the reason is.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise ProcessStartError(
                    f"{self.name} exited before it was ready; last log lines "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() >= deadline:
                raise ProcessStartError(
                    f"{self.name} was not ready after {timeout:.0f}s; last log lines "
                    f"({self.log_path}):\n{self.log_tail()}"
                )
            time.sleep(interval)

    def record(self) -> dict[str, object]:
        """What `stop_recorded` needs to stop this process from another Python process."""
        return {"name": self.name, "pid": self.pid, "executable": str(self.argv[0])}

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after `grace` seconds."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=grace)
        # Workers can outlive their parent, so the group is always swept.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL at once, as a crash would; its log is closed (a soak kills hundreds)."""
        self._signal_group(signal.SIGKILL)
        if self._popen is not None:
            self._popen.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _signal_group(self, signum: int) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signum)


_PR_SET_PDEATHSIG = 1


def _kill_me_when_parent_dies() -> None:
    """Runs in the child between fork and exec (Linux only)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def write_records(path: Path, processes: Sequence[ManagedProcess], **extra: object) -> None:
    """Save what is needed to stop `processes` later (a `make ...-up` outlives its Python)."""
    payload = {"processes": [p.record() for p in processes], **extra}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


def stop_recorded(path: Path, grace: float = 10.0) -> list[str]:
    """Stop, newest first, the process groups saved by `write_records`; return their names.

    A pid is only signalled while it still runs the recorded executable, so a pid the
    kernel has since reused for something else is left alone.
    """
    records = json.loads(path.read_text())["processes"]
    stopped = []
    for record in reversed(records):
        pid, executable = int(record["pid"]), str(record["executable"])
        if _runs_executable(pid, executable):
            _stop_group(pid, grace)
            stopped.append(str(record["name"]))
    return stopped


def _runs_executable(pid: int, executable: str) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return argv0 == executable


def _stop_group(pgid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts as a member until it is reaped; it holds no port.
    stat = Path(f"/proc/{pgid}/stat")
    with contextlib.suppress(FileNotFoundError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


class StartStop:
    """`with thing as running:` starts `thing`, and always stops it again, also when
    starting fails halfway (so a half-started cluster leaves no process behind)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_: object) -> None:
        self.stop()
