"""Read recorded ECG for offline classification, the emulated device and ecgd's own recordings.

A small WFDB reader for every signal format and header form PhysioNet's databases use
(formats 8, 16, 24, 32, 61, 80, 160, 212, 310, 311; byte offsets, so ``.mat`` signal files
too; multi-segment records, fixed or variable layout, with ``~`` null segments; LF or CRLF;
with or without date and time), plus plain CSV and ``.npy``: the ``wfdb`` package would pull
pandas, SciPy and matplotlib into a daemon that needs a page of numpy. The tests compare it
with ``wfdb.rdrecord`` on files of each form. Invalid samples (WFDB's "no sample") are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

WFDB_DEFAULT_GAIN = 200.0  # adu/mV when a header gives 0 (WFDB convention)


class RecordError(ValueError):
    """A recording that cannot be read, with the file and the reason."""


class RecordNotFound(RecordError):
    """The recording (or one of its files) does not exist."""


@dataclass(frozen=True)
class Recording:
    """One channel of ECG in millivolts at a known rate."""

    mv: np.ndarray
    fs: float
    name: str
    channel_name: str


@dataclass(frozen=True)
class _SignalSpec:
    file: str
    fmt: int
    gain: float
    baseline: int
    description: str
    byte_offset: int = 0
    initial: int = 0


# Bits per sample of each format, and its invalid-sample value (WFDB's "no sample here").
_FORMATS = {
    8: -128,
    16: -32768,
    24: -(1 << 23),
    32: -(1 << 31),
    61: -32768,
    80: -128,
    160: -32768,
    212: -2048,
    310: -512,
    311: -512,
}


def read_recording(path: str | Path, channel: int = 0, fs: float | None = None) -> Recording:
    """Read a WFDB record (``.hea`` or record path without extension), CSV or ``.npy`` file.

    CSV and ``.npy`` hold millivolts (one column, or the column ``channel``); their rate is ``fs``.
    """
    p = Path(path)
    if p.suffix in (".npy", ".csv") and not p.exists():
        raise RecordNotFound(f"{p}: no such file")
    if p.suffix == ".npy":
        return _from_array(np.load(p, allow_pickle=False), p, channel, fs)
    if p.suffix == ".csv":
        return _from_array(_read_csv(p), p, channel, fs)
    header = p if p.suffix == ".hea" else p.with_name(p.name + ".hea")
    return read_wfdb(header, channel)


def _read_csv(p: Path) -> np.ndarray:
    """Numbers, comma-separated, one row per line; an optional header line and ``#`` comments."""
    try:
        return np.loadtxt(p, delimiter=",", ndmin=2, comments="#")
    except ValueError:
        pass
    try:
        return np.loadtxt(p, delimiter=",", ndmin=2, skiprows=1, comments="#")
    except ValueError:
        raise RecordError(_csv_problem(p)) from None


