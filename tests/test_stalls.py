"""Things outside the process that stop reading never stall the daemon (issue 7).

A service manager that stops reading ``NOTIFY_SOCKET``, a stopped journald, a log file on a hung
filesystem: each is a real kernel object here (an AF_UNIX datagram socket nobody reads, a FIFO
nobody drains) that blocks a writer exactly as the real stall does.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from ecgd.harness import read_journal, spawn_ecgd, terminate
from ecgd.notify import Notifier
from ecgd.outputs.results import INFO, event_record
from ecgd.outputs.sinks import SinkDispatcher
from ecgd.outputs.sinks.journal import JournalSink, encode_entry
from ecgd.outputs.sinks.logfile import RotatingJsonLog

RESULT_ID = "e59f77e50dac475e9f4c642396c50f3a"


def unread_socket(path: Path) -> socket.socket:
    """A datagram socket bound and never read: its queue fills after ``max_dgram_qlen`` datagrams."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def received(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except BlockingIOError:
            return out


class Spinner:
    """Counts loop turns on another thread: it stops counting if anything holds the GIL."""

    def __init__(self) -> None:
        self.turns = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.turns += 1
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# --- the notifier ---------------------------------------------------------------------------------


def test_a_full_notify_socket_drops_status_and_keeps_ready_and_watchdog_in_order(tmp_path):
    sock = unread_socket(tmp_path / "notify.sock")
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    sent = 0
    while not n.dropped:  # fill the queue with STATUS= until one is refused
        n.status(f"filler {sent}")
        sent += 1
        assert sent < 10_000, "the socket never filled up"
    n.ready("running")  # refused: READY=1 kept, its STATUS= dropped
    n.watchdog()
    n.watchdog()  # one waiting ping is enough
    n.reloading()
    assert n.pending == ["READY=1", "WATCHDOG=1", "RELOADING=1"]
    assert n.dropped == 3 and n.deferred == 3
    assert not n.flush()  # still full: nothing waits, nothing is lost
    queued = received(sock)
    assert len(queued) == sent - 1 and queued[0] == "STATUS=filler 0"
    assert n.flush() and n.pending == []
    assert received(sock) == ["READY=1", "WATCHDOG=1", "RELOADING=1"]
    n.status("after")
    assert received(sock) == ["STATUS=after"]
    n.close()
    sock.close()


def test_kept_states_never_overtake_older_ones_still_waiting(tmp_path):
    sock = unread_socket(tmp_path / "notify.sock")
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    while not n.dropped:
        n.status("filler")
    n.reloading()
    received(sock)  # the manager reads again, but RELOADING=1 is still ours to resend
    n.ready("running")  # must go after RELOADING=1, never before it
    assert received(sock) == ["RELOADING=1", "READY=1\nSTATUS=running"]
    assert n.pending == []
    n.close()
    sock.close()


def test_no_manager_listening_is_not_an_error_and_an_abstract_address_works(tmp_path):
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    gone.ready("running")  # ENOENT: kept, never raised
    assert gone.pending == ["READY=1"] and not gone.flush()
    name = f"ecgd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000"})
    n.ready("up")
    assert received(sock) == ["READY=1\nSTATUS=up"]
    assert n.watchdog_interval_s == 2.0
    other = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s is None  # the watchdog is someone else's
    assert not Notifier({}).enabled
    sock.close()


# --- journald that does not read ------------------------------------------------------------------


def test_journal_entry_encoding_follows_the_native_protocol():
    data = encode_entry({"MESSAGE": "two\nlines", "PRIORITY": "6", "ECG_LABEL": "N"})
    assert data == b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\nPRIORITY=6\nECG_LABEL=N\n"
    with pytest.raises(ValueError, match="invalid journal field name"):
        encode_entry({"ecg_label": "N"})


