"""Rotating JSON Lines log: one line per record, flushed per line, created 0640.

Written here rather than with ``logging.handlers.RotatingFileHandler`` because we
need the file mode (health data: not world-readable), an exception on every
failed write (disk full must be noticed and reported, not swallowed by
``logging``), and a rotation that never splits a line.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecgd.outputs.results import Record

FILE_MODE = 0o640


class RotatingJsonLog:
    name = "log file"

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._size = 0

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            os.fchmod(fd, FILE_MODE)  # also tightens a file someone created with a looser mode
            self._fd = fd
            self._size = os.fstat(fd).st_size
        return self._fd

    def write(self, record: Record) -> None:
        data = record.json_line().encode()
        fd = self._open()
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            fd = self._open()
        written = 0
        try:
            while written < len(data):
                written += os.write(fd, data[written:])
        except OSError:
            if written:  # never leave half a line behind: cut it off again
                os.ftruncate(fd, self._size)
            raise
        self._size += len(data)

    def _rotate(self) -> None:
        self.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
