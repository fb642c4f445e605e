"""The AD8232's leads-off outputs (LO+, LO−) on GPIO: a second, independent witness.

With DC leads-off detection the AD8232 drives LO+ (or LO−) high while the +IN
(or −IN) electrode is off. The kernel timestamps each edge on CLOCK_MONOTONIC,
the clock the sampler stamps samples with, so a window can be checked against
the exact intervals an electrode was off. Nothing here runs in the sampling
loop: edges wait in the kernel's buffer until ``poll()`` reads them (the main
loop does every 0.1 s, and every window check does first, so a window never
misses an edge that happened before its last sample).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

LINE_NAMES = ("LO+", "LO−")  # the AD8232 pins; index 0 watches +IN, index 1 watches −IN
UNKNOWN = "lost events"  # the kernel's edge buffer overflowed: the state in between is unknown
_HISTORY = 4096  # closed intervals kept (far more than a ring's worth of plausible edges)


class LeadOffError(Exception):
    """The configured GPIO lines cannot be used (no chip, no such line, busy, no permission)."""


@dataclass(frozen=True)
class Edge:
    """One change of a LO pin: ``off`` is the new state; ``seqno`` counts edges per request."""

    t_ns: int
    line: str
    off: bool
    seqno: int


@dataclass(frozen=True)
class Transition:
    """A change to report: ``leads_off``, or ``leads_on`` with how long the electrode was off."""

    kind: str
    line: str
    t_ns: int
    off_s: float = 0.0


class LeadOffLines(Protocol):
    """What the monitor needs from the pins (GPIO through libgpiod, or the emulated board)."""

    def values(self) -> dict[str, bool]: ...

    def read_edges(self) -> list[Edge]: ...

    def close(self) -> None: ...


class LeadOffMonitor:
    """Off intervals per pin, and the question the worker asks: was an electrode off in [t0, t1]?"""

    def __init__(self, lines: LeadOffLines, now_ns: int) -> None:
        self._lines = lines
        self._lock = threading.Lock()
        self._closed = False
        self.failed: str | None = None  # why the pins can no longer be read (then nothing more is polled)
        self._off_since: dict[str, int | None] = {
            name: (now_ns if off else None) for name, off in lines.values().items()
        }
        self._intervals: deque[tuple[int, int, str]] = deque(maxlen=_HISTORY)
        self._last_seqno = 0  # the kernel numbers a request's edges from 1
        self._last_t_ns = now_ns
        off_at_start = [name for name, since in self._off_since.items() if since is not None]
        self._transitions = [Transition("leads_off", name, now_ns) for name in off_at_start]

    def poll(self) -> None:
        """Read the edges waiting in the kernel and update the intervals. A read that fails (the chip
        gone) is kept in ``failed`` for the daemon to report; it never reaches the caller, which may
        be the inference worker."""
        with self._lock:
            if self._closed or self.failed:
                return
            try:
                edges = self._lines.read_edges()
            except OSError as exc:
                self.failed = f"reading the LO pins failed: {exc.strerror or exc}"
                return
            for edge in edges:
                self._apply(edge)

    def _apply(self, edge: Edge) -> None:
        if edge.seqno != self._last_seqno + 1:
            # Edges were lost: nobody knows what the pins did in between, so treat it as off.
            self._intervals.append((self._last_t_ns, edge.t_ns, UNKNOWN))
        self._last_seqno, self._last_t_ns = edge.seqno, edge.t_ns
        since = self._off_since.get(edge.line)
        if edge.off and since is None:
            self._off_since[edge.line] = edge.t_ns
            self._transitions.append(Transition("leads_off", edge.line, edge.t_ns))
        elif not edge.off and since is not None:
            self._off_since[edge.line] = None
            self._intervals.append((since, edge.t_ns, edge.line))
            self._transitions.append(Transition("leads_on", edge.line, edge.t_ns, (edge.t_ns - since) / 1e9))

    def take_transitions(self) -> list[Transition]:
        """Changes not yet reported (the main loop reports them to journald)."""
        self.poll()
        with self._lock:
            out, self._transitions = self._transitions, []
        return out

    def off_now(self) -> list[str]:
        self.poll()
        with self._lock:
            return [name for name, since in self._off_since.items() if since is not None]

    def off_between(self, t0_ns: int, t1_ns: int) -> str | None:
        """Why [t0, t1] cannot be trusted (an electrode off for part of it), or None. An edge exactly at
        t0 or t1 overlaps nothing: the pin changed before the first or after the last sample."""
        self.poll()
        off: dict[str, int] = {}
        with self._lock:
            spans = [(s, e, name) for s, e, name in self._intervals if s < t1_ns and e > t0_ns]
            spans += [(s, t1_ns, name) for name, s in self._off_since.items() if s is not None and s < t1_ns]
        for s, e, name in spans:
            off[name] = off.get(name, 0) + min(e, t1_ns) - max(s, t0_ns)
        if not off:
            return None
        parts = [
            f"pin state unknown for {ns / 1e9:.2f} s (edge events lost)"
            if name == UNKNOWN
            else f"AD8232 {name} high for {ns / 1e9:.2f} s"
            for name, ns in off.items()
        ]
        return "leads off: " + ", ".join(parts) + " of this window"

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._lines.close()


class GpiodLeadOffLines:
    """LO+/LO− through libgpiod (``gpiod`` ≥ 2): both edges, kernel timestamps on CLOCK_MONOTONIC."""

    def __init__(self, chip: str, offsets: dict[str, int]) -> None:
        try:
            import gpiod
            from gpiod.line import Bias, Direction
            from gpiod.line import Edge as GpioEdge
        except ImportError:
            raise LeadOffError("reading LO+/LO- needs the gpiod package (pip install 'ecgd[gpio]')") from None
        wanted = ", ".join(f"{name} on line {off}" for name, off in offsets.items())
        if not gpiod.is_gpiochip_device(chip):
            raise LeadOffError(f"{chip} is not a GPIO chip device (wanted {wanted})")
        settings = gpiod.LineSettings(
            direction=Direction.INPUT, edge_detection=GpioEdge.BOTH, bias=Bias.AS_IS
        )
        try:
            self._request = gpiod.request_lines(
                chip, {tuple(offsets.values()): settings}, consumer="ecgd", event_buffer_size=64
            )
        except OSError as exc:
            raise LeadOffError(f"{chip}: cannot request {wanted}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise LeadOffError(f"{chip}: cannot request {wanted}: {exc}") from None
        self._names = {off: name for name, off in offsets.items()}
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE

    def values(self) -> dict[str, bool]:
        offsets = list(self._names)
        values = self._request.get_values(offsets)
        return {self._names[o]: bool(v) for o, v in zip(offsets, values, strict=True)}

    def read_edges(self) -> list[Edge]:
        out: list[Edge] = []
        while self._request.wait_edge_events(0):
            out += [edge_from_gpiod(e, self._names, self._rising) for e in self._request.read_edge_events()]
        return out

    def close(self) -> None:
        self._request.release()


def edge_from_gpiod(event, names: dict[int, str], rising) -> Edge:
    """A libgpiod ``EdgeEvent`` in our terms (LO pins are active high: rising = electrode off)."""
    return Edge(event.timestamp_ns, names[event.line_offset], event.event_type == rising, event.global_seqno)