def _csv_problem(p: Path) -> str:
    """Where a CSV stops being numbers, by the line number an editor shows (numpy counts data rows)."""
    columns = None
    with p.open(errors="replace") as f:
        for number, line in enumerate(f, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            cells = text.split(",")
            try:
                [float(c) for c in cells]
            except ValueError:
                if number == 1:
                    continue  # a header line
                return f"{p}, line {number}: not a number in {line.strip()!r}"
            if columns is not None and len(cells) != columns:
                return f"{p}, line {number}: {len(cells)} columns where the lines before have {columns}"
            columns = len(cells)
    return f"{p}: not a CSV of numbers"


def _from_array(data: np.ndarray, p: Path, channel: int, fs: float | None) -> Recording:
    if fs is None:
        raise RecordError(f"{p}: the sample rate of a CSV or .npy file must be given (--fs)")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or not 0 <= channel < data.shape[1]:
        raise RecordError(f"{p}: no channel {channel} in data of shape {data.shape}")
    return Recording(data[:, channel].copy(), float(fs), p.stem, f"column {channel}")


def read_wfdb(header: Path, channel: int = 0) -> Recording:
    """Read one channel of a WFDB record (single- or multi-segment) in physical units (mV).

    Slots holding WFDB's invalid-sample value (a gap, e.g. in ecgd's own recordings) are NaN.
    """
    lines = _header_lines(header)
    rec = lines[0].split()
    try:
        name, _, n_seg_text = rec[0].partition("/")
        n_sig = int(rec[1])
        fs = float(rec[2].split("/")[0].split("(")[0]) if len(rec) > 2 else 250.0
        n_samples = int(rec[3]) if len(rec) > 3 else None
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{header}: bad record line {lines[0]!r}") from exc
    if n_seg_text:
        return _read_multi_segment(header, lines, name, int(n_seg_text), fs, channel)
    specs = [_parse_signal(header, ln) for ln in lines[1 : 1 + n_sig]]
    if len(specs) < n_sig:
        raise RecordError(f"{header}: {n_sig} signals declared, {len(specs)} signal lines")
    if not 0 <= channel < len(specs):
        raise RecordError(f"{header}: no channel {channel} (record has {len(specs)})")
    spec = specs[channel]
    group = [i for i, s in enumerate(specs) if s.file == spec.file]
    if any(specs[i].fmt != spec.fmt or specs[i].byte_offset != spec.byte_offset for i in group):
        raise RecordError(f"{header}: mixed formats in {spec.file} are not supported")
    if spec.file == "~":  # a null signal (a layout header, or a signal absent from this record)
        return Recording(np.full(n_samples or 0, np.nan), fs, name, spec.description)
    initial = [specs[i].initial for i in group]
    raw = _read_samples(header.parent / spec.file, spec.fmt, len(group), n_samples, spec.byte_offset, initial)
    adu = raw[:, group.index(channel)]
    mv = (adu - spec.baseline) / spec.gain
    invalid = adu == _FORMATS[spec.fmt]
    if invalid.any() and spec.fmt != 8:  # difference-coded format 8 has no invalid value
        mv[invalid] = np.nan
    return Recording(mv, fs, name, spec.description)


def _header_lines(header: Path) -> list[str]:
    try:
        text = header.read_bytes().decode("latin-1")
    except FileNotFoundError:
        raise RecordNotFound(f"{header}: no such record header") from None
    except OSError as exc:
        raise RecordError(f"{header}: cannot read header: {exc.strerror}") from exc
    lines = [ln.strip() for ln in text.splitlines()]  # LF or CRLF
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise RecordError(f"{header}: empty header")
    return lines


def _read_multi_segment(
    header: Path, lines: list[str], name: str, n_seg: int, fs: float, channel: int
) -> Recording:
    """Segments in order; ``~`` null segments and a variable layout's 0-length first segment."""
    segs = []
    for ln in lines[1 : 1 + n_seg]:
        f = ln.split()
        try:
            segs.append((f[0], int(f[1])))
        except (IndexError, ValueError) as exc:
            raise RecordError(f"{header}: bad segment line {ln!r}") from exc
    if len(segs) < n_seg:
        raise RecordError(f"{header}: {n_seg} segments declared, {len(segs)} segment lines")
    wanted = None
    if segs and segs[0][1] == 0 and segs[0][0] != "~":  # variable layout: channels by name
        layout = read_header_signals(header.parent / f"{segs[0][0]}.hea")
        if not 0 <= channel < len(layout):
            raise RecordError(f"{header}: no channel {channel} (record has {len(layout)})")
        wanted = layout[channel]
        segs = segs[1:]
    parts, description = [], wanted or ""
    for seg, n in segs:
        if seg == "~":
            parts.append(np.full(n, np.nan))
            continue
        seg_header = header.parent / f"{seg}.hea"
        ch = channel
        if wanted is not None:
            names = read_header_signals(seg_header)
            if wanted not in names:
                parts.append(np.full(n, np.nan))  # this segment does not have that signal
                continue
            ch = names.index(wanted)
        part = read_wfdb(seg_header, ch)
        if part.fs != fs:
            raise RecordError(f"{seg_header}: rate {part.fs:g} Hz in a {fs:g} Hz multi-segment record")
        description = description or part.channel_name
        mv = part.mv[:n]
        if mv.size < n:
            raise RecordError(f"{seg_header}: {mv.size} samples, the record header says {n}")
        parts.append(mv)
    mv = np.concatenate(parts) if parts else np.zeros(0)
    return Recording(mv, fs, name, description)


def read_header_signals(header: Path) -> list[str]:
    """The signal descriptions of a single-segment header, in order."""
    lines = _header_lines(header)
    try:
        n_sig = int(lines[0].split()[1])
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{header}: bad record line {lines[0]!r}") from exc
    return [_parse_signal(header, ln).description for ln in lines[1 : 1 + n_sig]]


def _parse_signal(header: Path, line: str) -> _SignalSpec:
    f = line.split()
    try:
        fmt_field = f[1]
        fmt_text, plus, offset_text = fmt_field.partition("+")
        if any(c in fmt_text for c in "x:"):
            raise RecordError(
                f"{header}: format {fmt_field!r}: several samples per frame and skew are not supported"
            )
        fmt = int(fmt_text)
        offset = int(offset_text) if plus else 0
        gain_field = f[2] if len(f) > 2 else "0"
        gain_text = gain_field.split("/")[0]
        baseline = None
        if "(" in gain_text:
            gain_text, base_text = gain_text.rstrip(")").split("(")
            baseline = int(base_text)
        gain = float(gain_text) or WFDB_DEFAULT_GAIN
        adc_zero = int(f[4]) if len(f) > 4 else 0
        initial = int(f[5]) if len(f) > 5 else adc_zero
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{header}: bad signal line {line!r}") from exc
    if fmt not in _FORMATS:
        raise RecordError(
            f"{header}: WFDB format {fmt} is not supported ({', '.join(map(str, sorted(_FORMATS)))} are)"
        )
    desc = " ".join(f[8:]) if len(f) > 8 else ""
    return _SignalSpec(f[0], fmt, gain, adc_zero if baseline is None else baseline, desc, offset, initial)


def _read_samples(
    dat: Path, fmt: int, n_sig: int, n_samples: int | None, offset: int = 0, initial: list[int] | None = None
) -> np.ndarray:
    try:
        raw = np.fromfile(dat, dtype=np.uint8, offset=offset)
    except FileNotFoundError:
        raise RecordNotFound(f"{dat}: signal file not found") from None
    except OSError as exc:
        raise RecordError(f"{dat}: cannot read signal file: {exc.strerror}") from exc
    except ValueError:  # an offset beyond the end of the file
        raw = np.zeros(0, np.uint8)
    flat = _decode(raw, fmt)
    total = flat.size // n_sig
    if n_samples is not None:
        if total < n_samples:
            raise RecordError(f"{dat}: truncated: {total} of {n_samples} samples")
        total = n_samples
    frames = flat[: total * n_sig].reshape(total, n_sig)
    if fmt == 8:  # first differences from each signal's initial value
        start = np.asarray(initial or [0] * n_sig, dtype=np.int64)
        frames = start + np.cumsum(frames, axis=0, dtype=np.int64)
    return frames


def _decode(raw: np.ndarray, fmt: int) -> np.ndarray:
    """Bytes → digital values, in file order (frames interleaved)."""
    if fmt in (8, 80):
        v = raw.astype(np.int32)
        return v - 256 * (v > 127) if fmt == 8 else v - 128
    if fmt in (16, 61, 160):
        words = raw[: raw.size // 2 * 2].view("<u2" if fmt != 61 else ">u2").astype(np.int32)
        return words - 32768 if fmt == 160 else words - 65536 * (words > 32767)
    if fmt == 24:
        b = raw[: raw.size // 3 * 3].reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return v - (1 << 24) * (v >= 1 << 23)
    if fmt == 32:
        return raw[: raw.size // 4 * 4].view("<i4").astype(np.int64)
    if fmt == 212:
        # Two 12-bit samples in three bytes; an odd last sample is stored in the first two bytes.
        tail = raw.size % 3 == 2
        padded = np.concatenate([raw, np.zeros(1, np.uint8)]) if tail else raw[: raw.size // 3 * 3]
        triples = padded.reshape(-1, 3).astype(np.int32)
        first = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
        second = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
        flat = np.empty(triples.shape[0] * 2, dtype=np.int32)
        flat[0::2], flat[1::2] = first, second
        if tail:
            flat = flat[:-1]
        flat[flat > 2047] -= 4096  # 12-bit two's complement
        return flat
    # 310 and 311: three 10-bit samples in four bytes; a short last group holds one or two
    n_groups, rest = divmod(raw.size, 4)
    padded = np.concatenate([raw, np.zeros(4 - rest, np.uint8)]) if rest else raw
    q = padded.reshape(-1, 4).astype(np.int32)
    if fmt == 310:
        w0 = q[:, 0] | (q[:, 1] << 8)
        w1 = q[:, 2] | (q[:, 3] << 8)
        trio = ((w0 >> 1) & 0x3FF, (w1 >> 1) & 0x3FF, ((w0 >> 11) & 0x1F) | (((w1 >> 11) & 0x1F) << 5))
        keep = {0: 0, 2: 1, 3: 2}.get(rest, 0)  # bytes of a short group → samples in it
    else:
        w = q[:, 0] | (q[:, 1] << 8) | (q[:, 2] << 16) | (q[:, 3] << 24)
        trio = (w & 0x3FF, (w >> 10) & 0x3FF, (w >> 20) & 0x3FF)
        keep = {0: 0, 2: 1, 3: 2}.get(rest, 0)
    flat = np.stack(trio, axis=1).reshape(-1)
    if rest:
        flat = flat[: n_groups * 3 + keep]
    return flat - 1024 * (flat > 511)
