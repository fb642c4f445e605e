"""WFDB annotation files (MIT format, the ``.atr`` kind) that PhysioNet's tools read.

Written here, not with the ``wfdb`` package, for the same reason as the reader in
``records``: the daemon would pull pandas, SciPy and matplotlib for forty lines of
struct packing. ``wfdb.rdann`` and the C library's ``rdann``/``bxb`` read the output
(``tests/test_annotations.py`` reads it back with ``wfdb``).

The format (WFDB Applications Guide, ``annot(5)``) is a stream of 16-bit little-endian
words: the top 6 bits a code, the low 10 bits the samples since the previous
annotation. A longer interval goes in a ``SKIP`` word followed by a 32-bit interval
(high half first, "PDP-11" order); ``AUX`` (the length in the low bits) carries text
such as a rhythm ``(AFIB``; a ``SUB`` word gives a non-zero subtype, ``CHN``/``NUM`` words
are written only when those fields change (readers carry them over), as the C library
does. A zero word ends the file.

Annotations must come in time order (ties keep their order). ``AnnotationWriter``
writes as they come, so a recording can add beats, rhythm changes and alarm notes
while it runs; the end marker is written on ``close``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

# Annotation codes of WFDB's <ecgcodes.h>, by mnemonic symbol (the ones rdann prints).
CODES: dict[str, int] = {
    "N": 1,  # normal beat
    "L": 2,  # left bundle branch block beat
    "R": 3,  # right bundle branch block beat
    "a": 4,  # aberrated atrial premature beat
    "V": 5,  # premature ventricular contraction
    "F": 6,  # fusion of ventricular and normal beat
    "J": 7,  # nodal (junctional) premature beat
    "A": 8,  # atrial premature contraction
    "S": 9,  # premature or ectopic supraventricular beat
    "E": 10,  # ventricular escape beat
    "j": 11,  # nodal (junctional) escape beat
    "/": 12,  # paced beat
    "Q": 13,  # unclassifiable beat
    "~": 14,  # signal quality change
    "|": 16,  # isolated QRS-like artifact
    "s": 18,  # ST change
    "T": 19,  # T-wave change
    "*": 20,  # systole
    "D": 21,  # diastole
    '"': 22,  # comment annotation (text in aux)
    "=": 23,  # measurement annotation
    "p": 24,  # P-wave peak
    "B": 25,  # left or right bundle branch block
    "^": 26,  # non-conducted pacer spike
    "t": 27,  # T-wave peak
    "+": 28,  # rhythm change (rhythm in aux, e.g. "(AFIB")
    "u": 29,  # U-wave peak
    "?": 30,  # learning
    "!": 31,  # ventricular flutter wave
    "[": 32,  # start of ventricular flutter/fibrillation
    "]": 33,  # end of ventricular flutter/fibrillation
    "e": 34,  # atrial escape beat
    "n": 35,  # supraventricular escape beat
    "@": 36,  # link to external data (aux holds the URL)
    "x": 37,  # non-conducted P-wave (blocked APB)
    "f": 38,  # fusion of paced and normal beat
    "(": 39,  # waveform onset
    ")": 40,  # waveform end
    "r": 41,  # R-on-T premature ventricular contraction
}
_SKIP, _NUM, _SUB, _CHN, _AUX = 59, 60, 61, 62, 63
_MAX_DELTA = 1023  # what fits in the 10-bit field; longer intervals need a SKIP
_MAX_AUX = 255  # the C library keeps the length in one byte
_NOTE = 22  # the "## time resolution" definition is a comment at sample 0 (as the C library writes it)


class AnnotationError(ValueError):
    """An annotation that the MIT format cannot hold (unknown code, out of order, aux too long)."""


@dataclass(frozen=True)
class Annotation:
    """One annotation: ``sample`` is the index in the record's own samples."""

    sample: int
    symbol: str = "N"
    aux: str | None = None
    subtype: int = 0
    chan: int = 0
    num: int = 0


