"""journald sink: structured fields via systemd-python's ``journal.send``.

libsystemd drops entries *silently* when journald's socket does not exist, so
the sink checks for it and raises: the dispatcher then says once that journald
is unreachable, and says so again when it is back.
"""

from __future__ import annotations

import errno
import os

from ecgd.outputs.results import Record

IDENTIFIER = "ecgd"
JOURNAL_SOCKET = "/run/systemd/journal/socket"


class JournalSink:
    name = "journald"

    def __init__(self, socket_path: str = JOURNAL_SOCKET) -> None:
        from systemd import journal  # lazy: the demo and offline tools run without it

        self._send = journal.send
        self._socket = socket_path

    def write(self, record: Record) -> None:
        """Raises ``OSError`` when journald cannot be reached (the dispatcher reports it once)."""
        if not os.path.exists(self._socket):
            raise OSError(errno.ENOENT, "journald is not running (no socket)", self._socket)
        self._send(
            record.message,
            MESSAGE_ID=record.message_id,
            PRIORITY=str(record.priority),
            SYSLOG_IDENTIFIER=IDENTIFIER,
            ECG_KIND=record.kind,
            **record.journal_fields(),
        )

    def close(self) -> None:
        pass
