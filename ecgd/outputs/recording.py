"""Full disclosure: every sample the sampler takes, on disk as WFDB records, with annotations.

Layout (one directory per UTC day)::

    DIR/20261201/ecg_20261201.hea           the day as one multi-segment record (``~`` = gaps)
    DIR/20261201/ecg_20261201_203501.hea    one segment: segment_seconds long, or shorter at a restart
    DIR/20261201/ecg_20261201_203501.dat    the ADC's own codes, format 80 (or 16)
    DIR/20261201/ecg_20261201_203501.ecgd   its annotations (beats, rhythm, alarms, technical events)

The recorder is its own thread. It reads the sample ring every ``flush_seconds`` (the sampler never
waits on a disk), appends the new slots to the segment, fsyncs, then rewrites that segment's header
and the day's header (each replaced atomically), so a reader or a crash at any instant finds a valid
record up to the last flush. Missing slots are written as WFDB's invalid value in their place: time
never shifts. A start recovers segments left by a crash (true length from the file), then applies the
retention (oldest first). A full disk deletes the oldest segments, is reported once, and the monitor
goes on whatever happens here.
"""

from __future__ import annotations

import errno
import heapq
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ecgd.acquisition.ring import RingOverrun, SampleRing
from ecgd.acquisition.sampler import SampleGrid
from ecgd.io.annotations import Annotation, AnnotationWriter
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.recordings import ANNOTATOR, SEGMENT_RE, SegmentInfo, day_segments, list_segments
from ecgd.io.wfdb_write import BYTES_PER_SAMPLE, SignalSpec, checksum, multi_header, single_header

FILE_MODE = 0o640
DIR_MODE = 0o750
ANNOTATION_HOLD_S = 30.0  # annotations arrive late (a window's label ~12 s): kept this long, then sorted
DAY_NS = 86_400 * 10**9
KEEP_LOCATIONS = 1000  # segments of this run that locate() knows (~6 weeks of hourly segments)
SPACE_WANTED = 4 * 1024 * 1024  # free space a full disk is cleared to (a few hours of signal)

Report = Callable[[str, str, int, dict], None]  # (kind fault|lifecycle, message, priority, fields)


def _opt(default, help: str, *, lo=None, hi=None, nullable=False):
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "nullable": nullable})


@dataclass(frozen=True)
class RecordingSettings:
    directory: str | None = _opt(
        "/var/lib/ecgd/recordings",
        "where the WFDB recordings go (the unit's StateDirectory); null: no recording",
        nullable=True,
    )
    segment_seconds: float = _opt(
        3600.0, "one segment per this many seconds, aligned to UTC (a day always splits)", lo=10, hi=86400
    )
    flush_seconds: float = _opt(
        1.0,
        "samples are written and synced this often: a crash or power cut loses at most this",
        lo=0.1,
        hi=60,
    )
    signal_format: int = _opt(
        80, "WFDB format: 80 (8-bit, the PCF8591's codes; code 0 is stored as 1) or 16", lo=16, hi=80
    )
    max_days: float = _opt(30.0, "recordings older than this are deleted, oldest first (0: no limit)", lo=0)
    max_bytes: int = _opt(
        2 * 1024**3, "the recordings never take more than this, oldest deleted first (0: no limit)", lo=0
    )
    fsync: bool = _opt(True, "fsync each flush (a power cut then loses at most flush_seconds)")
    gap_note_seconds: float = _opt(
        0.05, "runs of missing samples at least this long get a comment annotation", lo=0, hi=3600
    )

    def problems(self) -> list[str]:
        return (
            []
            if self.signal_format in (16, 80)
            else [f"signal_format: must be 80 or 16, got {self.signal_format}"]
        )


