"""Sinks: records, the 0640 rotating JSON log, journald, and the dispatcher that survives broken outputs."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecgd.acquisition.ring import SampleRing
from ecgd.analysis.classifier import Classification
from ecgd.analysis.windows import WindowScheduler
from ecgd.harness import journal_cursor, read_journal
from ecgd.outputs.results import (
    ERR,
    INFO,
    MESSAGE_IDS,
    NOTICE,
    WARNING,
    Record,
    event_record,
    iso_utc,
    result_record,
)
from ecgd.outputs.sinks import SinkDispatcher
from ecgd.outputs.sinks.journal import JOURNAL_SOCKET, JournalSink
from ecgd.outputs.sinks.logfile import FILE_MODE, RotatingJsonLog

WALL0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
LABELS = ("N", "AF", "V")


# --- helpers: real sinks --------------------------------------------------------------------------


class MemorySink:
    """Keeps what it is given (the 'other output' that must hear about a broken one)."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.records: list[Record] = []

    def write(self, record: Record) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass

    def events(self, event: str) -> list[Record]:
        return [r for r in self.records if r.fields.get("event") == event]


class SwitchableSink(MemorySink):
    """A sink whose device can be unplugged: writes fail with EIO while ``broken``."""

    def __init__(self, name: str = "switchable") -> None:
        super().__init__(name)
        self.broken = False
        self.attempts = 0

    def write(self, record: Record) -> None:
        self.attempts += 1
        if self.broken:
            raise OSError(errno.EIO, "device unplugged")
        super().write(record)


class BlockingSink(MemorySink):
    """A sink that hangs (like a stuck NFS mount) until released."""

    def __init__(self) -> None:
        super().__init__("blocking")
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, record: Record) -> None:
        self.entered.set()
        self.release.wait(30)
        super().write(record)


