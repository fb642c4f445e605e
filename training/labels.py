"""Window labels from MIT-BIH reference annotations.

The rule is fixed by the task definition so that training, validation and the tests agree:

1. ``AF`` if the rhythm annotation in force at the window centre is ``(AFIB`` or ``(AFL``;
2. else ``V`` if any beat in the window is V or E;
3. else ``S`` if any beat is A, a, J or S;
4. else ``N`` if every beat is N, L, R, e or j.

A window is excluded (label ``None``) when its beats include F, Q, paced (``/``, ``f``) or any other beat
type (including ``!``, ventricular flutter waves), or when it holds no beat at all. The exclusion is
checked first, so it also applies to AF windows: the literal reading of the rule; it drops 4 of 238 AF
windows in DS1 (a stray Q or F beat).
A beat belongs to a window when its annotation sample ``s`` satisfies ``start <= s < end``.

Only ``wfdb`` and numpy are needed here (no TensorFlow), so the tests run in the daemon's venv.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS: tuple[str, ...] = ("N", "S", "V", "AF")
ABNORMAL: tuple[str, ...] = ("S", "V", "AF")

# Beat codes: those WFDB's isqrs() counts as QRS complexes (wfdb.io.annotation.is_qrs). Everything else --
# rhythm '+', noise '~', artefact '|', blocked P 'x', ... -- is not a beat. Codes in none of the classes
# below (B, r, n, ?, and '!', the ventricular flutter wave) make a window "none of the above", so
# ventricular flutter is never scored as N.
BEAT_SYMBOLS = frozenset(
    ["N", "L", "R", "B", "A", "a", "J", "S", "V", "r", "F", "e", "j", "n", "E", "/", "f", "Q", "?", "!"]
)
N_BEATS = frozenset(["N", "L", "R", "e", "j"])
S_BEATS = frozenset(["A", "a", "J", "S"])
V_BEATS = frozenset(["V", "E"])
AF_RHYTHMS = frozenset({"(AFIB", "(AFL"})


@dataclass(frozen=True)
class Annotations:
    """The parts of a ``.atr`` file the labels need: beats and rhythm changes, sorted by sample."""

    beat_samples: np.ndarray  # int64
    beat_symbols: np.ndarray  # str
    rhythm_samples: np.ndarray  # int64
    rhythm_names: tuple[str, ...]  # e.g. "(AFIB", "(N"

    def rhythm_at(self, sample: int) -> str | None:
        """The rhythm annotation in force at ``sample`` (the last change at or before it)."""
        i = int(np.searchsorted(self.rhythm_samples, sample, side="right")) - 1
        return self.rhythm_names[i] if i >= 0 else None


def from_lists(
    samples: Sequence[int], symbols: Sequence[str], aux_notes: Sequence[str] | None = None
) -> Annotations:
    """Build :class:`Annotations` from raw annotation lists (as ``wfdb.rdann`` returns them)."""
    aux = list(aux_notes) if aux_notes is not None else [""] * len(samples)
    samples_arr = np.asarray(samples, dtype=np.int64)
    syms = np.asarray(list(symbols), dtype=object)
    order = np.argsort(samples_arr, kind="stable")
    samples_arr, syms = samples_arr[order], syms[order]
    aux = [aux[i] for i in order]
    is_beat = np.array([s in BEAT_SYMBOLS for s in syms], dtype=bool)
    rhythm_idx = [i for i, s in enumerate(syms) if s == "+" and (aux[i] or "").strip("\x00 ").startswith("(")]
    return Annotations(
        beat_samples=samples_arr[is_beat],
        beat_symbols=syms[is_beat].astype(str) if is_beat.any() else np.array([], dtype=str),
        rhythm_samples=samples_arr[rhythm_idx] if rhythm_idx else np.array([], dtype=np.int64),
        rhythm_names=tuple(aux[i].strip("\x00 ") for i in rhythm_idx),
    )


def read_annotations(record: str | Path, extension: str = "atr") -> Annotations:
    """Read a WFDB annotation file (``record`` without extension) with the ``wfdb`` package."""
    import wfdb  # local: only the training side and tests need it

    ann = wfdb.rdann(str(record), extension)
    return from_lists(ann.sample, ann.symbol, ann.aux_note)


def label_for_window(ann: Annotations, start: int, end: int) -> str | None:
    """The label of samples ``[start, end)``, or ``None`` when the window is excluded."""
    lo = int(np.searchsorted(ann.beat_samples, start, side="left"))
    hi = int(np.searchsorted(ann.beat_samples, end, side="left"))
    beats = set(ann.beat_symbols[lo:hi].tolist())
    return label_from_beats(beats, ann.rhythm_at((start + end) // 2))


def label_from_beats(beats: Iterable[str], rhythm: str | None) -> str | None:
    """Apply the priority rule to the set of beat codes in a window and the rhythm at its centre."""
    beats = set(beats)
    if not beats or beats - N_BEATS - S_BEATS - V_BEATS:
        return None  # no beats, or F, Q, paced or an unlisted beat type
    if rhythm in AF_RHYTHMS:
        return "AF"
    if beats & V_BEATS:
        return "V"
    if beats & S_BEATS:
        return "S"
    return "N"


def window_labels(ann: Annotations, n_samples: int, window: int, hop: int) -> list[tuple[int, str | None]]:
    """Labels of all whole windows ``[k*hop, k*hop + window)`` inside ``n_samples`` (the daemon's grid)."""
    return [(s, label_for_window(ann, s, s + window)) for s in range(0, n_samples - window + 1, hop)]
