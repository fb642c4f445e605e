"""MIT-BIH DS1 records, noise records and labelled window indices for training.

Signals are read with :func:`ecgd.io.records.read_recording` (the daemon's own reader) so that training sees
exactly the millivolts the offline classifier sees; labels come from :mod:`training.labels`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgd.io.records import Recording, read_recording
from training.labels import LABELS, Annotations, label_for_window, read_annotations

FS = 360
WINDOW = 3600  # 10 s at 360 Hz

# The 22 records of the inter-patient training set DS1 of de Chazal et al. (IEEE TBME 51(7), 2004).
_DS1_NAMES = "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230"
DS1: tuple[str, ...] = tuple(_DS1_NAMES.split())
PACED: tuple[str, ...] = ("102", "104", "107", "217")

# Patient-wise folds, fixed by hand so that the two AF records (201, 203) and the S-rich records (209, 118,
# 220, 223) fall in different folds; 201 and 202 are one subject but 202 (DS2) is not here.
FOLDS: tuple[tuple[str, ...], ...] = (
    ("203", "209", "106", "101", "122"),
    ("201", "220", "116", "112", "230"),
    ("118", "119", "108", "114"),
    ("223", "215", "109", "115", "124"),
    ("207", "205", "208"),
)


@dataclass(frozen=True)
class Record:
    """One DS1 record: lead MLII in mV plus its annotations."""

    name: str
    path: Path  # record path without extension
    channel: int  # index of MLII in the file (1 for record 114, else 0)
    mv: np.ndarray
    ann: Annotations


def mlii_channel(path: Path) -> int:
    """The channel index of lead MLII (record 114 stores it second)."""
    for ch in (0, 1):
        if read_recording(path, channel=ch).channel_name.strip() == "MLII":
            return ch
    raise ValueError(f"{path}: no MLII lead")


def load_record(data_dir: str | Path, name: str) -> Record:
    """Read one MIT-BIH record's MLII lead and reference annotations."""
    path = Path(data_dir) / "mitdb" / name
    ch = mlii_channel(path)
    rec: Recording = read_recording(path, channel=ch)
    if rec.fs != FS:
        raise ValueError(f"{path}: expected {FS} Hz, got {rec.fs}")
    return Record(name, path, ch, rec.mv.astype(np.float32), read_annotations(path))


def load_records(data_dir: str | Path, names: tuple[str, ...] = DS1) -> dict[str, Record]:
    return {n: load_record(data_dir, n) for n in names}


def load_noise(data_dir: str | Path) -> dict[str, np.ndarray]:
    """nstdb ``bw`` and ``ma`` noise, both channels concatenated, in mV with the mean removed."""
    out = {}
    for name in ("bw", "ma"):
        path = Path(data_dir) / "nstdb" / name
        chans = [read_recording(path, channel=c).mv for c in (0, 1)]
        sig = np.concatenate([c - c.mean() for c in chans]).astype(np.float32)
        out[name] = sig
    return out


def window_index(
    records: dict[str, Record], hop: int, window: int = WINDOW, margin: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All labelled windows: (record names, start samples, class indices), excluded windows dropped.

    ``margin`` keeps windows that far from the record ends, so augmentation can read context around them.
    """
    names, starts, ys = [], [], []
    for rec in records.values():
        n = rec.mv.size
        for s in range(margin, n - window - margin + 1, hop):
            lab = label_for_window(rec.ann, s, s + window)
            if lab is None:
                continue
            names.append(rec.name)
            starts.append(s)
            ys.append(LABELS.index(lab))
    return np.array(names), np.array(starts, dtype=np.int64), np.array(ys, dtype=np.int64)