def note(i: int, **fields) -> Record:
    return event_record("lifecycle", f"record {i}", INFO, WALL0 + i * 10**9, i=i, **fields)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def log_lines(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "a partial line was left behind"
    return [json.loads(line) for line in text.splitlines()]


@contextlib.contextmanager
def running(dispatcher: SinkDispatcher) -> Iterator[SinkDispatcher]:
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        dispatcher.close(5.0)


def drained(dispatcher: SinkDispatcher, sink: MemorySink, count: int, timeout: float = 10.0) -> bool:
    """``sink`` has ``count`` numbered records and every sink has handled what was queued for it."""
    got = wait_until(lambda: len([r for r in sink.records if "i" in r.fields]) >= count, timeout)
    return got and dispatcher.wait_idle(timeout)


def make_window(index: int = 3, missing: int = 0, skip: str | None = None):
    ring = SampleRing(8000)
    for s in range(3600):
        if not (100 <= s < 100 + missing):
            ring.put(s, 128, s)
    ring.fill_missing_until(3600)
    sched = WindowScheduler(ring, 3600, 720, lambda seq: WALL0 + seq * 2_777_778)
    (w,) = sched.next(0.01)
    return dataclasses.replace(w, index=index, block=None if skip else w.block, skip_reason=skip)


# --- records --------------------------------------------------------------------------------------


def test_iso_utc_keeps_milliseconds():
    assert iso_utc(WALL0 + 123_456_789) == "2026-01-01T00:00:00.123Z"
    assert iso_utc(WALL0 + 59 * 10**9 + 999_999_999) == "2026-01-01T00:00:59.999Z"


def test_result_record_of_a_normal_window():
    w = make_window(index=3, missing=2)
    c = Classification("N", 0.912345, {"N": 0.9123, "AF": 0.05, "V": 0.0377}, None, 2, 12.34567)
    r = result_record(w, c, "default 1.0", ("AF", "V"), WALL0 + 10**10)
    assert (r.kind, r.priority, r.wall_ns) == ("result", INFO, WALL0 + 10**10)
    f = r.fields
    assert f["label"] == "N" and f["confidence"] == 0.9123 and f["abnormal"] is False
    assert (f["first_seq"], f["last_seq"], f["window_index"]) == (0, 3599, 3)
    assert f["window_start"] == "2026-01-01T00:00:00.000Z"
    assert f["window_end"] == iso_utc(WALL0 + 3600 * 2_777_778)
    assert f["missing_samples"] == 2 and f["inference_ms"] == 12.346 and f["reason"] is None
    assert (
        r.message.startswith("ECG N (0.91) 2026-01-01T00:00:00.000Z – ") and "2 missing samples" in r.message
    )
    j = r.journal_fields()
    assert j["ECG_LABEL"] == "N" and j["ECG_ABNORMAL"] == "0" and j["ECG_FIRST_SEQ"] == "0"
    assert json.loads(j["ECG_PROBABILITIES"]) == {"N": 0.9123, "AF": 0.05, "V": 0.0377}
    assert "ECG_REASON" not in j  # None is left out
    line = json.loads(r.json_line())
    assert line["time"] == "2026-01-01T00:00:10.000Z" and line["kind"] == "result"
    assert line["probabilities"]["AF"] == 0.05 and line["priority"] == INFO


def test_abnormal_and_unclassified_and_skipped_windows_are_warnings():
    w = make_window()
    af = result_record(w, Classification("AF", 0.8, {"AF": 0.8}, None, 0, 1.0), "m", ("AF",), WALL0)
    assert af.priority == WARNING and af.fields["abnormal"] is True
    assert af.journal_fields()["ECG_ABNORMAL"] == "1"
    bad = Classification("unreadable", None, None, "flat line: 0.01 mV", 0, None)
    r = result_record(w, bad, "m", ("AF",), WALL0)
    assert r.priority == WARNING and r.fields["abnormal"] is False
    assert r.message.startswith("ECG unreadable: flat line: 0.01 mV (")
    skipped = make_window(skip="skipped: inference fell behind; coalesced to the newest window")
    r = result_record(skipped, None, "m", ("AF",), WALL0)
    assert r.fields["label"] == "skipped" and r.fields["missing_samples"] is None
    assert r.fields["reason"].startswith("skipped: inference fell behind")
    assert r.priority == WARNING
    assert "ECG_MISSING_SAMPLES" not in r.journal_fields()


def test_event_record_and_message_ids():
    r = event_record("fault", "sensor lost", ERR, WALL0, event="sensor_fault", seq=42)
    assert r.fields == {"event": "sensor_fault", "seq": 42} and r.kind == "fault"
    assert r.journal_fields() == {"ECG_EVENT": "sensor_fault", "ECG_SEQ": "42"}
    assert len(set(MESSAGE_IDS.values())) == 3
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in MESSAGE_IDS.values())


# --- rotating JSON log ----------------------------------------------------------------------------


def test_log_file_is_created_0640_with_one_json_line_per_record(tmp_path):
    path = tmp_path / "var" / "log" / "ecgd" / "results.jsonl"
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        log = RotatingJsonLog(path, max_bytes=1 << 20, backups=2)
        for i in range(5):
            log.write(note(i))
        log.close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE == 0o640
    lines = log_lines(path)
    assert [x["i"] for x in lines] == [0, 1, 2, 3, 4]
    assert lines[1] == {
        "time": "2026-01-01T00:00:01.000Z",
        "kind": "lifecycle",
        "priority": INFO,
        "message": "record 1",
        "i": 1,
    }


def test_existing_world_readable_log_is_tightened_and_appended_to(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"old": true}\n')
    path.chmod(0o644)
    log = RotatingJsonLog(path, max_bytes=1 << 20, backups=1)
    log.write(note(1))
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert log_lines(path) == [{"old": True}, json.loads(note(1).json_line())]


