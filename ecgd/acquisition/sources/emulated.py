"""An emulated PCF8591 on an emulated I2C bus, for tests and the demo.

It behaves like the datasheet says, not like a mock: the analog input is a real
ECG recording pushed through the AD8232 front-end model and sampled at the
instant of each conversion (on the injected clock), results are 8-bit, each
read returns the *previous* conversion (so the first byte after a control
byte is stale), every transfer costs bus time, and faults can be injected:
random EREMOTEIO, timed error bursts with any errno, and the bus device
vanishing (/dev/i2c-N gone). Electrodes can be detached: the AD8232 output
then sits at a rail and its LO+/LO− pin (emulated GPIO with edge events) is high.
"""

from __future__ import annotations

import errno as errnos
import random
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgd.acquisition.clock import Clock
from ecgd.acquisition.leadoff import Edge
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import Recording

VoltageInput = Callable[[int], float]  # monotonic ns → volts at the ADC pin


class RecordingPlayback:
    """A recording as a continuous-time voltage: front-end model applied once, linear interpolation."""

    def __init__(self, recording: Recording, frontend: AnalogFrontEnd, start_ns: int) -> None:
        # array('d'): indexing yields a Python float as fast as a list does, at 8 bytes a sample, not 32
        mv = recording.mv
        gaps = np.isnan(mv)  # a recording's missing samples (e.g. one of ecgd's own): the pin reads 0 V
        volts = frontend.mv_to_volts(frontend.filter_mv(np.where(gaps, 0.0, mv), recording.fs))
        volts[gaps] = 0.0
        self._volts = array("d", volts)
        self._n = len(self._volts)
        self._fs_per_ns = recording.fs / 1e9
        self._start_ns = start_ns
        self.duration_s = self._n / recording.fs

    def __call__(self, t_ns: int) -> float:
        pos = (t_ns - self._start_ns) * self._fs_per_ns
        i = int(pos)
        frac = pos - i
        i %= self._n
        a = self._volts[i]
        return a + (self._volts[(i + 1) % self._n] - a) * frac


@dataclass(frozen=True)
class BusFault:
    """Between ``start_ns`` and ``end_ns`` every transfer fails with ``errno``; ``gone`` also
    makes the bus device node disappear (opening it fails with ENOENT); ``hang`` blocks each
    transfer until the end instead (a slave holding SCL low), then fails with ETIMEDOUT."""

    start_ns: int
    end_ns: int
    errno: int = errnos.EREMOTEIO
    gone: bool = False
    hang: bool = False


class EmulatedPcf8591:
    """The chip: control register, four inputs, the pending conversion."""

    POWER_ON_BYTE = 0x80

    def __init__(self, inputs: list[VoltageInput], reference_volts: float = 3.3) -> None:
        if len(inputs) != 4:
            raise ValueError("the PCF8591 has four analog inputs")
        self.inputs = inputs
        self.lsb_volts = reference_volts / 256
        self.control = 0x00
        self.pending = self.POWER_ON_BYTE
        self.conversions = 0

    def write_control(self, value: int) -> None:
        if value & 0x30:
            raise OSError(errnos.EINVAL, "emulated PCF8591 models single-ended inputs only")
        self.control = value & 0xFF

    def read(self, t_ns: int) -> int:
        """Send the previous result; convert the selected input now (8-bit, saturating)."""
        out = self.pending
        volts = self.inputs[self.control & 0x03](t_ns)
        code = int(volts / self.lsb_volts)
        self.pending = 0 if code < 0 else 255 if code > 255 else code
        self.conversions += 1
        return out