class AnnotationWriter:
    """Write annotations to ``path`` as they come, in time order; ``close`` ends the file.

    ``fs`` (optional) is recorded the way the WFDB library does when the annotation rate
    differs from the record's: a leading ``## time resolution: FS`` note, which ``rdann``
    reads as the file's sampling frequency and does not return as an annotation.
    """

    def __init__(self, path: str | Path, fs: float | None = None) -> None:
        self.path = Path(path)
        self._f: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._last_sample = 0
        self._chan = self._num = 0  # readers carry these over from the previous annotation
        self.count = 0
        if fs is not None:
            if not fs > 0:
                self.close()
                raise AnnotationError(f"sampling frequency {fs!r} must be > 0")
            self._put(0, _NOTE, f"## time resolution: {fs:g}")

    def write(self, ann: Annotation) -> None:
        code = CODES.get(ann.symbol)
        if code is None:
            raise AnnotationError(f"unknown annotation symbol {ann.symbol!r}; one of {''.join(CODES)}")
        if ann.sample < self._last_sample:
            raise AnnotationError(
                f"annotation at sample {ann.sample} comes after one at {self._last_sample}: "
                "annotations must be written in time order"
            )
        for name, value, low, high in (("subtype", ann.subtype, -128, 127), ("chan", ann.chan, 0, 255)):
            if not low <= value <= high:
                raise AnnotationError(f"{name} {value} is outside {low}..{high}")
        if not -128 <= ann.num <= 127:
            raise AnnotationError(f"num {ann.num} is outside -128..127")
        self._put(ann.sample, code, ann.aux, ann.subtype, ann.chan, ann.num)
        self.count += 1

    def write_all(self, anns: Iterable[Annotation]) -> None:
        for ann in anns:
            self.write(ann)

    def _put(
        self, sample: int, code: int, aux: str | None, subtype: int = 0, chan: int = 0, num: int = 0
    ) -> None:
        if self._f is None:
            raise AnnotationError(f"{self.path}: writer is closed")
        aux_bytes = b"" if aux is None else aux.encode("utf-8")
        if len(aux_bytes) > _MAX_AUX:
            raise AnnotationError(f"aux text of {len(aux_bytes)} bytes is longer than {_MAX_AUX}")
        out = bytearray()
        delta = sample - self._last_sample
        if delta > _MAX_DELTA:
            out += _word(_SKIP, 0)
            out += struct.pack("<HH", (delta >> 16) & 0xFFFF, delta & 0xFFFF)  # high half first
            delta = 0
        out += _word(code, delta)
        if subtype:  # readers reset the subtype to 0 for every annotation
            out += _word(_SUB, subtype & 0xFF)
        if chan != self._chan:
            out += _word(_CHN, chan)
            self._chan = chan
        if num != self._num:
            out += _word(_NUM, num & 0xFF)
            self._num = num
        if aux_bytes:
            out += _word(_AUX, len(aux_bytes)) + aux_bytes + (b"\0" if len(aux_bytes) % 2 else b"")
        self._f.write(out)
        self._last_sample = sample

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.write(b"\0\0")
            self._f.close()
            self._f = None

    def __enter__(self) -> AnnotationWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_annotations(path: str | Path, anns: Iterable[Annotation], fs: float | None = None) -> int:
    """Write a whole annotation file; returns how many annotations it holds."""
    with AnnotationWriter(path, fs) as w:
        w.write_all(anns)
        return w.count


def annotation_path(directory: str | Path, record_name: str, annotator: str = "ecgd") -> Path:
    """``DIR/RECORD.ANNOTATOR``, the name ``rdann RECORD ANNOTATOR`` looks for."""
    if not annotator or not annotator.replace("_", "").isalnum():
        raise AnnotationError(f"annotator name {annotator!r} must be letters, digits or '_'")
    return Path(directory) / f"{record_name}.{annotator}"


def _word(code: int, low: int) -> bytes:
    return struct.pack("<H", (code << 10) | (low & 0x3FF))