def test_rotation_keeps_at_most_backups_files_never_splits_a_line_and_bounds_size(tmp_path):
    path = tmp_path / "results.jsonl"
    max_bytes, backups = 1000, 3
    log = RotatingJsonLog(path, max_bytes=max_bytes, backups=backups)
    n = 300
    for i in range(n):
        log.write(note(i, pad="x" * (i % 17)))
    log.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["results.jsonl"] + [f"results.jsonl.{k}" for k in (1, 2, 3)]
    kept: list[int] = []
    for f in [path.with_name(f"results.jsonl.{k}") for k in (3, 2, 1)] + [path]:
        assert f.stat().st_size <= max_bytes
        assert stat.S_IMODE(f.stat().st_mode) == 0o640
        kept += [x["i"] for x in log_lines(f)]
    # the newest records survive, in order and without a hole
    assert kept == list(range(n - len(kept), n))
    assert sum(f.stat().st_size for f in files) <= (backups + 1) * max_bytes
    # the rotated files were full: a rotation happens only when the next line would not fit
    line_max = max(len(note(i, pad="x" * 16).json_line()) for i in range(n - 20, n))
    for k in (1, 2, 3):
        assert path.with_name(f"results.jsonl.{k}").stat().st_size > max_bytes - line_max


def test_no_backups_keeps_only_the_current_file(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RotatingJsonLog(path, max_bytes=500, backups=0)
    for i in range(100):
        log.write(note(i))
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]
    lines = log_lines(path)
    assert path.stat().st_size <= 500 and lines[-1]["i"] == 99


def test_a_reopened_log_continues_counting_the_existing_size(tmp_path):
    path = tmp_path / "r.jsonl"
    line = len(note(0).json_line())
    log = RotatingJsonLog(path, max_bytes=line * 3, backups=1)
    for i in range(2):
        log.write(note(i))
    log.close()
    log = RotatingJsonLog(path, max_bytes=line * 3, backups=1)  # e.g. after a daemon restart
    for i in range(2, 4):
        log.write(note(i))
    log.close()
    assert [x["i"] for x in log_lines(path.with_name("r.jsonl.1"))] == [0, 1, 2]
    assert [x["i"] for x in log_lines(path)] == [3]


def test_a_record_longer_than_max_bytes_is_written_whole(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RotatingJsonLog(path, max_bytes=100, backups=2)
    log.write(note(0))
    log.write(note(1, blob="y" * 500))
    log.write(note(2))
    log.close()
    assert [x["i"] for x in log_lines(path.with_name("r.jsonl.2"))] == [0]
    assert [x["i"] for x in log_lines(path.with_name("r.jsonl.1"))] == [1]
    assert [x["i"] for x in log_lines(path)] == [2]


# --- journald -------------------------------------------------------------------------------------


def poll_journal(marker: str, after: str, count: int, timeout: float = 3.0) -> list[dict]:
    """Our entries (ECG_MODEL=marker) written after the cursor; journald may take a moment.

    Filtered here rather than by a journalctl match: journalctl < 255 combined with --after-cursor
    skips the first *matching* entry (systemd issue #30288), which would hide our first record.
    """
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in read_journal(after=after) if e.get("ECG_MODEL") == marker]
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_journal_sink_writes_structured_entries(journald):
    marker = f"test-{uuid.uuid4().hex}"
    cursor = journal_cursor()
    sink = JournalSink()
    w = make_window(index=7, missing=3)
    c = Classification("AF", 0.75, {"N": 0.2, "AF": 0.75, "V": 0.05}, None, 3, 4.2)
    sink.write(result_record(w, c, marker, ("AF", "V"), WALL0))
    sink.write(event_record("fault", "sensor lost", ERR, WALL0, event="sensor_fault", seq=99, model=marker))
    entries = poll_journal(marker, after=cursor, count=2)
    assert len(entries) == 2, entries
    result = next(e for e in entries if e["ECG_KIND"] == "result")
    assert result["MESSAGE_ID"] == MESSAGE_IDS["result"]
    assert result["PRIORITY"] == str(WARNING)  # AF is abnormal
    assert result["SYSLOG_IDENTIFIER"] == "ecgd"
    assert result["ECG_LABEL"] == "AF" and result["ECG_ABNORMAL"] == "1"
    assert json.loads(result["ECG_PROBABILITIES"]) == {"N": 0.2, "AF": 0.75, "V": 0.05}
    assert (result["ECG_FIRST_SEQ"], result["ECG_LAST_SEQ"]) == ("0", "3599")
    assert result["ECG_MISSING_SAMPLES"] == "3" and result["ECG_WINDOW_INDEX"] == "7"
    assert result["MESSAGE"].startswith("ECG AF (0.75) 2026-01-01T00:00:00.000Z")
    fault = next(e for e in entries if e["ECG_KIND"] == "fault")
    assert fault["MESSAGE_ID"] == MESSAGE_IDS["fault"] and fault["PRIORITY"] == str(ERR)
    assert fault["ECG_EVENT"] == "sensor_fault" and fault["ECG_SEQ"] == "99"
    # selectable by the documented fields (the marker is unique, so no cursor is needed here)
    assert len(read_journal(f"MESSAGE_ID={MESSAGE_IDS['result']}", f"ECG_MODEL={marker}")) == 1
    assert len(read_journal("SYSLOG_IDENTIFIER=ecgd", "ECG_LABEL=AF", f"ECG_MODEL={marker}")) == 1


