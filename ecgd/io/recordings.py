"""Reading ecgd's own recordings back: which segment holds an instant, a stretch of signal across
segments (gaps stay gaps), and the annotations beside it.

``ecgd strip`` and ``ecgd export`` read through here; the recorder (``ecgd.outputs.recording``)
uses the same header parsing to recover, list and delete segments.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ecgd.io.records import RecordError, RecordNotFound
from ecgd.io.wfdb_write import BYTES_PER_SAMPLE, INVALID, SignalSpec

ANNOTATOR = "ecgd"
SEGMENT_RE = re.compile(r"^ecg_(\d{8})_(\d{6})(?:_(\d+))?$")


@dataclass
class SegmentInfo:
    """A segment on disk (parsed from its header)."""

    path: Path  # record path without extension
    start_ns: int
    fs: float
    n: int
    first_seq: int | None = None
    fmt: int = 80

    @property
    def end_ns(self) -> int:
        return self.start_ns + round(self.n * 1e9 / self.fs)

    def files(self) -> list[Path]:
        return [p for p in self.path.parent.glob(self.path.name + ".*") if p.stem == self.path.name]

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.files() if p.exists())


def parse_segment_header(hea: Path) -> SegmentInfo | None:
    """One of our segment headers (None if it is not one)."""
    if not SEGMENT_RE.match(hea.stem):
        return None
    try:
        lines = hea.read_text().splitlines()
        rec = lines[0].split()
        fs, n = float(rec[2]), int(rec[3])
        fmt = int(lines[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None
    words = [kv for ln in lines if ln.startswith("# ecgd ") for kv in ln[7:].split()]
    meta = dict(kv.split("=", 1) for kv in words if "=" in kv)
    if "start_ns" not in meta:
        return None
    first = int(meta["first_seq"]) if meta.get("first_seq", "None") != "None" else None
    return SegmentInfo(hea.with_suffix(""), int(meta["start_ns"]), fs, n, first, fmt)


def day_segments(day: Path) -> list[SegmentInfo]:
    return [s for h in day.glob("ecg_*_*.hea") if (s := parse_segment_header(h)) is not None]


def list_segments(directory: Path) -> list[SegmentInfo]:
    """Every segment under ``directory``, in time order."""
    out: list[SegmentInfo] = []
    if not directory.is_dir():
        return out
    for day in sorted(p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()):
        out += day_segments(day)
    out.sort(key=lambda s: (s.start_ns, s.path.name))
    return out


def segment_spec(info: SegmentInfo) -> SignalSpec:
    """Gain, baseline and format from a segment's signal line."""
    f = info.path.with_suffix(".hea").read_text().splitlines()[1].split()
    gain_text, _, rest = f[2].partition("(")
    baseline = int(rest.split(")")[0]) if rest else 0
    return SignalSpec(int(f[1]), float(gain_text), baseline, int(f[3]), int(f[4]))


# -- annotations --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    sample: int  # in the span (or record) it was read for
    symbol: str
    aux: str | None


_SYMBOLS: dict[int, str] | None = None


def read_annotations(path: Path) -> list[Note]:
    """An MIT-format annotation file (what ``ecgd.io.annotations`` writes, and PhysioNet's ``.atr``)."""
    global _SYMBOLS
    if _SYMBOLS is None:
        from ecgd.io.annotations import CODES

        _SYMBOLS = {v: k for k, v in CODES.items()}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    words = np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2")
    out: list[Note] = []
    t = 0
    i = 0
    while i < words.size:
        w = int(words[i])
        code, low = w >> 10, w & 0x3FF
        i += 1
        if w == 0:
            break
        if code == 59:  # SKIP: a 32-bit interval follows, high half first
            hi, lo = int(words[i]), int(words[i + 1])
            t += struct.unpack("<i", struct.pack("<I", (hi << 16) | lo))[0]
            i += 2
            continue
        if code == 63:  # AUX of the previous annotation
            n = low
            text = data[2 * i : 2 * i + n].split(b"\0")[0].decode("utf-8", "replace")
            i += (n + 1) // 2
            if out:
                out[-1] = Note(out[-1].sample, out[-1].symbol, text)
            continue
        if code in (60, 61, 62):  # NUM, SUB, CHN: not needed for drawing
            continue
        t += low
        if code == 0:  # a note such as "## time resolution" (NOTQRS): not an annotation
            out.append(Note(t, "", None))
            continue
        out.append(Note(t, _SYMBOLS.get(code, "?"), None))
    return [n for n in out if n.symbol]