# -- the store: files on disk -----------------------------------------------------------------------
def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` whole (write a temporary file, rename it over): a reader or a crash sees the
    old header or the new one, never half of one. A failed write leaves no temporary file behind."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(text.encode())
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_day_headers(day: Path, segments: list[SegmentInfo] | None = None) -> list[Path]:
    """(Re)write the day's multi-segment header(s) from its segments: one record per chain of
    segments in time order, ``~`` null segments for the gaps between runs. A chain breaks where the
    rate changes or a segment starts before the previous one ended (the wall clock was set back)."""
    segs = sorted(
        (s for s in (day_segments(day) if segments is None else segments) if s.n > 0),
        key=lambda s: (s.start_ns, s.path.name),
    )
    chains: list[list[SegmentInfo]] = []
    for s in segs:
        last = chains[-1][-1] if chains else None
        if (
            last is None
            or s.fs != last.fs
            or s.fmt != last.fmt
            or s.start_ns < last.end_ns - round(0.5e9 / s.fs)
        ):
            chains.append([s])
        else:
            chains[-1].append(s)
    written = []
    for i, chain in enumerate(chains):
        name = f"ecg_{day.name}" + (f"_{i + 1}" if i else "")
        # A variable-layout record (a 0-length layout segment first), the form in which WFDB allows
        # "~" null segments: the gaps between runs, or where the disk refused samples.
        layout = f"{name}_layout"
        sig = chain[0].path.with_suffix(".hea").read_text().splitlines()[1].split()
        sig[0], sig[5], sig[6] = "~", "0", "0"
        _atomic_write(day / f"{layout}.hea", f"{layout} 1 {chain[0].fs:g} 0\n{' '.join(sig)}\n")
        parts: list[tuple[str, int]] = [(layout, 0)]
        for j, s in enumerate(chain):
            if j:
                gap = round((s.start_ns - chain[j - 1].end_ns) * s.fs / 1e9)
                if gap > 0:
                    parts.append(("~", gap))
            parts.append((s.path.name, s.n))
        _atomic_write(day / f"{name}.hea", multi_header(name, chain[0].fs, chain[0].start_ns, parts))
        written += [day / f"{name}.hea", day / f"{layout}.hea"]
    for old in day.glob(f"ecg_{day.name}*.hea"):  # masters of chains that no longer exist
        if not SEGMENT_RE.match(old.stem) and old not in written:
            old.unlink(missing_ok=True)
    return written


def recover_segment(info: SegmentInfo) -> bool:
    """A segment whose header says less (or more) than its file holds, as a crash leaves it: cut the
    file to whole samples and rewrite the header with the true length and checksum."""
    hea = info.path.with_suffix(".hea")
    dat = info.path.with_suffix(".dat")
    lines = hea.read_text().splitlines()
    sig = lines[1].split()
    fmt = int(sig[1])
    bps = BYTES_PER_SAMPLE.get(fmt)
    if bps is None or not dat.exists():
        return False
    size = dat.stat().st_size
    n = size // bps
    changed = n != info.n or size % bps
    ann = info.path.with_suffix("." + ANNOTATOR)
    if ann.exists():
        with open(ann, "rb") as f:  # only its end: an annotation file of a busy hour is ~10 kB
            size_ann = f.seek(0, os.SEEK_END)
            f.seek(max(0, size_ann - 2))
            tail = f.read()
        if size_ann % 2 or tail != b"\0\0":  # a writer that never closed: end the file
            with open(ann, "ab") as f:
                if size_ann % 2:
                    f.write(b"\0")
                f.write(b"\0\0")
            changed = True
    if not changed:
        return False
    if size % bps:
        os.truncate(dat, n * bps)
    raw = dat.read_bytes()
    d = np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128 if fmt == 80 else np.frombuffer(raw, "<i2")
    sig[5] = str(int(d[0]) if n else 0)
    sig[6] = str(checksum(d))
    rec = lines[0].split()
    rec[3] = str(n)
    lines[0], lines[1] = " ".join(rec), " ".join(sig)
    _atomic_write(hea, "\n".join(lines) + "\n")
    info.n = n
    return True


def retention(
    directory: Path, max_days: float, max_bytes: int, now_ns: int, keep: Path | None, need_bytes: int = 0
) -> list[SegmentInfo]:
    """Delete the oldest segments until the limits hold (and ``need_bytes`` are free on the disk);
    never ``keep`` (the segment being written). Returns what was deleted.

    Age counts back from the newest recording, or from now if that is earlier: a wall clock set
    wrongly forward (no RTC, a bad NTP answer) must not make every recording look old and delete it.
    ``max_bytes`` still bounds the space whatever the clock says."""
    segs = [s for s in list_segments(directory) if s.path != keep]
    if segs:
        now_ns = min(now_ns, max(s.end_ns for s in segs))
    sizes = {s.path: s.nbytes() for s in segs}
    total = sum(sizes.values()) + (
        sum(p.stat().st_size for p in keep.parent.glob(keep.name + ".*")) if keep is not None else 0
    )
    deleted = []
    for s in segs:
        too_old = max_days > 0 and s.end_ns < now_ns - max_days * DAY_NS
        too_big = max_bytes > 0 and total > max_bytes
        too_full = need_bytes > 0 and shutil.disk_usage(directory).free < need_bytes
        if not (too_old or too_big or too_full):
            break
        for p in s.files():
            p.unlink(missing_ok=True)
        total -= sizes[s.path]
        deleted.append(s)
    for day in {s.path.parent for s in deleted}:
        if day_segments(day):
            write_day_headers(day)
        else:
            shutil.rmtree(day, ignore_errors=True)
    return deleted


# -- the recorder ---------------------------------------------------------------------------------
@dataclass
class _Segment:
    info: SegmentInfo
    fd: int
    end_seq: int  # exclusive: the slot at the segment boundary
    initial: int | None = None
    check: int = 0
    written_bytes: int = 0
    header_n: int = -1


@dataclass
class _AnnotationFile:
    """The annotation file of one segment, open while annotations for it may still arrive."""

    path: Path  # the record path (without extension)
    end_seq: int
    writer: Any = None
    queued: list[tuple[int, str, str | None]] = field(default_factory=list)
    last_sample: int = 0


class Recorder:
    """Writes the ring's samples as WFDB segments on its own thread; see the module docstring."""

    stall_after_s = 10.0  # a flush taking longer than this is a stalled disk (said once)

    def __init__(
        self,
        settings: RecordingSettings,
        frontend: AnalogFrontEnd,
        report: Report,
        *,
        wall_now: Callable[[], int] | None = None,
        version: str = "",
    ) -> None:
        assert settings.directory is not None
        self.settings = settings
        self.directory = Path(settings.directory)
        self.spec = SignalSpec.for_frontend(frontend, settings.signal_format)
        self.frontend = frontend
        self.report = report
        self.wall_now = wall_now or (time.time_ns)
        self.version = version
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: tuple[SampleRing, SampleGrid] | None = None
        self._pending_source: tuple[SampleRing, SampleGrid] | None = None
        self._next: int | None = None
        self._seg: _Segment | None = None
        self._segments: list[tuple[int, int, Path]] = []  # (first_seq, end_seq, path) of this run
        self._pending_ann: list[tuple[int, int, str, str | None]] = []  # heap (seq, order, symbol, aux)
        self._ann_order = 0
        self._open_ann: dict[Path, _AnnotationFile] = {}
        self._day_cache: tuple[Path, list[SegmentInfo]] | None = None
        self._gap_start: int | None = None
        self._down: str | None = None  # why writing fails now (reported once per episode)
        self.samples_written = 0
        self.samples_lost = 0
        self.annotations_written = 0
        self.annotations_late = 0
        self.deleted_segments = 0
        self._space_said = False
        self._disk_bytes = 0
        self._written_at_scan = 0
        self._step_failed = False
        self.heartbeat = 0.0

    # -- control (any thread) ----------------------------------------------------------------------
    def start(self, ring: SampleRing, grid: SampleGrid, from_seq: int | None = None) -> None:
        """Recover what a crash left, apply the retention, then record from ``from_seq`` (default:
        the grid's first slot)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        recovered = 0
        for info in list_segments(self.directory):
            try:
                recovered += recover_segment(info)
            except (OSError, ValueError, IndexError) as exc:
                self._say_once(f"cannot recover {info.path}: {exc}")
        for day in {s.path.parent for s in list_segments(self.directory)}:
            write_day_headers(day)
        deleted = retention(
            self.directory, self.settings.max_days, self.settings.max_bytes, self.wall_now(), None
        )
        self.deleted_segments += len(deleted)
        segs = list_segments(self.directory)
        total = sum(s.nbytes() for s in segs)
        self._disk_bytes, self._written_at_scan = total, 0
        self.report(
            "lifecycle",
            f"recording to {self.directory}: {len(segs)} segments kept ({total / 2**20:.1f} MiB), "
            f"{recovered} recovered after an unclean stop, {len(deleted)} deleted by retention "
            f"(max_days {self.settings.max_days:g}, max_bytes {self.settings.max_bytes})",
            6,
            {
                "event": "recording_started",
                "directory": str(self.directory),
                "segments": len(segs),
                "bytes": total,
                "recovered": recovered,
                "deleted": len(deleted),
            },
        )
        self._source = (ring, grid)
        first = grid.first_seq if from_seq is None else from_seq
        self._next = max(first, ring.next_seq - ring.capacity + 1)
        self._thread = threading.Thread(target=self._run, name="ecgd-recorder", daemon=True)
        self._thread.start()

    def attach(self, ring: SampleRing, grid: SampleGrid) -> None:
        """A new ring or grid (reload): what the old one holds is written, then a new segment starts."""
        with self._lock:
            self._pending_source = (ring, grid)

    def annotate(self, seq: int, symbol: str, aux: str | None = None) -> None:
        """An annotation at slot ``seq`` (beats, rhythm changes, alarms, technical events)."""
        with self._lock:
            self._ann_order += 1
            heapq.heappush(self._pending_ann, (seq, self._ann_order, symbol, aux))

    def locate(self, seq: int) -> tuple[str, int] | None:
        """The record (path without extension) and sample index that hold slot ``seq``: what an
        alarm record carries so that ``ecgd strip RECORD --at-sample N`` shows it."""
        with self._lock:
            for first, end, path in reversed(self._segments):
                if first <= seq < end:
                    return str(path), seq - first
        return None

    @property
    def next_seq(self) -> int | None:
        """The first slot not yet written."""
        return self._next

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stalled_s(self) -> float:
        """Seconds since the thread last began a flush beyond what a flush should take (0 if fine): a
        write hanging on a dying SD card. The monitor does not depend on it; a person should know."""
        if not self.heartbeat:
            return 0.0
        age = time.monotonic() - self.heartbeat
        return age if age > max(self.stall_after_s, 5 * self.settings.flush_seconds) else 0.0

    def status(self) -> str:
        """For ``STATUS=``: this run's hours and what the recordings hold on disk (retention's view)."""
        if self.stalled_s():
            return f"recording stalled for {self.stalled_s():.0f} s (disk not answering)"
        if self._down:
            return f"recording failing ({self._down})"
        on_disk = (
            self._disk_bytes
            + (self.samples_written - self._written_at_scan) * BYTES_PER_SAMPLE[self.spec.fmt]
        )
        hours = self.samples_written / 3600 / max(self._fs(), 1)
        return f"recording {hours:.1f} h, {on_disk / 2**20:.0f} MiB kept"

    # -- the thread ------------------------------------------------------------------------------------
    def _fs(self) -> float:
        return self._source[1].rate_hz if self._source else 0.0

    def _run(self) -> None:
        period = self.settings.flush_seconds
        while not self._stop.wait(period):
            self._guarded(self._step)
        self._guarded(self._step, final=True)

    @staticmethod
    def _guarded(step: Callable[..., None], **kw) -> None:
        try:
            step(**kw)
        except Exception as exc:  # even a failing report must not end the recording thread
            print(f"ecgd: recorder: {exc!r}", file=sys.stderr)

    def _step(self, final: bool = False) -> None:
        self.heartbeat = time.monotonic()
        self._step_failed = False
        try:
            with self._lock:
                new_source, self._pending_source = self._pending_source, None
            self._flush(final=final or new_source is not None)
            if new_source is not None:
                self._close_segment()
                self._gap_end(self._next or 0)
                self._source = new_source
                ring, grid = new_source
                self._next = max(grid.first_seq, ring.next_seq - ring.capacity + 1)
            if final:
                self._close_segment()
        except Exception as exc:  # the recorder must never take the monitor down
            self._say_once(f"{exc!r}")
        if self._down and not self._step_failed:
            self._recovered()  # a whole flush, data and headers, went through again

    def _flush(self, final: bool = False) -> None:
        assert self._source is not None and self._next is not None
        ring, grid = self._source
        stop = ring.next_seq
        while self._next < stop:
            if stop - self._next >= ring.capacity:  # we fell behind by a whole ring (a disk stall)
                lost_to = stop - ring.capacity // 2
                self._lose(self._next, lost_to)
                continue
            seg = self._segment_for(self._next, grid)
            if seg is None:
                return
            end = min(stop, seg.end_seq)
            try:
                block = ring.read(self._next, end)
            except RingOverrun:  # the writer lapped us while we copied: the capacity test handles it
                stop = ring.next_seq
                continue
            n = self._append(seg, block.counts, block.valid)
            self._note_gaps(self._next, block.valid[:n], grid.rate_hz)
            self._next += n
            if self._next < end:
                return  # the disk refused: the rest waits in the ring for the next flush
            if self._next >= seg.end_seq:
                self._sync(seg)
                self._release_annotations(final=False)
                self._close_segment()
        if self._seg is not None:
            self._sync(self._seg)
        self._release_annotations(final=final)

    def _segment_for(self, seq: int, grid: SampleGrid) -> _Segment | None:
        if self._seg is not None:
            return self._seg
        start_ns = grid.wall_ns(seq)
        seg_ns = round(self.settings.segment_seconds * 1e9)
        midnight = start_ns - start_ns % DAY_NS
        boundary = min(midnight + ((start_ns - midnight) // seg_ns + 1) * seg_ns, midnight + DAY_NS)
        end_seq = max(seq + 1, grid.first_slot_at_or_after(boundary - grid.wall_offset_ns))
        dt = datetime.fromtimestamp(start_ns // 10**9, tz=timezone.utc)
        day = self.directory / f"{dt:%Y%m%d}"
        name = f"ecg_{dt:%Y%m%d_%H%M%S}"
        try:
            day.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            i = 1
            while (day / f"{name}.hea").exists() or (day / f"{name}.dat").exists():
                i += 1
                name = f"ecg_{dt:%Y%m%d_%H%M%S}_{i}"
            path = day / name
            fd = os.open(
                path.with_suffix(".dat"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE
            )
            os.fchmod(fd, FILE_MODE)
        except OSError as exc:
            self._say_once(f"cannot create a segment in {day}: {exc.strerror}")
            return None
        info = SegmentInfo(path, start_ns, grid.rate_hz, 0, seq, self.spec.fmt)
        self._seg = _Segment(info, fd, end_seq)
        with self._lock:
            self._segments.append((seq, end_seq, path))
            del self._segments[:-KEEP_LOCATIONS]
        self._day_cache = None
        deleted = retention(
            self.directory, self.settings.max_days, self.settings.max_bytes, self.wall_now(), path
        )
        self.deleted_segments += len(deleted)
        self._disk_bytes = sum(s.nbytes() for s in list_segments(self.directory))  # once a segment
        self._written_at_scan = self.samples_written
        self._write_headers(self._seg)
        if self.settings.fsync:
            _fsync_dir(day)  # the new files' names survive a power cut too (fsync covers their data)
        return self._seg

    def _append(self, seg: _Segment, counts: np.ndarray, valid: np.ndarray) -> int:
        """Append a block; returns how many of its samples are in the file (all, unless the disk fails)."""
        d = self.spec.digital(counts, valid)
        data = memoryview(self.spec.encode(d))
        bps = BYTES_PER_SAMPLE[self.spec.fmt]
        done = 0
        freed = False
        while done < len(data):
            try:
                done += os.write(seg.fd, data[done:])
            except OSError as exc:
                if done % bps:  # never leave part of a sample behind
                    done -= done % bps
                    os.ftruncate(seg.fd, seg.written_bytes + done)
                if not freed and self._make_room(exc):
                    freed = True
                    continue
                self._account(seg, d[: done // bps])
                self._say_once(f"writing {seg.info.path}.dat: {exc.strerror}")
                return done // bps
        self._account(seg, d)
        return int(d.size)

    def _account(self, seg: _Segment, d: np.ndarray) -> None:
        if d.size == 0:
            return
        if seg.initial is None:
            seg.initial = int(d[0])
        seg.check = checksum(d, seg.check)
        seg.info.n += int(d.size)
        seg.written_bytes += int(d.size) * BYTES_PER_SAMPLE[self.spec.fmt]
        self.samples_written += int(d.size)

    def _make_room(self, exc: OSError) -> bool:
        """A full disk: delete the oldest segments (never the one being written) until there is
        room again; said once. True if something was deleted, so the write is worth retrying."""
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return False
        seg = self._seg
        deleted = retention(
            self.directory, 0, 0, self.wall_now(), seg.info.path if seg else None, SPACE_WANTED
        )
        self._day_cache = None
        self.deleted_segments += len(deleted)
        if deleted and not self._space_said:
            self._space_said = True
            freed = sum(s.n for s in deleted)
            self.report(
                "fault",
                f"recording: disk full; deleted the {len(deleted)} oldest segments ({freed} samples, from "
                f"{deleted[0].path.name}) to keep recording",
                4,
                {"event": "recording_disk_full", "deleted": len(deleted)},
            )
        return bool(deleted)

    def _sync(self, seg: _Segment) -> None:
        if seg.header_n == seg.info.n:
            return
        try:
            if self.settings.fsync:
                os.fsync(seg.fd)  # data first: a header never claims samples that are not on disk
            try:
                self._write_headers(seg)
            except OSError as exc:
                if not self._make_room(exc):
                    raise
                self._write_headers(seg)
        except OSError as exc:
            self._say_once(f"writing the header of {seg.info.path}: {exc.strerror}")

    def _write_headers(self, seg: _Segment) -> None:
        info = seg.info
        fe = self.frontend
        comments = [
            f"ecgd start_ns={info.start_ns} first_seq={info.first_seq} rate_hz={info.fs:.10g}",
            f"ecgd {self.version}: AD8232 gain {fe.gain:g} V/V, offset {fe.offset_volts:g} V, PCF8591 "
            f"{fe.adc_reference_volts:g} V, 8-bit codes; invalid samples = slots the sampler missed",
        ]
        text = single_header(
            info.path.name, self.spec, info.fs, info.start_ns, (info.n, seg.initial or 0, seg.check), comments
        )
        _atomic_write(info.path.with_suffix(".hea"), text)
        seg.header_n = info.n
        if info.n:
            day = info.path.parent
            if self._day_cache is None or self._day_cache[0] != day:
                self._day_cache = (day, [s for s in day_segments(day) if s.path != info.path])
            write_day_headers(day, [*self._day_cache[1], info])

    def _close_segment(self) -> None:
        seg, self._seg = self._seg, None
        if seg is None:
            return
        self._sync(seg)
        os.close(seg.fd)
        if seg.info.n == 0:  # nothing was ever written (disk full from the start): leave no empty record
            for p in seg.info.files():
                p.unlink(missing_ok=True)
            with self._lock:
                self._segments = [s for s in self._segments if s[2] != seg.info.path]

    def _lose(self, first: int, stop: int) -> None:
        """Slots that left the ring before they were written: a gap in the recording, not a shift."""
        self.samples_lost += stop - first
        self._close_segment()
        self._next = stop
        self._say_once(f"recording fell behind: {stop - first} samples lost to the recording")

    # -- gaps and annotations ----------------------------------------------------------------------
    def _note_gaps(self, first: int, valid: np.ndarray, fs: float) -> None:
        if valid.size == 0:
            return
        edges = np.flatnonzero(np.diff(np.concatenate(([1], valid.astype(np.int8), [1]))))
        # pairs: (start of an invalid run, start of the next valid one) relative to ``first``
        for a, b in zip(edges[0::2], edges[1::2], strict=False):
            start = self._gap_start if (a == 0 and self._gap_start is not None) else first + int(a)
            self._gap_start = None
            if b == valid.size:  # runs on into the next block
                self._gap_start = start
            else:
                self._gap_closed(start, first + int(b), fs)

    def _gap_end(self, seq: int) -> None:
        if self._gap_start is not None:
            self._gap_closed(self._gap_start, seq, self._fs() or 1.0)
            self._gap_start = None

    def _gap_closed(self, start: int, stop: int, fs: float) -> None:
        n = stop - start
        if n >= max(1, self.settings.gap_note_seconds * fs):
            self.annotate(start, '"', f"gap: {n} samples missing ({n / fs:.3f} s)")

    def _release_annotations(self, final: bool) -> None:
        """Annotations older than the hold (all of them at a stop) go to their segment's file, in order."""
        if self._next is None:
            return
        hold = 0 if final else int(ANNOTATION_HOLD_S * (self._fs() or 360))
        released = []
        with self._lock:
            while self._pending_ann and (final or self._pending_ann[0][0] < self._next - hold):
                released.append(heapq.heappop(self._pending_ann))
            segments = list(self._segments)
        touched = set()
        for seq, _, symbol, aux in released:
            target = next(((f, p) for f, e, p in reversed(segments) if f <= seq < e), None)
            if target is None:
                self.annotations_late += 1  # before this run's recording, or in a lost stretch
                continue
            first, path = target
            af = self._annotation_file(path)
            sample = seq - first
            if sample < af.last_sample:
                self.annotations_late += 1
                continue
            af.queued.append((sample, symbol, aux))
            af.last_sample = sample
            touched.add(path)
        for path in touched:
            self._write_annotations(self._open_ann[path])
        # a segment whose end is older than the hold gets no more annotations: end its file
        for path, af in list(self._open_ann.items()):
            if final or af.end_seq <= self._next - hold:
                if af.writer is not None:
                    af.writer.close()
                del self._open_ann[path]

    def _annotation_file(self, path: Path) -> _AnnotationFile:
        if path in self._open_ann:
            return self._open_ann[path]
        end = next(e for f, e, p in self._segments if p == path)
        af = self._open_ann[path] = _AnnotationFile(path, end)
        return af

    def _write_annotations(self, af: _AnnotationFile) -> None:
        try:
            if af.writer is None:
                ann = af.path.with_suffix("." + ANNOTATOR)
                fd = os.open(ann, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
                os.fchmod(fd, FILE_MODE)
                os.close(fd)
                af.writer = AnnotationWriter(ann)
            for sample, symbol, aux in af.queued:
                af.writer.write(Annotation(sample, symbol, aux))
                self.annotations_written += 1
            af.queued.clear()
            af.writer.flush()
        except (OSError, ValueError) as exc:
            self._say_once(f"annotations of {af.path}: {exc}")

    # -- reporting -------------------------------------------------------------------------------------
    def _say_once(self, what: str) -> None:
        self._step_failed = True
        if self._down is None:
            self.report(
                "fault",
                f"recording: {what}; monitoring goes on (results log and journald are unaffected)",
                3,
                {"event": "recording_failed"},
            )
        self._down = what

    def _recovered(self) -> None:
        what, self._down = self._down, None
        self.report("fault", f"recording: writing again (after: {what})", 5, {"event": "recording_recovered"})
