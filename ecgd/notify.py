"""systemd service notifications (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

Thin on purpose: systemd-python's ``daemon.notify`` sends the datagram; the
watchdog interval comes from ``WATCHDOG_USEC`` (systemd-python has no helper),
and we ping at half of it, as sd_watchdog_enabled(3) recommends.
"""

from __future__ import annotations

import os


class Notifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notify = None
        if self.enabled:
            from systemd import daemon

            self._notify = daemon.notify
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        ours = not pid or pid == str(os.getpid())
        self.watchdog_interval_s: float | None = int(usec) / 2e6 if usec.isdigit() and ours else None

    def send(self, *states: str) -> None:
        if self._notify is None:
            return
        for _ in range(3):  # the C extension does not retry a send interrupted by our own signals
            try:
                self._notify("\n".join(states))
                return
            except InterruptedError:
                continue

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