def test_journal_sink_without_a_socket_raises_enoent(tmp_path):
    sink = JournalSink(socket_path=str(tmp_path / "no-journald" / "socket"))
    with pytest.raises(OSError) as info:
        sink.write(note(0))
    assert info.value.errno == errno.ENOENT
    assert "journald" in str(info.value)


def test_journald_outage_is_reported_once_and_recovery_once(journald, tmp_path, capfd):
    """JournalSink on a socket path we control: absent (journald down), then a link to the real one."""
    marker = f"test-{uuid.uuid4().hex}"
    gate = tmp_path / "journal.socket"
    journal = JournalSink(socket_path=str(gate))
    log = RotatingJsonLog(tmp_path / "results.jsonl", max_bytes=1 << 20, backups=1)
    memory = MemorySink()
    cursor = journal_cursor()
    with running(SinkDispatcher([journal, log, memory], queue_size=100)) as d:
        for i in range(5):
            d.submit(note(i, model=marker))
        assert drained(d, memory, 5)
        assert list(d.down) == ["journald"] and "journald is not running" in d.down["journald"]
        gate.symlink_to(JOURNAL_SOCKET)  # journald is back
        for i in range(5, 8):
            d.submit(note(i, model=marker))
        assert drained(d, memory, 8)
        assert d.down == {}
        assert d.failed["journald"] == 5 and d.written["journald"] == 3
    err = capfd.readouterr().err
    assert err.count("journald unavailable") == 1
    assert err.count("journald writing again after 5 failed records") == 1
    lines = log_lines(tmp_path / "results.jsonl")
    assert [x["i"] for x in lines if "i" in x] == list(range(8))  # the file never missed a record
    down = [x for x in lines if x.get("event") == "sink_down"]
    up = [x for x in lines if x.get("event") == "sink_up"]
    assert len(down) == 1 and len(up) == 1
    assert down[0]["sink"] == "journald" and down[0]["priority"] == ERR and down[0]["kind"] == "fault"
    assert "journald unavailable" in down[0]["message"] and "other outputs continue" in down[0]["message"]
    assert up[0]["priority"] == NOTICE
    assert len(memory.events("sink_down")) == 1 and len(memory.events("sink_up")) == 1
    # only what was written after recovery reached journald
    entries = poll_journal(marker, after=cursor, count=3)
    assert sorted(int(e["ECG_I"]) for e in entries) == [5, 6, 7]


