"""Process and port helpers shared by the service launchers in this package."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path


class ServiceError(RuntimeError):
    """A service for the tests could not be fetched, started or reached."""


def tied_to_this_thread(command: list[str], signal_name: str = "TERM") -> list[str]:
    """``command`` run so that the kernel sends it ``SIG<signal_name>`` when this thread ends.

    Uses util-linux's ``setpriv --pdeathsig``: a test session killed outright (SIGKILL, a CI
    time-out) then leaves no broker or database running. Without ``setpriv`` the command runs
    as it is.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", signal_name, "--", *command]


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def stop_process(
    process: subprocess.Popen[bytes],
    *,
    first_signal: signal.Signals = signal.SIGTERM,
    grace_s: float = 20.0,
) -> int:
    """Stop ``process``: ``first_signal`` to it, then SIGKILL to its whole group after ``grace_s``.

    The process must have been started with ``start_new_session=True`` so that its group holds
    it and its children only; whatever is left of the group is killed in the end, so nothing
    outlives the test session. Returns the exit code.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(first_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=10)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