class EmulatedI2c:
    """The adapter: hands out buses (like opening /dev/i2c-N) and holds the fault plan."""

    def __init__(
        self,
        chip: EmulatedPcf8591,
        clock: Clock,
        *,
        bus_number: int = 1,
        address: int = 0x48,
        latency_ns: int = 200_000,
        error_rate: float = 0.0,
        seed: int = 1,
    ) -> None:
        self.chip = chip
        self.clock = clock
        self.bus_number = bus_number
        self.address = address
        self.latency_ns = latency_ns
        self.error_rate = error_rate
        self.faults: list[BusFault] = []
        self.electrodes: EmulatedElectrodes | None = None  # the AD8232 on the board, if there is one
        self.reads = 0
        self.failed_reads = 0
        self.opens = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def inject(
        self,
        duration_s: float,
        errno: int = errnos.EREMOTEIO,
        *,
        gone: bool = False,
        hang: bool = False,
        after_s: float = 0.0,
    ) -> BusFault:
        start = self.clock.monotonic_ns() + int(after_s * 1e9)
        fault = BusFault(start, start + int(duration_s * 1e9), errno, gone, hang)
        self.faults.append(fault)
        return fault

    def active_fault(self, t_ns: int) -> BusFault | None:
        for fault in self.faults:
            if fault.start_ns <= t_ns < fault.end_ns:
                return fault
        return None

    def __call__(self, bus_number: int) -> EmulatedBus:
        """The bus factory the driver uses in place of ``smbus2.SMBus``."""
        fault = self.active_fault(self.clock.monotonic_ns())
        if bus_number != self.bus_number or (fault is not None and fault.gone):
            raise FileNotFoundError(errnos.ENOENT, "No such file or directory", f"/dev/i2c-{bus_number}")
        self.opens += 1
        return EmulatedBus(self)


class EmulatedBus:
    """What ``smbus2.SMBus`` offers the driver: byte writes and reads that take bus time."""

    def __init__(self, adapter: EmulatedI2c) -> None:
        self._adapter = adapter
        self._open = True

    def _transfer(self, addr: int) -> int:
        a = self._adapter
        if not self._open:
            raise OSError(errnos.EBADF, "Bad file descriptor")
        start = a.clock.monotonic_ns()
        a.clock.sleep_until(start + a.latency_ns)
        fault = a.active_fault(start)
        if fault is not None:
            if fault.hang:
                a.clock.sleep_until(fault.end_ns)
                raise OSError(errnos.ETIMEDOUT, "emulated I2C bus held low")
            raise OSError(errnos.ENODEV if fault.gone else fault.errno, "emulated I2C fault")
        if addr != a.address:
            raise OSError(errnos.ENXIO, "No such device or address")
        if a.error_rate and a._rng.random() < a.error_rate:
            raise OSError(errnos.EREMOTEIO, "Remote I/O error")
        return start

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        with self._adapter._lock:
            self._transfer(i2c_addr)
            self._adapter.chip.write_control(value)

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        a = self._adapter
        with a._lock:
            a.reads += 1
            try:
                start = self._transfer(i2c_addr)
            except OSError:
                a.failed_reads += 1
                raise
            return a.chip.read(start)

    def close(self) -> None:
        self._open = False


@dataclass(frozen=True)
class Detachment:
    """Electrode ``line`` ("LO+": the +IN electrode, "LO−": −IN) is off in [start_ns, end_ns)."""

    line: str
    start_ns: int
    end_ns: int


class EmulatedElectrodes:
    """The AD8232's electrodes. With DC leads-off detection a detached input is pulled to a supply
    rail: the output saturates (+IN off: near +Vs, −IN off: near GND) and its LO pin goes high,
    over exactly the same interval."""

    RAIL_SWING_VOLTS = 0.05  # how close the rail-to-rail output gets to each rail

    def __init__(self, signal: VoltageInput, clock: Clock, supply_volts: float = 3.3) -> None:
        self.signal = signal
        self.clock = clock
        self.supply_volts = supply_volts
        self.detachments: list[Detachment] = []

    def detach(self, line: str, duration_s: float, *, after_s: float = 0.0) -> Detachment:
        if line not in ("LO+", "LO−"):
            raise ValueError(f"line must be 'LO+' or 'LO−', got {line!r}")
        start = self.clock.monotonic_ns() + int(after_s * 1e9)
        d = Detachment(line, start, start + int(duration_s * 1e9))
        self.detachments.append(d)
        return d

    def off(self, line: str, t_ns: int) -> bool:
        return any(d.line == line and d.start_ns <= t_ns < d.end_ns for d in self.detachments)

    def __call__(self, t_ns: int) -> float:
        """The AD8232 OUTPUT pin."""
        if self.detachments:
            if self.off("LO+", t_ns):
                return self.supply_volts - self.RAIL_SWING_VOLTS
            if self.off("LO−", t_ns):
                return self.RAIL_SWING_VOLTS
        return self.signal(t_ns)


