"""The WFDB recorder, read back with the reference ``wfdb`` package: exact codes, gaps in place,
segments and the day's header, crash recovery, retention, a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import wfdb
from daemon_support import log_records, run_in_main_thread, write_config

from ecgd import config as cfg
from ecgd.acquisition.clock import SimulatedClock
from ecgd.acquisition.ring import SampleRing
from ecgd.acquisition.sampler import SampleGrid, Sampler
from ecgd.acquisition.sources.pcf8591 import Pcf8591
from ecgd.daemon import Daemon
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.recordings import list_segments
from ecgd.notify import Notifier
from ecgd.outputs.recording import Recorder, RecordingSettings

RATE = 360.0
REPO = Path(__file__).resolve().parents[1]
BOUNDARY_MARGIN_S = 30.0  # the longest a test here records on the real clock, two daemon starts included


@pytest.fixture(autouse=True)
def away_from_a_segment_boundary():
    """Segments are aligned to the UTC hour (and a day always splits), so a test that expects one
    segment fails when it runs across a full hour, as CI's did at 02:00:00. Start after the boundary
    instead: a wait of at most BOUNDARY_MARGIN_S, at most once an hour."""
    into_hour = time.time() % 3600
    if into_hour > 3600 - BOUNDARY_MARGIN_S:
        time.sleep(3600 - into_hour + 1.0)


class Reports(list):
    def __call__(self, kind, message, priority, fields):
        self.append((kind, message, priority, fields))

    def events(self, name: str) -> list[str]:
        return [m for _, m, _, f in self if f.get("event") == name]


def sampled(emulated, clock: SimulatedClock, seconds: float) -> tuple[SampleRing, SampleGrid]:
    """The real sampler on the emulated ADC, with a 3-s bus outage and scattered read errors."""
    ring = SampleRing(int(seconds * RATE) + 10)
    emulated.error_rate = 0.01
    emulated.inject(3.0, after_s=40.0)
    sampler = Sampler(Pcf8591(1, 0x48, 2, bus_factory=emulated), ring, clock, RATE, retries=0)
    sampler.run(max_slots=int(seconds * RATE))
    assert ring.missing > 3 * RATE, "the outage left no gap"
    return ring, sampler.grid


def record(ring, grid, directory: Path, wall_now, **settings) -> tuple[Recorder, Reports]:
    reports = Reports()
    s = RecordingSettings(directory=str(directory), flush_seconds=0.1, fsync=False, **settings)
    rec = Recorder(s, AnalogFrontEnd(), reports, wall_now=wall_now)
    rec.start(ring, grid)
    rec.stop()
    return rec, reports


def expected_digital(ring: SampleRing, fmt: int, stop: int | None = None) -> np.ndarray:
    block = ring.read(0, ring.next_seq if stop is None else stop)
    shift, invalid = (128, -128) if fmt == 80 else (0, -32768)
    d = np.maximum(block.counts.astype(np.int64) - shift, invalid + 1)
    return np.where(block.valid, d, invalid)


def day_record(directory: Path) -> Path:
    (day,) = [p for p in directory.iterdir() if p.is_dir()]
    return day / f"ecg_{day.name}"


@pytest.mark.parametrize("fmt", [80, 16])
def test_the_recording_holds_exactly_the_sampled_codes_with_the_gaps_in_place(
    tmp_path, emulated, sim_clock, fmt
):
    ring, grid = sampled(emulated, sim_clock, 150.0)
    rec, reports = record(ring, grid, tmp_path, sim_clock.wall_ns, segment_seconds=60, signal_format=fmt)
    assert reports.events("recording_failed") == []
    segs = list_segments(tmp_path)
    assert len(segs) == 3  # 00:00-00:01, 00:01-00:02, 00:02-00:02:30 (UTC-aligned)
    want = expected_digital(ring, fmt)
    # the day as one multi-segment record: every slot, in place
    day = wfdb.rdrecord(str(day_record(tmp_path)), physical=False, return_res=32)
    got = day.d_signal[:, 0]
    assert got.size == ring.next_seq == rec.samples_written
    np.testing.assert_array_equal(got, want)
    # each segment in millivolts: NaN where the sampler missed a slot, within half an ADC step elsewhere
    fe = AnalogFrontEnd()
    first = 0
    for seg in segs:
        r = wfdb.rdrecord(str(seg.path))
        assert r.fmt == [str(fmt)] and r.units == ["mV"] and r.sig_len == seg.n
        block = ring.read(first, first + seg.n)
        mv = r.p_signal[:, 0]
        np.testing.assert_array_equal(np.isnan(mv), ~block.valid)
        ok = block.valid & (block.counts > 0)
        assert np.abs(mv[ok] - fe.counts_to_mv(block.counts[ok])).max() <= 0.5 / r.adc_gain[0] + 1e-6
        start = grid.wall_ns(first)
        assert (
            r.base_time.strftime("%H:%M:%S.%f")[:12]
            == time.strftime("%H:%M:%S", time.gmtime(start // 10**9)) + f".{(start // 10**6) % 1000:03d}"
        )
        first += seg.n
    assert [s.n for s in segs] == [round(60 * RATE), round(60 * RATE), ring.next_seq - round(120 * RATE)]


def test_gaps_get_a_comment_annotation_at_their_first_sample(tmp_path, emulated, sim_clock):
    ring, grid = sampled(emulated, sim_clock, 70.0)
    record(ring, grid, tmp_path, sim_clock.wall_ns, segment_seconds=3600)
    (seg,) = list_segments(tmp_path)
    ann = wfdb.rdann(str(seg.path), "ecgd")
    valid = ring.read(0, ring.next_seq).valid
    edges = np.flatnonzero(np.diff(np.concatenate(([1], valid.astype(np.int8), [1]))))
    long_gaps = [(a, b - a) for a, b in zip(edges[0::2], edges[1::2], strict=True) if b - a >= 0.05 * RATE]
    assert long_gaps and list(ann.sample) == [a for a, _ in long_gaps]
    assert set(ann.symbol) == {'"'}
    assert ann.aux_note == [f"gap: {n} samples missing ({n / RATE:.3f} s)" for _, n in long_gaps]


def synthetic_ring(seconds: float, seed: int = 0) -> SampleRing:
    ring = SampleRing(int(seconds * RATE) + 10)
    rng = np.random.default_rng(seed)
    for seq, code in enumerate(rng.integers(0, 256, int(seconds * RATE))):
        if seq % 97:  # a missing slot now and then
            ring.put(seq, int(code), 0)
    ring.fill_missing_until(int(seconds * RATE))
    return ring


def test_a_restart_is_a_new_segment_and_the_day_header_lists_them_in_order_with_the_gap(tmp_path):
    wall0 = 1_767_258_000 * 10**9  # 2026-01-01 09:00:00 UTC
    ring1, ring2 = synthetic_ring(20, 1), synthetic_ring(30, 2)
    grid1 = SampleGrid(0, RATE, wall0 + 123_000_000)
    grid2 = SampleGrid(0, RATE, wall0 + 123_000_000 + 25 * 10**9)  # 5 s after the first run ended
    record(ring1, grid1, tmp_path, lambda: wall0)
    _, reports = record(ring2, grid2, tmp_path, lambda: wall0)
    segs = list_segments(tmp_path)
    assert [s.path.name for s in segs] == ["ecg_20260101_090000", "ecg_20260101_090025"]
    master = day_record(tmp_path)
    text = master.with_suffix(".hea").read_text().splitlines()
    assert text[0] == "ecg_20260101/4 1 360 19800 09:00:00.123 01/01/2026"
    assert text[1:] == [
        "ecg_20260101_layout 0",
        "ecg_20260101_090000 7200",
        "~ 1800",
        "ecg_20260101_090025 10800",
    ]
    day = wfdb.rdrecord(str(master), physical=False, return_res=32).d_signal[:, 0]
    np.testing.assert_array_equal(day[:7200], expected_digital(ring1, 80))
    assert (day[7200:9000] == -128).all()
    np.testing.assert_array_equal(day[9000:], expected_digital(ring2, 80))
    assert "1 segments kept" in reports[0][1]


def test_locate_names_the_segment_and_sample_of_a_slot(tmp_path):
    ring = synthetic_ring(130)
    grid = SampleGrid(0, RATE, 1_767_258_000 * 10**9)
    rec, _ = record(ring, grid, tmp_path, lambda: 0, segment_seconds=60)
    path, sample = rec.locate(int(61.5 * RATE))
    assert Path(path).name == "ecg_20260101_090100" and sample == int(1.5 * RATE)
    assert rec.locate(10**9) is None


def test_retention_deletes_the_oldest_segments_first(tmp_path):
    day_s = 86_400
    base = 1_767_225_600  # 2026-01-01 00:00 UTC
    for d in range(5):  # five days, one 20-s segment each
        record(
            synthetic_ring(20, d), SampleGrid(0, RATE, (base + d * day_s + 3600) * 10**9), tmp_path, lambda: 0
        )
    assert len(list_segments(tmp_path)) == 5
    now = (base + 4 * day_s + 7200) * 10**9
    _, reports = record(synthetic_ring(1), SampleGrid(0, RATE, now), tmp_path, lambda: now, max_days=2.5)
    days = sorted(p.name for p in tmp_path.iterdir())
    assert days == ["20260103", "20260104", "20260105"], "the two oldest days go, and their directories"
    assert "2 deleted by retention" in reports[0][1]
    bad_clock = now + 400 * day_s * 10**9  # the wall clock jumped a year ahead: nothing looks old
    _, reports = record(
        synthetic_ring(1), SampleGrid(0, RATE, now), tmp_path, lambda: bad_clock, max_days=2.5
    )
    assert "0 deleted by retention" in reports[0][1] and len(list_segments(tmp_path)) == 5
    one = list_segments(tmp_path)[0].nbytes()
    _, reports = record(
        synthetic_ring(1), SampleGrid(0, RATE, now + 10**10), tmp_path, lambda: now, max_bytes=3 * one
    )
    names = [s.path.name for s in list_segments(tmp_path)]
    assert names[0].startswith("ecg_20260104"), names  # 03 went first, the newest stay
    assert sum(s.nbytes() for s in list_segments(tmp_path)) <= 3 * one + 2 * 360 + 2000


def test_files_are_0640_and_the_header_is_valid_during_the_recording(tmp_path):
    ring = SampleRing(int(60 * RATE))
    grid = SampleGrid(0, RATE, 1_767_258_000 * 10**9)
    s = RecordingSettings(directory=str(tmp_path), flush_seconds=0.1)
    rec = Recorder(s, AnalogFrontEnd(), Reports(), wall_now=lambda: 0)
    rec.start(ring, grid)
    try:
        for seq in range(int(2 * RATE)):
            ring.put(seq, 100 + seq % 50, 0)
        time.sleep(0.6)
        (seg,) = list_segments(tmp_path)
        live = wfdb.rdrecord(str(seg.path), physical=False)  # while it is being written
        assert live.sig_len == int(2 * RATE)
        master = wfdb.rdrecord(str(day_record(tmp_path)), physical=False, return_res=32)
        assert master.sig_len == int(2 * RATE)
    finally:
        rec.stop()
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == 0o640, p
    assert not list(tmp_path.rglob("*.tmp"))


# --- a crash ----------------------------------------------------------------------------------------
def ecgd_run(conf: Path, env_extra: dict | None = None) -> subprocess.Popen:
    from ecgd.harness import NotifyListener

    listener = NotifyListener(conf.parent / f"notify-{time.monotonic_ns()}.sock")
    env = dict(os.environ, NOTIFY_SOCKET=str(listener.path), **(env_extra or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecgd", "run", "--config", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert listener.wait_for("READY=1", 30), proc.communicate(timeout=5)[1]
    proc.listener = listener  # closed by the caller once the process has ended
    return proc


def test_kill_9_loses_at_most_the_flush_interval_and_the_next_start_recovers_it(tmp_path):
    rec_dir = tmp_path / "rec"
    log = tmp_path / "r.jsonl"
    write_config(tmp_path / "c.yaml", log, recording={"directory": str(rec_dir), "flush_seconds": 1.0})
    proc = ecgd_run(tmp_path / "c.yaml")
    time.sleep(4.3)
    proc.send_signal(signal.SIGKILL)
    killed_ns = time.time_ns()
    proc.wait(10)
    proc.listener.close()
    (seg,) = list_segments(rec_dir)
    in_file = seg.path.with_suffix(".dat").stat().st_size
    slots_until_kill = (killed_ns - seg.start_ns) * RATE / 1e9
    lost = slots_until_kill - in_file
    assert 0 <= lost <= 1.0 * RATE + 0.25 * RATE, f"lost {lost / RATE:.2f} s of signal"
    assert seg.n <= in_file  # the header never claims more than the file holds
    ann = seg.path.with_suffix(".ecgd")
    unfinished = seg.n != in_file or (ann.exists() and ann.read_bytes()[-2:] != b"\0\0")

    proc = ecgd_run(tmp_path / "c.yaml")
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    proc.listener.close()
    started = [r for r in log_records(log) if r.get("event") == "recording_started"]
    assert started[-1]["recovered"] == int(unfinished)
    segs = list_segments(rec_dir)
    assert len(segs) == 2 and segs[0].n == in_file
    r = wfdb.rdrecord(str(segs[0].path), physical=False)
    assert r.sig_len == in_file
    master = day_record(rec_dir).with_suffix(".hea").read_text().splitlines()
    assert master[2] == f"{segs[0].path.name} {in_file}" and master[-1].startswith(segs[1].path.name)


# --- the daemon ---------------------------------------------------------------------------------------
def test_a_daemon_run_records_every_slot_the_sampler_took_or_missed(daemon_env):
    tmp, listener = daemon_env
    rec_dir = tmp / "rec"
    write_config(tmp / "c.yaml", tmp / "r.jsonl", recording={"directory": str(rec_dir), "flush_seconds": 0.2})
    daemon = Daemon(cfg.load(tmp / "c.yaml"), notifier=Notifier())
    daemon.start()
    daemon.i2c.inject(0.5, after_s=1.5)  # a bus outage: a gap the recording must hold in place

    def actions():
        time.sleep(6.0)  # beats after the detector's 2-s learning and the outage: a few, well past its delay
        os.kill(os.getpid(), signal.SIGTERM)

    run_in_main_thread(daemon, actions)
    assert any("recording" in st for st in listener.states("STATUS"))
    st = daemon.sampler.stats()
    stopped = [r for r in log_records(tmp / "r.jsonl") if r.get("event") == "stopped"][-1]
    assert stopped["recorded_samples"] == st.taken + st.missing == daemon.ring.next_seq
    (seg,) = list_segments(rec_dir)
    d = wfdb.rdrecord(str(seg.path), physical=False).d_signal[:, 0]
    np.testing.assert_array_equal(d, expected_digital(daemon.ring, 80))
    assert (d == -128).sum() == st.missing >= 0.4 * RATE
    # the beats where the detector put them: the same detector on the recorded signal, in one block
    from ecgd.analysis.beats import BeatTracker

    b = daemon.settings.beats
    block = daemon.ring.read(0, daemon.ring.next_seq)
    offline = BeatTracker(RATE, b.qrs, b.tracker).feed(
        0, daemon.settings.analog_frontend.counts_to_mv(block.counts), block.valid
    )
    ann = wfdb.rdann(str(seg.path), "ecgd")
    beat_symbols = set("NSVQ")  # the labeller's labels (Q: not judged)
    recorded_beats = [int(x) for x, sym in zip(ann.sample, ann.symbol, strict=True) if sym in beat_symbols]
    assert len(recorded_beats) >= 3
    assert recorded_beats == [x.seq for x in offline][: len(recorded_beats)]


def test_an_unwritable_directory_is_reported_and_monitoring_goes_on(daemon_env):
    tmp, _ = daemon_env
    blocker = tmp / "file"
    blocker.write_text("not a directory")
    write_config(tmp / "c.yaml", tmp / "r.jsonl", recording={"directory": str(blocker / "rec")})
    daemon = Daemon(cfg.load(tmp / "c.yaml"), notifier=Notifier())
    daemon.start()
    run_in_main_thread(daemon, lambda: (time.sleep(2.5), os.kill(os.getpid(), signal.SIGTERM)))
    recs = log_records(tmp / "r.jsonl")
    failed = [r for r in recs if r.get("event") == "recording_failed"]
    assert len(failed) == 1 and "monitoring goes on" in failed[0]["message"]
    assert any(r["kind"] == "result" for r in recs) or daemon.sampler.stats().taken > 700


# --- a full disk ------------------------------------------------------------------------------------
@pytest.fixture
def small_tmpfs(mount_tmpfs) -> Path:
    return mount_tmpfs("256k")


def test_a_full_disk_deletes_the_oldest_reports_once_and_loses_nothing_it_can_keep(small_tmpfs):
    base = 1_767_258_000 * 10**9
    for i in range(3):  # three older segments of 60 s (21.6 kB each)
        record(synthetic_ring(60, i), SampleGrid(0, RATE, base + i * 3600 * 10**9), small_tmpfs, lambda: 0)
    old = [s.path.name for s in list_segments(small_tmpfs)]
    free = os.statvfs(small_tmpfs)
    (small_tmpfs / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 30 * 1024))
    ring = SampleRing(int(200 * RATE))
    grid = SampleGrid(0, RATE, base + 5 * 3600 * 10**9)
    reports = Reports()
    s = RecordingSettings(
        directory=str(small_tmpfs), flush_seconds=0.05, fsync=False, max_bytes=0, max_days=0
    )
    rec = Recorder(s, AnalogFrontEnd(), reports, wall_now=lambda: 0)
    rec.start(ring, grid)
    src = synthetic_ring(150, 9)
    try:
        feed(ring, src, 0, 150)  # 150 s of signal, 54 kB: more than the disk has free
        wait_written(rec, ring)
    finally:
        rec.stop()
    left = [s.path.name for s in list_segments(small_tmpfs)]
    assert old[0] not in left, "the oldest segment was not deleted"
    assert left[-1].endswith("140000"), left
    full = reports.events("recording_disk_full")
    assert len(full) == 1 and "deleted the 3 oldest segments" in full[0], reports
    assert reports.events("recording_failed") == []
    (seg,) = [s for s in list_segments(small_tmpfs) if s.path.name == left[-1]]
    got = wfdb.rdrecord(str(seg.path), physical=False).d_signal[:, 0]
    np.testing.assert_array_equal(got, expected_digital(src, 80, int(150 * RATE)))


def feed(ring: SampleRing, src: SampleRing, first_s: int, stop_s: int) -> None:
    for sec in range(first_s, stop_s):
        block = src.read(int(sec * RATE), int((sec + 1) * RATE))
        for j in np.flatnonzero(block.valid):
            ring.put(int(sec * RATE) + int(j), int(block.counts[j]), 0)
        ring.fill_missing_until(int((sec + 1) * RATE))
        time.sleep(0.01)


def wait_written(rec: Recorder, ring: SampleRing, limit_s: float = 10) -> None:
    deadline = time.monotonic() + limit_s
    while rec.next_seq < ring.next_seq and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_disk_full_of_other_files_is_reported_once_and_writing_resumes_without_loss(small_tmpfs):
    free = os.statvfs(small_tmpfs)
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 12 * 1024))
    ring = SampleRing(int(120 * RATE))
    reports = Reports()
    s = RecordingSettings(directory=str(small_tmpfs), flush_seconds=0.05, fsync=False)
    rec = Recorder(s, AnalogFrontEnd(), reports, wall_now=lambda: 0)
    rec.start(ring, SampleGrid(0, RATE, 1_767_258_000 * 10**9))
    src = synthetic_ring(80, 4)
    try:
        feed(ring, src, 0, 60)  # 21.6 kB into 12 kB of free space
        time.sleep(0.5)
        assert len(reports.events("recording_failed")) == 1, reports
        assert rec.next_seq < ring.next_seq
        filler.unlink()  # the admin makes room: the samples still in the ring are written
        feed(ring, src, 60, 80)
        wait_written(rec, ring)
    finally:
        rec.stop()
    assert len(reports.events("recording_failed")) == 1
    assert len(reports.events("recording_recovered")) == 1
    assert not list(small_tmpfs.rglob("*.tmp")), "a failed header write left its temporary file"
    (seg,) = list_segments(small_tmpfs)
    got = wfdb.rdrecord(str(seg.path), physical=False).d_signal[:, 0]
    np.testing.assert_array_equal(got, expected_digital(src, 80, int(80 * RATE)))


def test_a_start_recovers_a_segment_whose_header_is_behind_its_file(tmp_path):
    """A crash between the data write and the header rewrite (or mid-sample, format 16)."""
    ring = synthetic_ring(10)
    grid = SampleGrid(0, RATE, 1_767_258_000 * 10**9)
    record(ring, grid, tmp_path, lambda: 0, signal_format=16)
    (seg,) = list_segments(tmp_path)
    dat = seg.path.with_suffix(".dat")
    extra = np.arange(100, 460, dtype="<i2").tobytes() + b"\x07"  # one second more, half a sample
    with open(dat, "ab") as f:
        f.write(extra)
    ann = seg.path.with_suffix(".ecgd")
    ann.write_bytes(bytes.fromhex("0558"))  # one comment annotation at sample 5, no end marker
    _, reports = record(
        synthetic_ring(1), SampleGrid(0, RATE, grid.wall_offset_ns + 60 * 10**9), tmp_path, lambda: 0
    )
    assert "1 recovered" in reports[0][1]
    first = list_segments(tmp_path)[0]
    assert first.n == seg.n + 360 and dat.stat().st_size == 2 * first.n
    r = wfdb.rdrecord(str(first.path), physical=False)
    np.testing.assert_array_equal(r.d_signal[-360:, 0], np.arange(100, 460))
    assert ann.read_bytes()[-2:] == b"\0\0"
    assert list(wfdb.rdann(str(first.path), "ecgd").sample) == [5]


def test_a_reload_of_the_recording_or_the_sampler_keeps_every_slot_once(daemon_env):
    """recording.* changed: a new segment from where the old one stopped. A sampler restart on a new
    ring (sampling.ring_seconds changed): the old ring is written out, then a new segment."""
    tmp, _ = daemon_env
    conf, log, rec_dir = tmp / "c.yaml", tmp / "r.jsonl", tmp / "rec"
    write_config(conf, log, recording={"directory": str(rec_dir), "flush_seconds": 0.2})
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    first_ring = daemon.ring

    def actions():
        time.sleep(1.5)
        write_config(conf, log, recording={"directory": str(rec_dir), "flush_seconds": 0.3})
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1.5)
        write_config(
            conf,
            log,
            recording={"directory": str(rec_dir), "flush_seconds": 0.3},
            sampling={"ring_seconds": 60},
        )
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGTERM)

    run_in_main_thread(daemon, actions)
    assert daemon.ring is not first_ring
    segs = list_segments(rec_dir)
    assert len(segs) == 3, [s.path.name for s in segs]
    assert segs[0].first_seq == 0 and segs[1].first_seq == segs[0].n  # no slot twice, none left out
    assert segs[0].n + segs[1].n == first_ring.next_seq  # the first ring written out in full
    assert segs[2].first_seq == 0 and segs[2].n == daemon.ring.next_seq  # the new ring from its start
    d = np.concatenate([wfdb.rdrecord(str(s.path), physical=False).d_signal[:, 0] for s in segs[:2]])
    np.testing.assert_array_equal(d, expected_digital(first_ring, 80))


def test_a_hanging_disk_is_said_once_monitoring_goes_on_and_nothing_is_lost(daemon_env):
    tmp, listener = daemon_env
    rec_dir = tmp / "rec"
    write_config(tmp / "c.yaml", tmp / "r.jsonl", recording={"directory": str(rec_dir), "flush_seconds": 0.2})
    daemon = Daemon(cfg.load(tmp / "c.yaml"), notifier=Notifier())
    daemon.start()
    rec = daemon.recorder
    rec.stall_after_s = 1.0
    release = threading.Event()
    real_append = rec._append
    taken = {}

    def hanging_append(*a, **kw):
        release.wait(10)  # a write that does not return (an SD card timing out)
        return real_append(*a, **kw)

    def actions():
        time.sleep(1.0)
        rec._append = hanging_append
        time.sleep(0.5)
        taken["before"] = daemon.sampler.stats().taken
        time.sleep(3.0)
        taken["during"] = daemon.sampler.stats().taken - taken["before"]
        rec._append = real_append
        release.set()
        time.sleep(2.0)
        os.kill(os.getpid(), signal.SIGTERM)

    run_in_main_thread(daemon, actions)
    recs = log_records(tmp / "r.jsonl")
    events = [r["event"] for r in recs if r.get("event") in ("recording_stalled", "recording_resumed")]
    assert events == ["recording_stalled", "recording_resumed"]
    assert any("recording stalled" in s for s in listener.states("STATUS"))
    assert taken["during"] > 2.5 * RATE * 0.8  # the sampler never waited on the disk
    (seg,) = list_segments(rec_dir)
    d = wfdb.rdrecord(str(seg.path), physical=False).d_signal[:, 0]
    np.testing.assert_array_equal(d, expected_digital(daemon.ring, 80))


def test_an_alarm_line_names_its_signal_and_the_recording_marks_it(daemon_env, journald):
    """From a journalctl line to its strip: the asystole alarm's record (log and journald) carries the
    segment and sample of its onset, the recording holds an alarm comment there, and ``ecgd strip``
    draws it."""
    from ecgd.cli import main
    from ecgd.harness import read_journal
    from ecgd.io import synthetic as syn

    tmp, _ = daemon_env
    np.save(
        tmp / "rec.npy",
        np.concatenate([syn.regular(RATE, 12, 70), syn.flat(RATE, 8), syn.regular(RATE, 6, 70)]),
    )
    rec_dir = tmp / "rec"
    write_config(
        tmp / "c.yaml",
        tmp / "r.jsonl",
        emulated={"recording": str(tmp / "rec.npy"), "recording_rate_hz": RATE},
        output={"journal": True},
        recording={"directory": str(rec_dir), "flush_seconds": 0.5},
    )
    daemon = Daemon(cfg.load(tmp / "c.yaml"), notifier=Notifier())
    daemon.start()
    run_in_main_thread(daemon, lambda: (time.sleep(24.0), os.kill(os.getpid(), signal.SIGTERM)))
    onset = next(r for r in log_records(tmp / "r.jsonl") if r["kind"] == "alarm" and r["alarm"] == "asystole")
    (seg,) = list_segments(rec_dir)
    assert (
        onset["recording"] == str(seg.path)
        and onset["recording_sample"] == onset["onset_seq"] - seg.first_seq
    )
    entries = read_journal(f"ECG_ALARM_ID={onset['alarm_id']}")
    for _ in range(20):
        if entries:
            break
        entries = read_journal(f"ECG_ALARM_ID={onset['alarm_id']}", settle_s=0.2)
    assert entries[0]["ECG_RECORDING"] == str(seg.path)
    assert int(entries[0]["ECG_RECORDING_SAMPLE"]) == onset["recording_sample"]
    ann = wfdb.rdann(str(seg.path), "ecgd")
    notes = [
        (int(s), a) for s, sym, a in zip(ann.sample, ann.symbol, ann.aux_note, strict=True) if sym == '"'
    ]
    assert any(
        s == onset["seq"] - seg.first_seq and a.startswith("alarm asystole onset") for s, a in notes
    ), notes
    out = tmp / "alarm.png"
    at = str(max(0, onset["recording_sample"] - int(2 * RATE)))
    assert main(["strip", entries[0]["ECG_RECORDING"], "--at-sample", at, "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_an_export_across_a_restart_keeps_both_runs_in_place_and_the_gap_invalid(tmp_path):
    from ecgd.cli import main
    from ecgd.io.recordings import iso

    wall0 = 1_767_258_000 * 10**9
    ring1, ring2 = synthetic_ring(20, 1), synthetic_ring(30, 2)
    record(ring1, SampleGrid(0, RATE, wall0), tmp_path / "rec", lambda: wall0)
    record(ring2, SampleGrid(0, RATE, wall0 + 25 * 10**9), tmp_path / "rec", lambda: wall0)
    out = tmp_path / "x"
    assert main(["export", "--recordings", str(tmp_path / "rec"), "--from", iso(wall0 + 10 * 10**9),
                 "--to", iso(wall0 + 35 * 10**9), "--format", "wfdb", "-o", str(out)]) == 0  # fmt: skip
    d = wfdb.rdrecord(str(out), physical=False).d_signal[:, 0]
    assert d.size == 25 * RATE
    np.testing.assert_array_equal(d[: int(10 * RATE)], expected_digital(ring1, 80)[int(10 * RATE) :])
    assert (d[int(10 * RATE) : int(15 * RATE)] == -128).all()
    np.testing.assert_array_equal(d[int(15 * RATE) :], expected_digital(ring2, 80)[: int(10 * RATE)])