def test_a_stopped_journald_makes_the_sink_wait_boundedly_without_holding_the_gil(tmp_path):
    """What froze the daemon: sd_journal_sendv blocking in C with the GIL held."""
    sock = unread_socket(tmp_path / "journal.socket")
    sink = JournalSink(socket_path=str(tmp_path / "journal.socket"), timeout_s=0.5)
    spinner = Spinner()
    try:
        with pytest.raises(OSError, match="journald is not reading its socket"):
            for i in range(10_000):
                sink.write(event_record("lifecycle", f"entry {i}", INFO, 0, i=i))
        turns_before = spinner.turns
        with pytest.raises(OSError, match=r"for 0\.5 s"):
            sink.write(event_record("lifecycle", "one more", INFO, 0))
        assert spinner.turns - turns_before > 20  # the other thread ran all the while
    finally:
        spinner.stop()
        sink.close()
        sock.close()


# --- a log file on a hung filesystem ---------------------------------------------------------------


class Memory:
    name = "memory"

    def __init__(self) -> None:
        self.records: list = []

    def write(self, record) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


def test_a_log_file_that_blocks_holds_back_neither_submit_nor_the_other_outputs(tmp_path):
    fifo = tmp_path / "results.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read: writes block when full
    log = RotatingJsonLog(fifo, max_bytes=1 << 30, backups=1)
    memory = Memory()
    d = SinkDispatcher([log, memory], queue_size=50)
    d.start()
    try:
        pad = "x" * 2000
        for i in range(400):  # ~800 kB: far more than a pipe holds
            d.submit(event_record("lifecycle", f"record {i}", INFO, 0, i=i, pad=pad))
            deadline = time.monotonic() + 10
            while len(memory.records) < i + 1 and time.monotonic() < deadline:
                time.sleep(0.001)
        assert [r.fields["i"] for r in memory.records] == list(range(400))
        assert d.dropped > 0 and d.failed == {"log file": 0, "memory": 0}  # stuck, not failing
    finally:
        os.close(reader)  # the filesystem "comes back": the blocked write fails (EPIPE) and ends
        d.close(2.0)


# --- the daemon under a service manager that stops reading ----------------------------------------


def test_a_notify_socket_never_read_after_ready_stalls_nothing(tmp_path, journald):
    """Issue 7's scenario: 30 s of ``ecgd run`` after READY=1 with nobody reading, then SIGTERM."""
    log = tmp_path / "results.jsonl"
    conf = tmp_path / "ecgd.yaml"
    conf.write_text(
        "device: {kind: emulated, channel: 2}\n"
        "sampling: {realtime_priority: 0}\n"
        f"output: {{journal: true, console: false, log_file: {log}}}\n"
    )
    sock = unread_socket(tmp_path / "notify.sock")
    proc = spawn_ecgd(conf, tmp_path / "notify.sock", 2_000_000)
    try:
        sock.settimeout(20)
        while "READY=1" not in sock.recv(65536).decode():  # a supervisor reads until READY=1 …
            pass
        t_ready = time.monotonic()
        time.sleep(30.0)  # … and then never again
        t_term = time.monotonic()
        err, stop_s = terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err[-2000:]
    assert stop_s < 2.0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    stopped = next(r for r in records if r.get("event") == "stopped")
    assert stopped["notifications_dropped"] > 0  # the socket really was full
    assert "service manager not reading notifications" in stopped["message"]
    # the sampler kept its grid: slots missed only as this machine's wake-ups miss them
    slots = stopped["samples_taken"] + stopped["samples_missing"]
    assert slots >= 360 * (t_term - t_ready)
    assert stopped["samples_missing"] < 0.1 * slots
    # every window has its line, in both sinks
    results = [r for r in records if r["kind"] == "result"]
    assert [r["window_index"] for r in results] == list(range(len(results)))
    assert len(results) >= (t_term - t_ready - 10) / 2  # the first after 10 s, then one per 2-s hop
    journal = []
    for _ in range(20):
        journal = [
            e for e in read_journal(f"_PID={proc.pid}", settle_s=0.25) if e.get("MESSAGE_ID") == RESULT_ID
        ]
        if len(journal) >= len(results):
            break
    assert sorted(int(e["ECG_WINDOW_INDEX"]) for e in journal) == [r["window_index"] for r in results]