# -- a stretch of signal ----------------------------------------------------------------------------
@dataclass
class Span:
    """``n`` slots from ``start_ns`` at ``fs``: ADC-derived digital values (``spec``), mV (NaN where no
    sample) and the annotations of the span (sample indices relative to its start)."""

    start_ns: int
    fs: float
    digital: np.ndarray
    valid: np.ndarray
    mv: np.ndarray
    spec: SignalSpec
    notes: list[Note]
    sources: list[Path]

    @property
    def n(self) -> int:
        return int(self.valid.size)

    def time_ns(self, i: np.ndarray | int) -> np.ndarray:
        return self.start_ns + np.round(np.asarray(i, dtype=np.float64) * 1e9 / self.fs).astype(np.int64)


def read_span(directory: Path, start_ns: int, stop_ns: int) -> Span:
    """The recorded signal between two instants (UTC ns), across segments; slots no segment holds are
    invalid, never invented. Raises ``RecordError`` if nothing was recorded then."""
    segs = [s for s in list_segments(directory) if s.end_ns > start_ns and s.start_ns < stop_ns and s.n]
    if not segs:
        raise RecordNotFound(f"{directory}: nothing recorded between {iso(start_ns)} and {iso(stop_ns)}")
    fs = segs[0].fs
    spec = segment_spec(segs[0])
    for s in segs[1:]:
        if s.fs != fs or segment_spec(s) != spec:
            raise RecordError(
                f"{s.path}: the rate or front-end settings change here; ask for the parts on either side"
            )
    # The span starts on the first segment's own slot at or after ``start_ns``: never between slots.
    s0 = segs[0]
    k0 = max(0, -(-(start_ns - s0.start_ns) * round(fs * 1000) // 10**12))
    first = s0.start_ns + round(k0 * 1e9 / fs)
    n = max(0, round((min(stop_ns, segs[-1].end_ns) - first) * fs / 1e9))
    digital = np.full(n, INVALID[spec.fmt], dtype=np.int32)
    notes: list[Note] = []
    for s in segs:
        offset = round((s.start_ns - first) * fs / 1e9)  # slot of the segment's first sample in the span
        a, b = max(0, -offset), min(s.n, n - offset)
        if b <= a:
            continue
        bps = BYTES_PER_SAMPLE[spec.fmt]
        with open(s.path.with_suffix(".dat"), "rb") as f:
            f.seek(a * bps)
            data = f.read((b - a) * bps)
        d = spec.decode(data)
        digital[offset + a : offset + a + d.size] = d
        for note in read_annotations(s.path.with_suffix("." + ANNOTATOR)):
            if a <= note.sample < b:
                notes.append(Note(note.sample + offset, note.symbol, note.aux))
    valid = digital != INVALID[spec.fmt]
    mv = np.where(valid, (digital - spec.baseline) / spec.adc_gain, np.nan)
    return Span(first, fs, digital, valid, mv, spec, notes, [s.path for s in segs])


def parse_time(text: str) -> int:
    """UTC instant from ``2026-12-01T20:46:05.250Z``, ``2026-12-01 20:46:05`` or ``@EPOCH`` → ns."""
    t = text.strip()
    if t.startswith("@"):
        return round(float(t[1:]) * 1e9)
    t = t.removesuffix("Z").replace(" ", "T")
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 2026-12-01T20:46:05, '2026-12-01 20:46:05' or @EPOCH"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def iso(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{(ns // 10**6) % 1000:03d}Z"
