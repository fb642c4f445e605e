"""What the offline commands (``classify``, ``beats``, ``alarms``) share: settings, the recording and
the output, each failure with its sysexits code, so every command says the same thing the same way.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the commands import lazily: ``ecgd --help`` stays fast
    from ecgd.analysis.beat_labels import TemplateChange
    from ecgd.config import Settings
    from ecgd.io.records import Recording

EX_OK, EX_DATAERR, EX_NOINPUT, EX_CANTCREAT, EX_CONFIG = 0, 65, 66, 73, 78


class CommandError(Exception):
    """A command cannot go on: ``str()`` for stderr, ``code`` for the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def load_settings(path: Path | None) -> Settings:
    """The config file's settings (the defaults without one); a bad file is exit 78."""
    from ecgd import config as cfg

    try:
        return cfg.load(path) if path else cfg.Settings()
    except cfg.ConfigError as exc:
        raise CommandError(str(exc), EX_CONFIG) from None


def open_model(path: Path, metadata: Path | None = None):
    """The TFLite model and its metadata, checked: a bad one is exit 78."""
    from ecgd.analysis.model import ModelError, load_model

    try:
        return load_model(path, metadata)
    except ModelError as exc:
        raise CommandError(str(exc), EX_CONFIG) from None


def open_recording(record: str, channel: int, fs: float | None) -> Recording:
    """A WFDB, CSV or ``.npy`` recording: 66 when it is not there, 65 when it cannot be read."""
    from ecgd.io.records import RecordError, RecordNotFound, read_recording

    try:
        return read_recording(record, channel, fs)
    except RecordNotFound as exc:
        raise CommandError(str(exc), EX_NOINPUT) from None
    except (RecordError, OSError, ValueError) as exc:
        raise CommandError(str(exc), EX_DATAERR) from None


def say_template_changes(command: str, changes: Iterable[TemplateChange], fs: float) -> None:
    """Each time the patient's dominant beat changed for good, on stderr: the daemon's
    ``template_changed`` record, while stdout stays one JSON object a line."""
    for c in changes:
        print(f"{command}: at sample {c.seq} ({c.seq / fs:.1f} s) {c.describe()}", file=sys.stderr)


def print_json_lines(rows: Iterable[dict]) -> int:
    """One JSON object a line on stdout; a reader that goes away (``| head``) ends us quietly."""
    try:
        for row in rows:
            sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the pipe again when flushing stdout at exit: point it at /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EX_OK
