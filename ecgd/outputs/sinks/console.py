"""A readable line per record on stdout, for interactive runs (the demo)."""

from __future__ import annotations

import sys
from typing import TextIO

from ecgd.outputs.results import Record


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def write(self, record: Record) -> None:
        f = record.fields
        if record.kind == "result":
            probs = f.get("probabilities")
            detail = " ".join(f"{k}={v:.2f}" for k, v in probs.items()) if probs else f.get("reason", "")
            hr = f.get("heart_rate_bpm")
            rate = f"HR {hr:>3.0f}" if hr is not None else "HR ---"
            line = (
                f"{f['window_start'][11:19]}–{f['window_end'][11:19]}  #{f['window_index']:<4} "
                f"{rate}  {f['label']:<12} {detail}"
            )
            if f.get("missing_samples"):
                line += f"  (missing {f['missing_samples']})"
        elif record.kind == "alarm":  # what a person at the bedside must see: say it first, loudly
            line = f"[ALARM {f['alarm_priority'].upper()}] {record.message}"
        else:
            line = f"[{record.kind}] {record.message}"
        self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        pass
