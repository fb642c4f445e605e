"""Writing WFDB records: signal bytes and header text, as PhysioNet's tools read them.

Pure functions (no files): the recorder and ``ecgd export`` both use them. ecgd stores the
ADC's own codes, so a record holds exactly what was measured; gain and baseline in the
header turn them into millivolts at the electrodes (``wfdb.rdrecord`` ``p_signal``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ecgd.io.frontend import AnalogFrontEnd

# WFDB's invalid-sample value per format (the smallest digital value of the format).
INVALID = {80: -128, 16: -32768}
BYTES_PER_SAMPLE = {80: 1, 16: 2}
CODE_SHIFT = {80: 128, 16: 0}  # digital value = ADC code - shift


@dataclass(frozen=True)
class SignalSpec:
    """One signal's header fields: how ADC codes map to stored values and to millivolts."""

    fmt: int
    adc_gain: float  # digital units per mV
    baseline: int  # digital value of 0 mV
    adc_res: int
    adc_zero: int
    units: str = "mV"
    description: str = "ECG"

    @classmethod
    def for_frontend(cls, fe: AnalogFrontEnd, fmt: int = 80) -> SignalSpec:
        """Gain and baseline of the AD8232 + PCF8591 chain.

        The daemon's ``counts_to_mv`` takes a code's centre, ``(code + ½)·LSB``; WFDB's baseline is
        an integer, so a record reads back within half an ADC step (6 µV at the defaults) of it.
        """
        if fmt not in INVALID:
            raise ValueError(f"recording format must be 80 or 16, got {fmt}")
        adu_per_mv = fe.gain / (fe.lsb_volts * 1000.0)
        base = fe.offset_volts / fe.lsb_volts - 0.5 - CODE_SHIFT[fmt]
        return cls(fmt, adu_per_mv, math.floor(base + 0.5), fe.adc_bits, -CODE_SHIFT[fmt])

    def digital(self, counts: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """ADC codes → stored digital values; missing slots become WFDB's invalid value.

        Format 80 reserves -128 (code 0, the bottom rail) for "invalid": a sample taken at code 0 is
        stored as code 1 (both mean the amplifier is saturated), never as a missing sample.
        """
        shift, invalid = CODE_SHIFT[self.fmt], INVALID[self.fmt]
        d = np.asarray(counts, dtype=np.int32) - shift
        d = np.maximum(d, invalid + 1)
        return np.where(valid, d, invalid).astype(np.int32)

    def encode(self, digital: np.ndarray) -> bytes:
        if self.fmt == 80:
            return (np.asarray(digital, dtype=np.int32) + 128).astype(np.uint8).tobytes()
        return np.asarray(digital, dtype="<i2").tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        if self.fmt == 80:
            return np.frombuffer(data, dtype=np.uint8).astype(np.int32) - 128
        n = len(data) // 2 * 2
        return np.frombuffer(data[:n], dtype="<i2").astype(np.int32)

    def line(self, file_name: str, initial: int = 0, checksum: int = 0) -> str:
        return (
            f"{file_name} {self.fmt} {self.adc_gain:.10g}({self.baseline})/{self.units} {self.adc_res} "
            f"{self.adc_zero} {initial} {checksum} 0 {self.description}"
        )


def checksum(digital: np.ndarray, previous: int = 0) -> int:
    """WFDB's 16-bit signal checksum (sum of the samples, modulo 2^16, as a signed value)."""
    total = (previous + int(np.asarray(digital, dtype=np.int64).sum())) & 0xFFFF
    return total - 0x10000 if total >= 0x8000 else total


def wfdb_time(wall_ns: int) -> str:
    """``HH:MM:SS.mmm DD/MM/YYYY`` (UTC): the base time and date fields of a record line."""
    dt = datetime.fromtimestamp(wall_ns // 1_000_000_000, tz=timezone.utc)
    ms = (wall_ns // 1_000_000) % 1000
    return f"{dt:%H:%M:%S}.{ms:03d} {dt:%d/%m/%Y}"


def single_header(
    name: str,
    spec: SignalSpec,
    fs: float,
    start_wall_ns: int,
    stats: tuple[int, int, int],
    comments: list[str],
) -> str:
    """Header of a one-signal record in ``name.dat``; ``stats`` = (length, initial value, checksum)."""
    n, initial, check = stats
    lines = [f"{name} 1 {fs:g} {n} {wfdb_time(start_wall_ns)}", spec.line(f"{name}.dat", initial, check)]
    lines += [f"# {c}" for c in comments]
    return "\n".join(lines) + "\n"


def multi_header(name: str, fs: float, start_wall_ns: int, segments: list[tuple[str, int]]) -> str:
    """A multi-segment header: ``segments`` are (record name or ``~`` for a gap, length) in order."""
    total = sum(n for _, n in segments)
    lines = [f"{name}/{len(segments)} 1 {fs:g} {total} {wfdb_time(start_wall_ns)}"]
    lines += [f"{seg} {n}" for seg, n in segments]
    return "\n".join(lines) + "\n"
