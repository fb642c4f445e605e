"""ADC sources: what the sampler reads one conversion at a time."""

from __future__ import annotations

from typing import Protocol


class AdcSource(Protocol):
    """One ADC input. ``read`` returns the byte the device sends now (see ``Pcf8591``
    for which instant it belongs to) and raises ``OSError`` on bus or device errors."""

    def open(self) -> None: ...

    def read(self) -> int: ...

    def close(self) -> None: ...
