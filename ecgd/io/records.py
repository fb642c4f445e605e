"""Read recorded ECG for offline classification and the emulated device.

A small reader for the WFDB formats PhysioNet uses for MIT-BIH (212 and 16), plus
plain CSV and ``.npy``: the ``wfdb`` package would pull pandas, SciPy and
matplotlib into a daemon that needs forty lines of numpy.
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
    """Read one channel of a single-segment WFDB record in physical units (mV)."""
    try:
        lines = [ln.strip() for ln in header.read_text().splitlines()]
    except FileNotFoundError:
        raise RecordNotFound(f"{header}: no such record header") from None
    except OSError as exc:
        raise RecordError(f"{header}: cannot read header: {exc.strerror}") from exc
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise RecordError(f"{header}: empty header")
    rec = lines[0].split()
    try:
        n_sig = int(rec[1])
        fs = float(rec[2].split("/")[0]) if len(rec) > 2 else 250.0
        n_samples = int(rec[3]) if len(rec) > 3 else None
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{header}: bad record line {lines[0]!r}") from exc
    specs = [_parse_signal(header, ln) for ln in lines[1 : 1 + n_sig]]
    if not 0 <= channel < len(specs):
        raise RecordError(f"{header}: no channel {channel} (record has {len(specs)})")
    spec = specs[channel]
    group = [i for i, s in enumerate(specs) if s.file == spec.file]
    if any(specs[i].fmt != spec.fmt for i in group):
        raise RecordError(f"{header}: mixed formats in {spec.file} are not supported")
    raw = _read_samples(header.parent / spec.file, spec.fmt, len(group), n_samples)
    adu = raw[:, group.index(channel)]
    return Recording((adu - spec.baseline) / spec.gain, fs, rec[0], spec.description)


def _parse_signal(header: Path, line: str) -> _SignalSpec:
    f = line.split()
    try:
        fmt_field = f[1]
        if any(c in fmt_field for c in "x:+"):
            raise RecordError(
                f"{header}: format {fmt_field!r}: samples per frame, skew and byte offsets are not supported"
            )
        fmt = int(fmt_field)
        gain_field = f[2] if len(f) > 2 else "0"
        gain_text = gain_field.split("/")[0]
        baseline = None
        if "(" in gain_text:
            gain_text, base_text = gain_text.rstrip(")").split("(")
            baseline = int(base_text)
        gain = float(gain_text) or WFDB_DEFAULT_GAIN
        adc_zero = int(f[4]) if len(f) > 4 else 0
    except (IndexError, ValueError) as exc:
        raise RecordError(f"{header}: bad signal line {line!r}") from exc
    desc = " ".join(f[8:]) if len(f) > 8 else ""
    return _SignalSpec(f[0], fmt, gain, adc_zero if baseline is None else baseline, desc)


def _read_samples(dat: Path, fmt: int, n_sig: int, n_samples: int | None) -> np.ndarray:
    try:
        raw = np.fromfile(dat, dtype=np.uint8)
    except FileNotFoundError:
        raise RecordNotFound(f"{dat}: signal file not found") from None
    except OSError as exc:
        raise RecordError(f"{dat}: cannot read signal file: {exc.strerror}") from exc
    if fmt == 16:
        flat = raw[: raw.size // 2 * 2].view("<i2").astype(np.int32)
    elif fmt == 212:
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
    else:
        raise RecordError(f"{dat}: WFDB format {fmt} is not supported (212 and 16 are)")
    total = flat.size // n_sig
    if n_samples is not None:
        if total < n_samples:
            raise RecordError(f"{dat}: truncated: {total} of {n_samples} samples")
        total = n_samples
    return flat[: total * n_sig].reshape(total, n_sig)
