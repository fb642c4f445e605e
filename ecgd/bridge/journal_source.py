"""The monitor's records, read where they are already durable: the journal, from a persisted cursor.

The journal is the bridge's backlog: whatever the broker has not acknowledged is simply read
again after a restart. The cursor file holds the cursor of the newest entry whose message (and every
one before it) the broker acknowledged, plus the vitals derived so far; it is replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class CursorFile:
    """``{"cursor": …, "vitals": …}`` written with write-temp, fsync, rename: never half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise OSError(f"cursor file {self.path} is unreadable ({exc}); remove it to start over") from None
        return data if isinstance(data, dict) else {}

    def save(self, cursor: str, vitals: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"cursor": cursor, "vitals": vitals}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


JOURNAL_DIRS = (Path("/var/log/journal"), Path("/run/log/journal"))


def unreadable_journal(dirs: tuple[Path, ...] = JOURNAL_DIRS) -> str | None:
    """Why no system journal file can be read by this user, or None if one can.

    The reader silently skips files it may not open: without this check a bridge missing its
    systemd-journal group would run, connected and healthy, and publish nothing.
    """
    files = [f for d in dirs if d.is_dir() for f in d.glob("*/system*.journal")]
    if any(os.access(f, os.R_OK) for f in files):
        return None
    if not files:
        return f"no system journal in {' or '.join(map(str, dirs))} (is systemd-journald running?)"
    return f"cannot read {files[0]} (is this user in group systemd-journal?)"


class JournalSource:
    """Entries matching ``matches`` (``FIELD=value`` terms), oldest first, after ``cursor``."""

    def __init__(self, matches: list[str], cursor: str | None, start_at: str = "boot") -> None:
        from systemd import journal  # lazy: the ward desk and config checks run without it

        self._journal = journal
        self.reader = journal.Reader()
        for term in matches:
            self.reader.add_match(term)
        self._first: dict[str, Any] | None = None
        self.cursor_missing = False  # the cursor's own entry is gone: what followed it may be lost too
        if cursor:
            self.reader.seek_cursor(cursor)
            # The first entry at or after the cursor: the cursor's own entry (acknowledged: skip it),
            # or, when that one rotated away or does not match, the first one still to publish.
            entry = self.reader.get_next()
            if entry and entry.get("__CURSOR") != cursor:
                self._first = entry
                self.cursor_missing = not self._exists(cursor)
        elif start_at == "boot":
            self.reader.this_boot()
            self.reader.seek_head()
        elif start_at == "oldest":
            self.reader.seek_head()
        else:
            self.reader.seek_tail()
            self.reader.get_previous()  # seek_tail + get_next would return the last entry again

    def _exists(self, cursor: str) -> bool:
        """Is the cursor's entry still in the journal (matching or not)? Only asked once, at start."""
        probe = self._journal.Reader()
        try:
            probe.seek_cursor(cursor)
            entry = probe.get_next()
            return bool(entry) and entry.get("__CURSOR") == cursor
        finally:
            probe.close()

    def next_entry(self) -> dict[str, Any] | None:
        """The next entry, or None when there is none yet."""
        entry, self._first = self._first or self.reader.get_next(), None
        return entry or None

    def entries(self, limit: int) -> Iterator[dict[str, Any]]:
        """Up to ``limit`` entries that are there now."""
        for _ in range(limit):
            entry = self.next_entry()
            if entry is None:
                return
            yield entry

    def wait(self, timeout_s: float) -> None:
        """Until the journal changes or ``timeout_s`` passes."""
        self.reader.wait(timeout_s)

    def close(self) -> None:
        self.reader.close()
