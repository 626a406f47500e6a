"""Run a real nginx (Debian's package) on a given config, privately, and stop it without a trace.

Everything nginx writes (pid file, temporary files, log) lives under `workdir`, which is also
nginx's prefix, so several instances can run side by side and nothing of the host's own nginx
setup is used. The config itself decides the ports; give it loopback addresses.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from devenv.processes import ManagedProcess, wait_until

NGINX_BINARY = Path("/usr/sbin/nginx")
CONFIG_NAME = "nginx.conf"
PID_NAME = "nginx.pid"
LOG_NAME = "nginx.log"


class NginxConfigError(RuntimeError):
    """nginx refused a config; the message is nginx's own report."""


def _global_directives() -> str:
    # The stock image's command adds `daemon off;` the same way; the rest keeps the instance
    # private. As root, workers would otherwise run as `nobody` and fail to enter a 0700 workdir.
    directives = f"daemon off; pid {PID_NAME};"
    if os.geteuid() == 0:
        directives += f" user {getpass.getuser()};"
    return directives


def _argv(workdir: Path, *extra: str) -> list[str]:
    return [
        str(NGINX_BINARY),
        "-p",
        f"{workdir}/",
        "-c",
        str(workdir / CONFIG_NAME),
        "-e",
        "stderr",
        "-g",
        _global_directives(),
        *extra,
    ]


def _write_config(config_text: str, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / CONFIG_NAME).write_text(config_text)


def _test_config(workdir: Path) -> None:
    result = subprocess.run(
        _argv(workdir, "-t"), capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise NginxConfigError(result.stderr.strip() or result.stdout.strip())


def check_config(config_text: str, workdir: Path) -> None:
    """`nginx -t` on the text, as it would run from `workdir`; raise NginxConfigError if refused."""
    _write_config(config_text, workdir)
    _test_config(workdir)


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (nginx's workers), read from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces; ppid follows its state.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.add(int(stat.parent.name))
    return children


@dataclass
class NginxProcess:
    """A running nginx master with its workers; use as a context manager or call `stop`."""

    process: ManagedProcess
    workdir: Path

    @property
    def config_path(self) -> Path:
        return self.workdir / CONFIG_NAME

    def workers(self) -> set[int]:
        return _children(self.process.pid)

    def reload(self, config_text: str, timeout: float = 30.0) -> None:
        """Swap in a new config as `nginx -s reload` does, and wait until only new workers run.

        The config is tested first, because a master that fails to reload keeps serving the old
        config and only says so in its log.
        """
        _write_config(config_text, self.workdir)
        _test_config(self.workdir)
        old_workers = self.workers()

        def only_new_workers() -> bool:
            workers = self.workers()
            return bool(workers) and not workers & old_workers

        os.kill(self.process.pid, signal.SIGHUP)
        wait_until(
            only_new_workers,
            timeout=timeout,
            interval=0.05,
            what=f"nginx to replace workers {sorted(old_workers)}:\n{self.process.log_tail()}",
        )

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> NginxProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_nginx(config_text: str, workdir: Path, timeout: float = 30.0) -> NginxProcess:
    """Start nginx in the foreground on `config_text`, with `workdir` as its private prefix.

    Returns once nginx has written its pid file, which it does after binding every `listen`
    socket, so connections are accepted from then on. Raises NginxConfigError if `nginx -t`
    refuses the config, and RuntimeError (with the log) if nginx exits while starting.
    """
    check_config(config_text, workdir)
    pid_file = workdir / PID_NAME
    pid_file.unlink(missing_ok=True)
    process = ManagedProcess("nginx", _argv(workdir), workdir / LOG_NAME, cwd=workdir).start()

    def started_or_exited() -> bool:
        written = pid_file.exists() and pid_file.read_text().strip() == str(process.pid)
        return written or not process.running()

    try:
        wait_until(started_or_exited, timeout=timeout, interval=0.05, what="nginx's pid file")
        if not process.running():
            raise RuntimeError(f"nginx exited while starting:\n{process.log_tail()}")
    except BaseException:
        process.stop()
        raise
    return NginxProcess(process, workdir)