def test_a_failing_sink_is_reported_once_per_episode(capfd):
    flaky = SwitchableSink()
    memory = MemorySink()
    with running(SinkDispatcher([flaky, memory], queue_size=100)) as d:
        for episode in range(2):
            base = episode * 20
            flaky.broken = True
            for i in range(base, base + 10):
                d.submit(note(i))
            assert drained(d, memory, base + 10)
            assert "switchable" in d.down
            flaky.broken = False
            for i in range(base + 10, base + 20):
                d.submit(note(i))
            assert drained(d, memory, base + 20)
            assert d.down == {}
    assert [r.fields["i"] for r in memory.records if "i" in r.fields] == list(range(40))
    assert [r.fields["i"] for r in flaky.records] == [*range(10, 20), *range(30, 40)]
    downs, ups = memory.events("sink_down"), memory.events("sink_up")
    assert len(downs) == 2 and len(ups) == 2
    assert all("switchable unavailable: [Errno 5] device unplugged" in r.message for r in downs)
    assert ups[0].message == "switchable writing again after 10 failed records"
    assert ups[1].message.startswith("switchable writing again after ")
    err = capfd.readouterr().err
    assert err.count("switchable unavailable") == 2 and err.count("writing again") == 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sink_raising_a_non_os_error_does_not_stop_the_other_outputs(tmp_path):
    log = RotatingJsonLog(tmp_path / "r.jsonl", max_bytes=1 << 20, backups=1)
    memory = MemorySink()
    d = SinkDispatcher([log, memory], queue_size=100)
    with running(d):
        d.submit(note(0, confidence=float("nan")))
        d.submit(note(1))
        assert drained(d, memory, 2, timeout=2.0)  # the other output must still get record 1
    assert [x["i"] for x in log_lines(tmp_path / "r.jsonl")] == [1]


# --- disk full ------------------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(mount_tmpfs) -> Path:
    return mount_tmpfs("64k")


def test_disk_full_is_reported_once_leaves_no_partial_line_and_recovers(small_tmpfs, capfd):
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * 32 * 1024)  # half the disk, freed later
    path = small_tmpfs / "ecgd" / "results.jsonl"
    log = RotatingJsonLog(path, max_bytes=10 << 20, backups=2)
    memory = MemorySink()
    pad = "z" * 230  # ~300-byte lines that do not divide the 4 KiB pages: writes end mid-line
    with running(SinkDispatcher([log, memory], queue_size=1000)) as d:
        n = 0
        while "log file" not in d.down and n < 2000:
            for _ in range(20):
                d.submit(note(n, pad=pad))
                n += 1
            assert drained(d, memory, n)
        assert "log file" in d.down, "the 64 KiB tmpfs never filled up"
        for _ in range(20):  # more records while the disk stays full: no new report
            d.submit(note(n, pad=pad))
            n += 1
        assert drained(d, memory, n)
        failed = d.failed["log file"]
        assert failed >= 20
        full_lines = log_lines(path)  # every line is whole JSON
        assert len(full_lines) == n - failed
        assert [x["i"] for x in full_lines] == list(range(len(full_lines)))
        assert "No space left on device" in d.down["log file"]

        filler.unlink()  # the admin frees space
        for _ in range(5):
            d.submit(note(n, pad=pad))
            n += 1
        assert drained(d, memory, n)
        assert d.down == {}
    downs, ups = memory.events("sink_down"), memory.events("sink_up")
    assert len(downs) == 1 and downs[0].fields["sink"] == "log file"
    assert "No space left on device" in downs[0].message
    assert len(ups) == 1 and ups[0].message == f"log file writing again after {failed} failed records"
    err = capfd.readouterr().err
    assert err.count("log file unavailable") == 1 and err.count("log file writing again") == 1
    after = log_lines(path)
    assert [x["i"] for x in after[len(full_lines) :]] == list(range(n - 5, n))


# --- bounded queue --------------------------------------------------------------------------------


