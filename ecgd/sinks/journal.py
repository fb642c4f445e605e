"""journald sink: structured fields via systemd-python's ``journal.send``."""

from __future__ import annotations

from ecgd.results import MESSAGE_IDS, Record

IDENTIFIER = "ecgd"


class JournalSink:
    name = "journald"

    def __init__(self) -> None:
        from systemd import journal  # lazy: the demo and offline tools run without it

        self._send = journal.send

    def write(self, record: Record) -> None:
        """Raises ``OSError`` when journald cannot be reached (the dispatcher reports it once)."""
        self._send(
            record.message,
            MESSAGE_ID=MESSAGE_IDS[record.kind],
            PRIORITY=str(record.priority),
            SYSLOG_IDENTIFIER=IDENTIFIER,
            ECG_KIND=record.kind,
            **record.journal_fields(),
        )

    def close(self) -> None:
        pass
