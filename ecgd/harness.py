"""The parts of systemd that the tests and benchmarks stand in for, or read back from.

A NOTIFY_SOCKET listener (what the service manager sees of sd_notify), ``ecgd run``
started as the unit starts it, a real systemd-journald when none runs (root only, as
in CI), and journal read-back with journalctl. Not used by the daemon itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
JOURNALD = Path("/lib/systemd/systemd-journald")


class NotifyListener:
    """A NOTIFY_SOCKET drained by a thread at once (a full datagram queue would block the daemon's
    sends); each state (READY=1, STATUS=…, WATCHDOG=1) is kept with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="notify-listener", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._closed.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            self.messages.extend((now, state) for state in data.decode(errors="replace").splitlines())

    def poll(self, duration: float = 0.0) -> list[tuple[float, str]]:
        """Everything received so far (after waiting ``duration`` seconds)."""
        if duration:
            time.sleep(duration)
        return list(self.messages)

    def first(self, prefix: str) -> float | None:
        """Arrival time of the first state starting with ``prefix``."""
        for t, state in list(self.messages):
            if state.startswith(prefix):
                return t
        return None

    def wait_for(self, prefix: str, timeout: float) -> float | None:
        """Arrival time of the first such state, waiting up to ``timeout``; None if it never came."""
        end = time.monotonic() + timeout
        while True:
            t = self.first(prefix)
            if t is not None or time.monotonic() >= end:
                return t
            time.sleep(0.005)

    def states(self, prefix: str) -> list[str]:
        return [s for _, s in list(self.messages) if s.startswith(prefix)]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1)
        self.sock.close()


def ecgd_command() -> list[str]:
    """The installed ``ecgd`` script beside this Python, else ``python -m ecgd``."""
    script = Path(sys.executable).parent / "ecgd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ecgd"]


def spawn_ecgd(conf: Path, notify_socket: Path, watchdog_usec: int, **popen) -> subprocess.Popen:
    """``ecgd run`` as the unit starts it: ``NOTIFY_SOCKET`` and a watchdog, text stderr piped."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket), WATCHDOG_USEC=str(watchdog_usec))
    env.pop("WATCHDOG_PID", None)
    popen.setdefault("stdout", subprocess.DEVNULL)
    return subprocess.Popen(
        [*ecgd_command(), "run", "--config", str(conf)], env=env, stderr=subprocess.PIPE, text=True, **popen
    )


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> tuple[str, float]:
    """SIGTERM as systemctl stop sends it: (stderr, seconds until it exited); killed if it never does."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err or "", time.monotonic() - t0


def journal_socket_live() -> bool:
    """A journald listens (a socket file alone may be stale)."""
    if not JOURNAL_SOCKET.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(str(JOURNAL_SOCKET))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Journald:
    """A live journald: reused if one runs, else (root only) started as a child and stopped at the end.

    Never a second one on the same paths: that corrupts the journal file.
    """

    def __init__(self, mode: str = "auto") -> None:
        """``mode``: auto (reuse, else start one), reuse (only a running one), off."""
        self.proc: subprocess.Popen | None = None
        self.how = "none"
        if mode == "off":
            return
        if journal_socket_live():
            self.how = "reused the running journald"
        elif mode == "auto" and self.can_start():
            env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
            self.proc = subprocess.Popen(
                [str(JOURNALD)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            deadline = time.monotonic() + 10
            while not journal_socket_live():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    return
                time.sleep(0.02)
            self.how = f"started systemd-journald as a child (PID {self.proc.pid})"

    @staticmethod
    def can_start() -> bool:
        return os.geteuid() == 0 and JOURNALD.exists()

    @property
    def live(self) -> bool:
        return self.how != "none"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


def journal_cursor() -> str:
    """The cursor of the newest entry: read back only what comes after it."""
    out = subprocess.run(
        ["journalctl", "-n", "0", "--show-cursor", "--no-pager", "-q"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        if line.startswith("-- cursor:"):
            return line.split(":", 1)[1].strip()
    return ""


def read_journal(*matches: str, after: str = "", settle_s: float = 0.0) -> list[dict]:
    """Entries matching ``FIELD=value`` terms, read back with ``journalctl -o json``."""
    if settle_s:
        time.sleep(settle_s)
    cmd = ["journalctl", "-o", "json", "--no-pager", "-q", *matches]
    if after:
        cmd.insert(1, f"--after-cursor={after}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