def test_a_blocked_sink_never_blocks_submit_nor_the_other_sinks_and_its_drops_are_reported(tmp_path):
    blocking = BlockingSink()
    memory = MemorySink()
    d = SinkDispatcher([blocking, memory], queue_size=10)
    d.start()
    try:
        d.submit(note(0))
        assert blocking.entered.wait(10), "the dispatcher never reached the sink"
        for i in range(1, 50):
            d.submit(note(i))  # must return although the sink is stuck and its queue is full
            # the other sink is not held back by the stuck one: it takes each record at once
            assert wait_until(lambda i=i: len(memory.records) == i + 1)
        assert not blocking.release.is_set()  # proof that submit did not wait for the sink
        assert d.dropped == 39  # for the stuck sink: 1 in the sink, 10 queued, the rest dropped
        blocking.release.set()
        assert wait_until(lambda: len(blocking.records) >= 12)
        assert d.wait_idle(5.0)
    finally:
        blocking.release.set()
        d.close(5.0)
    got = [r.fields.get("i", "fault") for r in blocking.records]
    assert got == [0, *range(1, 11), "fault"]  # reported once the queue has drained: the whole episode
    fault = blocking.records[11]
    assert fault.kind == "fault" and fault.priority == ERR
    assert fault.fields == {"event": "records_dropped", "dropped": 39, "sink": "blocking"}
    assert fault.message.startswith("39 records dropped for blocking: output too slow")
    # the other sink got every record and then the same report about the stuck one
    assert [r.fields.get("i", "fault") for r in memory.records] == [*range(50), "fault"]
    assert memory.records[-1].fields == fault.fields


def test_a_second_overload_episode_is_reported_too():
    blocking = BlockingSink()
    d = SinkDispatcher([blocking], queue_size=10)
    d.start()
    try:
        for episode in range(2):
            blocking.entered.clear()
            blocking.release.clear()
            d.submit(note(100 * episode))
            assert blocking.entered.wait(10)
            for i in range(1, 30):
                d.submit(note(100 * episode + i))
            blocking.release.set()
            need = (12, 23)[episode]  # 1 + 10 queued (+ the drop report) per episode
            assert wait_until(lambda need=need: len(blocking.records) >= need)
    finally:
        blocking.release.set()
        d.close(5.0)
    faults = [r for r in blocking.records if r.fields.get("event") == "records_dropped"]
    assert len(faults) == 2


def test_close_flushes_what_is_queued(tmp_path):
    log = RotatingJsonLog(tmp_path / "r.jsonl", max_bytes=1 << 20, backups=1)
    d = SinkDispatcher([log], queue_size=100)
    d.start()
    for i in range(50):
        d.submit(note(i))
    d.close(5.0)
    assert [x["i"] for x in log_lines(tmp_path / "r.jsonl")] == list(range(50))
    assert d.written == {"log file": 50} and d.dropped == 0


def test_console_line_shows_the_heart_rate_and_puts_alarms_first():
    import io

    from ecgd.outputs.sinks.console import ConsoleSink

    out = io.StringIO()
    sink = ConsoleSink(out)
    w = make_window(index=7)
    c = Classification("N", 0.9, {"N": 0.9, "AF": 0.1}, None, 0, 1.0)
    record = result_record(w, c, "m@1", ("AF",), WALL0)
    sink.write(dataclasses.replace(record, fields={**record.fields, "heart_rate_bpm": 72.4}))
    sink.write(record)  # no beat figures: the rate is not guessed
    sink.write(Record("alarm", "ASYSTOLE (high): no QRS for 4.0 s", 2, {"alarm_priority": "high"}, WALL0))
    lines = out.getvalue().splitlines()
    assert "#7    HR  72  N" in lines[0] and "N=0.90 AF=0.10" in lines[0]
    assert "HR ---  N" in lines[1]
    assert lines[2] == "[ALARM HIGH] ASYSTOLE (high): no QRS for 4.0 s"