class EmulatedLeadOffLines:
    """LO+/LO− as GPIO inputs with edge detection, like the kernel's v2 uAPI: each edge stamped at
    its instant, numbered, and held in a buffer of ``buffer_size`` that drops the *oldest* edges when
    it overflows (so the newest edge always tells the current state)."""

    def __init__(self, electrodes: EmulatedElectrodes, lines: tuple[str, ...], buffer_size: int = 64) -> None:
        self.electrodes = electrodes
        self.lines = lines
        self.buffer_size = buffer_size
        self.closed = False
        self._seen_until_ns = electrodes.clock.monotonic_ns()
        self._seqno = 0

    def values(self) -> dict[str, bool]:
        now = self.electrodes.clock.monotonic_ns()
        return {line: self.electrodes.off(line, now) for line in self.lines}

    def read_edges(self) -> list[Edge]:
        if self.closed:
            raise OSError(errnos.EBADF, "Bad file descriptor")
        e = self.electrodes
        now = e.clock.monotonic_ns()
        instants = sorted(
            {t for d in e.detachments for t in (d.start_ns, d.end_ns) if self._seen_until_ns < t <= now}
        )
        self._seen_until_ns = now
        edges = []
        for t in instants:
            for line in self.lines:
                after = e.off(line, t)
                if after != e.off(line, t - 1):
                    self._seqno += 1
                    edges.append(Edge(t, line, after, self._seqno))
        return edges[-self.buffer_size :]

    def close(self) -> None:
        self.closed = True


def constant(volts: float) -> VoltageInput:
    return lambda _t: volts


def emulated_device(
    recording: Recording,
    frontend: AnalogFrontEnd,
    clock: Clock,
    *,
    channel: int = 2,
    bus_number: int = 1,
    address: int = 0x48,
    latency_ms: float = 0.2,
    error_rate: float = 0.0,
    seed: int = 1,
) -> EmulatedI2c:
    """A PCF8591 board with the AD8232 on ``channel``; the other inputs hold distinct fixed
    voltages (like the LDR/thermistor/pot of common modules), so a wrong channel shows."""
    inputs: list[VoltageInput] = [constant(v) for v in (0.4, 0.9, 2.1, 2.9)]
    playback = RecordingPlayback(recording, frontend, clock.monotonic_ns())
    electrodes = EmulatedElectrodes(playback, clock, frontend.adc_reference_volts)
    inputs[channel] = electrodes
    chip = EmulatedPcf8591(inputs, frontend.adc_reference_volts)
    i2c = EmulatedI2c(
        chip,
        clock,
        bus_number=bus_number,
        address=address,
        latency_ns=int(latency_ms * 1e6),
        error_rate=error_rate,
        seed=seed,
    )
    i2c.electrodes = electrodes
    return i2c


def expected_counts(recording: Recording, frontend: AnalogFrontEnd, times_s: np.ndarray) -> np.ndarray:
    """Codes the emulated chip converts at ``times_s`` after start (for tests and offline parity)."""
    volts = frontend.mv_to_volts(frontend.filter_mv(recording.mv, recording.fs))
    pos = np.asarray(times_s) * recording.fs
    idx = np.floor(pos).astype(np.int64)
    frac = pos - idx
    a = volts[idx % volts.size]
    b = volts[(idx + 1) % volts.size]
    return np.clip(np.floor((a + (b - a) * frac) / (frontend.adc_reference_volts / 256)), 0, 255).astype(
        np.int16
    )
