"""PCF8591 8-bit ADC driver over an SMBus-like bus (``smbus2.SMBus`` or the emulated one).

Datasheet rules this driver follows:
- control byte ``0x40 | channel``: analog output enabled, which keeps the internal
  oscillator running between conversions (single-ended inputs, no auto-increment);
- a conversion starts on the acknowledge of a read address and its result is sent
  on the *next* read, so the first byte after the control byte is stale and is
  discarded here, and every later byte belongs to the previous read's instant
  (the sampler stamps it that way).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

CONTROL_ANALOG_OUTPUT_ENABLE = 0x40


class SMBusLike(Protocol):
    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None: ...

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int: ...

    def close(self) -> None: ...


def open_smbus(bus: int) -> SMBusLike:
    """The real bus; imported lazily so tests and the demo never need /dev/i2c-*."""
    from smbus2 import SMBus

    return SMBus(bus)


class Pcf8591:
    """One input channel of a PCF8591 at ``address`` on I2C bus ``bus``."""

    def __init__(
        self,
        bus: int = 1,
        address: int = 0x48,
        channel: int = 2,
        bus_factory: Callable[[int], SMBusLike] = open_smbus,
    ) -> None:
        if not 0 <= channel <= 3:
            raise ValueError(f"PCF8591 channel must be 0-3, got {channel}")
        self.bus_number = bus
        self.address = address
        self.channel = channel
        self._bus_factory = bus_factory
        self._bus: SMBusLike | None = None

    @property
    def control_byte(self) -> int:
        return CONTROL_ANALOG_OUTPUT_ENABLE | self.channel

    def open(self) -> None:
        """Open the bus, select the channel and discard the stale first byte."""
        self.close()
        bus = self._bus_factory(self.bus_number)
        try:
            bus.write_byte(self.address, self.control_byte)
            bus.read_byte(self.address)  # previous conversion (maybe of another channel): discard
        except OSError:
            bus.close()
            raise
        self._bus = bus

    def read(self) -> int:
        if self._bus is None:
            raise OSError(19, "PCF8591 is not open")  # ENODEV: the sampler reopens
        return self._bus.read_byte(self.address)

    def close(self) -> None:
        if self._bus is not None:
            try:
                self._bus.close()
            finally:
                self._bus = None
