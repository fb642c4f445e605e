"""Shared fixtures: a real journald, a notify socket, the emulated device, the bundled model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecgd.clock import SimulatedClock
from ecgd.frontend import AnalogFrontEnd
from ecgd.records import Recording, read_recording
from ecgd.sources.emulated import EmulatedI2c, emulated_device

REPO = Path(__file__).resolve().parents[1]
DEMO_RECORD = REPO / "ecgd" / "demo" / "mitdb201_excerpt.hea"
SHARED_DATA = Path(os.environ.get("ECGD_SHARED_DATA", REPO.parent / "shared" / "data"))
JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
JOURNALD = Path("/lib/systemd/systemd-journald")


def _journal_socket_live() -> bool:
    if not JOURNAL_SOCKET.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(str(JOURNAL_SOCKET))
        return True
    except OSError:
        return False  # a stale socket file: nobody is listening
    finally:
        s.close()


@pytest.fixture(scope="session")
def journald() -> Iterator[None]:
    """A real systemd-journald: reuse a running one, else start one (root only, as in CI)."""
    if _journal_socket_live():
        yield
        return
    if os.geteuid() != 0 or not JOURNALD.exists():
        pytest.skip("no journald running and cannot start one (needs root and systemd-journald)")
    proc = subprocess.Popen([str(JOURNALD)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not _journal_socket_live():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"systemd-journald did not come up (exit {proc.returncode})")
        time.sleep(0.02)
    yield
    proc.terminate()
    proc.wait(5)


def journal_cursor() -> str:
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


class NotifyListener:
    """A NOTIFY_SOCKET like systemd's: a thread drains it at once (a full datagram queue would block
    the sender) and keeps READY=1, STATUS=…, WATCHDOG=1 with their arrival times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
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
            self.messages.extend((now, state) for state in data.decode().splitlines())

    def poll(self, duration: float = 0.0) -> list[tuple[float, str]]:
        if duration:
            time.sleep(duration)
        return list(self.messages)

    def wait_for(self, state: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(s == state or s.startswith(state) for _, s in self.messages):
                return True
            time.sleep(0.02)
        return False

    def states(self, prefix: str) -> list[str]:
        return [s for _, s in self.messages if s.startswith(prefix)]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def demo_recording() -> Recording:
    return read_recording(DEMO_RECORD)


@pytest.fixture
def frontend() -> AnalogFrontEnd:
    return AnalogFrontEnd()


@pytest.fixture
def sim_clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def emulated(demo_recording: Recording, frontend: AnalogFrontEnd, sim_clock: SimulatedClock) -> EmulatedI2c:
    """The emulated PCF8591 (AD8232 on AIN2) on the simulated clock."""
    return emulated_device(demo_recording, frontend, sim_clock, channel=2)


def shared_record(name: str) -> Path:
    """A record of ../shared/data (mitdb/201, nstdb/ma); skips where the shared data is absent."""
    path = SHARED_DATA / f"{name}.hea"
    if not path.exists():
        pytest.skip(f"shared ECG data not found at {SHARED_DATA} (set ECGD_SHARED_DATA)")
    return path


@pytest.fixture
def daemon_env(tmp_path, notify_socket, monkeypatch):
    """For an in-process Daemon: a real notify socket with a watchdog, signal handlers restored after."""
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # ping every 0.2 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield tmp_path, notify_socket
    for s, h in saved.items():
        signal.signal(s, h)
