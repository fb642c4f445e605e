"""journald sink: structured fields over journald's native protocol.

Why not systemd-python's ``journal.send``: when journald stops reading (stopped, overloaded), its
socket's datagram queue fills and ``sd_journal_sendv`` blocks inside C while *holding the GIL*: every
thread of the daemon, the sampler included, froze with it. The protocol is small (sd_journal_sendv(3),
systemd's "Native Journal Protocol"): one datagram per entry, ``KEY=value`` lines, and a
length-prefixed form for values with a newline. A Python socket releases the GIL while it waits, the
wait is bounded by ``timeout_s``, and only this sink's own thread waits (see ``SinkDispatcher``).

libsystemd also drops entries *silently* when the socket does not exist; here that raises, so the
dispatcher says once that journald is unreachable and again when it is back.
"""

from __future__ import annotations

import errno
import re
import socket
import struct

from ecgd.outputs.results import Record

IDENTIFIER = "ecgd"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
FIELD_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]*")


def encode_entry(fields: dict[str, str]) -> bytes:
    """One journal entry as the native protocol's datagram."""
    out = bytearray()
    for key, value in fields.items():
        if not FIELD_NAME.fullmatch(key):
            raise ValueError(f"invalid journal field name {key!r}")
        data = value.encode()
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalSink:
    name = "journald"

    def __init__(self, socket_path: str = JOURNAL_SOCKET, timeout_s: float = 1.0) -> None:
        self._socket_path = socket_path
        self._timeout_s = timeout_s
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(timeout_s)

    def write(self, record: Record) -> None:
        """Raises ``OSError`` when journald cannot be reached or does not read (reported once)."""
        fields = {
            "MESSAGE": record.message,
            "MESSAGE_ID": record.message_id,
            "PRIORITY": str(record.priority),
            "SYSLOG_IDENTIFIER": IDENTIFIER,
            "ECG_KIND": record.kind,
            **record.journal_fields(),
        }
        try:
            self._sock.sendto(encode_entry(fields), self._socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise OSError(errno.ENOENT, "journald is not running (no socket)", self._socket_path) from None
        except TimeoutError:
            raise OSError(
                errno.EAGAIN,
                f"journald is not reading its socket (stopped or overloaded) for {self._timeout_s:g} s",
                self._socket_path,
            ) from None

    def close(self) -> None:
        self._sock.close()
