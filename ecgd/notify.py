"""systemd service notifications (READY, STATUS, WATCHDOG, RELOADING, STOPPING) that never wait.

``$NOTIFY_SOCKET`` is a datagram socket whose queue holds only ``net.unix.max_dgram_qlen``
datagrams (10 here). When the service manager stops reading, a blocking send waits; systemd-python's
``daemon.notify`` waits inside C *holding the GIL*, which froze every thread of the daemon, the
sampler included. So the datagrams are sent here, on a non-blocking socket, from the main loop:

- a ``STATUS=`` that cannot be sent is dropped (counted): the next one replaces it;
- ``READY=1``, ``RELOADING=1``, ``STOPPING=1`` and ``WATCHDOG=1`` are kept, in order, and retried by
  :meth:`Notifier.flush` on the following main-loop turns (counted as deferred), never by waiting.

The watchdog interval comes from ``WATCHDOG_USEC`` (pinged at half of it, as sd_watchdog_enabled(3)
recommends), honouring ``WATCHDOG_PID``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

KEPT = ("READY=", "RELOADING=", "STOPPING=", "WATCHDOG=")  # states a later turn must still deliver
PENDING_LIMIT = 16  # datagrams of kept states waiting; more means the manager is gone for good


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.enabled = bool(address)
        self._address = "\0" + address[1:] if address.startswith("@") else address  # abstract namespace
        self._sock: socket.socket | None = None
        if self.enabled:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        self._pending: list[str] = []  # datagrams of kept states, oldest first
        self.dropped = 0  # STATUS= datagrams given up (superseded by the next one)
        self.deferred = 0  # kept states that could not go at once and were retried later
        self.lost = 0  # kept states given up because more than PENDING_LIMIT were waiting
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if usec.isdigit() and ours else None

    @property
    def pending(self) -> list[str]:
        """Kept states not yet delivered (``READY=1`` …), oldest first."""
        return list(self._pending)

    def send(self, *states: str) -> None:
        """Send now if the socket takes it; otherwise keep what must arrive and drop the rest."""
        if self._sock is None:
            return
        kept = "\n".join(s for s in states if s.startswith(KEPT))
        if not self.flush():  # kept states must not overtake older ones still waiting
            self._defer(kept, states)
            return
        if not self._try("\n".join(states)):
            self._defer(kept, states)

    def flush(self) -> bool:
        """Retry the kept states in order; True when nothing is waiting any more."""
        while self._pending:
            if not self._try(self._pending[0]):
                return False
            self._pending.pop(0)
        return True

    def _defer(self, kept: str, states: tuple[str, ...]) -> None:
        if any(s.startswith("STATUS=") for s in states):
            self.dropped += 1
        if not kept or (kept == "WATCHDOG=1" and "WATCHDOG=1" in self._pending):
            return  # one waiting ping proves liveness as well as two
        self.deferred += 1
        if len(self._pending) >= PENDING_LIMIT:
            self._pending.pop(0)
            self.lost += 1
        self._pending.append(kept)

    def _try(self, payload: str) -> bool:
        assert self._sock is not None
        for _ in range(3):  # a send interrupted by one of our own signals is simply tried again
            try:
                self._sock.sendto(payload.encode(), self._address)
                return True
            except InterruptedError:
                continue
            except OSError:  # queue full (EAGAIN), or no manager listening (ECONNREFUSED, ENOENT)
                return False
        return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        self.send("RELOADING=1", "STATUS=reloading configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
