"""The beat stream: QRS detector → beats with RR intervals → per-window stats and the live heart rate.

The daemon and ``ecgd beats`` feed this the same samples in the same blocks, so the beats,
heart rates and RR figures offline are what the monitor reported. Pure: no threads, no clock;
"now" is the newest sample fed.

An RR interval is *measured* only between two consecutive beats of one unbroken stretch. A
stretch breaks at a run of missing samples longer than the detector bridges (``gap_max_s``), at
samples lost before they were read, and where the signal was judged unreadable (quality gate,
leads off): there the detector is reset, since its thresholds learned from noise. The first
beat after a break has no RR (``None``): the interval across it is not known.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from ecgd.analysis.gaps import missing_runs
from ecgd.analysis.qrs import QrsDetector, QrsSettings

BLOCK_S = 0.2  # the daemon feeds the ring's new samples this often; offline runs feed blocks this long


@dataclass(frozen=True)
class BeatSettings:
    """The live heart rate; YAML ``beats.<field>`` (beside the detector's ``QrsSettings``)."""

    # live HR = 60000 / mean of the last 4 measured RR (AAMI EC13 disclosure). 8 would be steadier but
    # takes 11 s to follow 80 -> 40 bpm (4: 6.6 s; monitors: 6-8 s): bench/heart_rate.py.
    live_rr_count: int = 4
    live_min_rr: int = 2  # fewer measured RR since the last break: the live HR is not shown
    # The open interval since the last beat counts as the newest RR once it is longer than the mean,
    # so the shown rate falls while beats stop; after this long without a beat it is not shown at all.
    live_timeout_s: float = 6.0

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.live_rr_count <= 64:
            found.append(f"live_rr_count: {self.live_rr_count!r} must be 1 to 64")
        if not 1 <= self.live_min_rr <= self.live_rr_count:
            found.append(
                f"live_min_rr: {self.live_min_rr!r} must be 1 to live_rr_count ({self.live_rr_count})"
            )
        if not (math.isfinite(self.live_timeout_s) and 1.0 <= self.live_timeout_s <= 60.0):
            found.append(f"live_timeout_s: {self.live_timeout_s!r} must be 1 to 60 s")
        return found


@dataclass(frozen=True)
class Beat:
    seq: int  # R peak, on the sampler's grid
    rr_ms: float | None  # from the previous beat; None: first beat of a stretch (not measured)
    amplitude_mv: float
    width_ms: float | None


@dataclass(frozen=True)
class BeatArrays:
    """New beats as arrays, what the alarm engine takes (NaN where the beat stage measured nothing)."""

    seq: np.ndarray  # int64 R-peak seqs
    rr_ms: np.ndarray
    amplitude_mv: np.ndarray
    width_ms: np.ndarray

    @staticmethod
    def of(beats: list[Beat]) -> BeatArrays:
        def column(name: str) -> np.ndarray:
            values = (getattr(b, name) for b in beats)
            return np.fromiter((np.nan if v is None else v for v in values), np.float64, len(beats))

        seq = np.fromiter((b.seq for b in beats), dtype=np.int64, count=len(beats))
        return BeatArrays(seq, column("rr_ms"), column("amplitude_mv"), column("width_ms"))


@dataclass(frozen=True)
class WindowBeats:
    """Beat statistics of one window: the result record's beat fields."""

    beat_count: int | None
    heart_rate_bpm: float | None
    heart_rate_reason: str | None
    rr_count: int  # measured RR intervals with both beats in the window
    rr_min_ms: float | None
    rr_max_ms: float | None
    rr_mean_ms: float | None
    rr_rmssd_ms: float | None  # root mean square of successive differences (≥ 2 adjacent measured RR)

    def fields(self) -> dict[str, float | int | str | None]:
        return {
            "heart_rate_bpm": _r(self.heart_rate_bpm, 1),
            "heart_rate_reason": self.heart_rate_reason,
            "beat_count": self.beat_count,
            "rr_count": self.rr_count,
            "rr_min_ms": _r(self.rr_min_ms, 1),
            "rr_max_ms": _r(self.rr_max_ms, 1),
            "rr_mean_ms": _r(self.rr_mean_ms, 1),
            "rr_rmssd_ms": _r(self.rr_rmssd_ms, 1),
        }

    @staticmethod
    def none(reason: str) -> WindowBeats:
        """No beat figures for this window (unreadable, not acquired, ...), with why."""
        return WindowBeats(None, None, reason, 0, None, None, None, None)


@dataclass(frozen=True)
class LiveRate:
    """The heart rate a person reads now (``STATUS=``)."""

    bpm: float | None
    rr_used: int  # RR intervals in the mean (the open interval included when it counts)
    since_beat_s: float | None  # how long ago the last beat was (None: no beat in this stretch)
    reason: str | None  # why there is no number

    def text(self) -> str:
        if self.bpm is not None:
            return f"HR {self.bpm:.0f} bpm"
        return f"HR --- ({self.reason})"


class BeatTracker:
    """Feeds the detector block by block and keeps the recent beats and breaks.

    ``keep_s`` bounds the memory (the daemon passes its ring's length): beats and breaks older
    than that are forgotten.
    """

    def __init__(
        self,
        fs: float,
        qrs: QrsSettings | None = None,
        settings: BeatSettings | None = None,
        first_seq: int = 0,
        keep_s: float = 120.0,
    ) -> None:
        settings = settings or BeatSettings()
        qrs = qrs or QrsSettings()
        problems = settings.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.fs = float(fs)
        self.settings = settings
        self.detector = QrsDetector(fs, qrs)
        self.delay_samples = self.detector.delay_samples
        self._confirm_samples = confirmation_delay(self.detector, qrs)
        self._gap_max = max(0, round(qrs.gap_max_s * self.fs))
        self._keep = max(1, round(keep_s * self.fs))
        self.beats: deque[Beat] = deque()
        self._breaks: deque[tuple[int, int]] = deque()  # [lo, hi): no RR may span one
        self._run_start: int | None = None  # a missing run still open at the end of the last block
        self._stretch_start = first_seq  # the last break's end: the live HR uses RR after it only
        self.fed_until = first_seq
        self._origin = first_seq
        self._last_beat: int | None = None  # kept when old beats are forgotten (for "no beat for N s")
        self._unreadable: list[list[int]] = []  # unreadable windows since the last readable one
        self._x, self._ok, self._x0 = np.zeros(0), np.zeros(0, bool), first_seq  # recent input
        self.detector.reset(first_seq)

    # -- input ----------------------------------------------------------------------------------
    def feed(self, first_seq: int, mv: np.ndarray, valid: np.ndarray | None = None) -> list[Beat]:
        """The next block of samples (electrode mV); returns the beats it confirmed, in time order.

        A block that does not continue the last one (samples lost before they were read) breaks
        the stretch there and restarts the detector.
        """
        if first_seq < self.fed_until:
            raise ValueError(f"block starts at seq {first_seq}, already fed up to {self.fed_until}")
        if first_seq > self.fed_until:
            self.lost(self.fed_until, first_seq)
        x = np.asarray(mv, dtype=np.float64)
        ok = np.ones(x.size, bool) if valid is None else np.asarray(valid, dtype=bool)
        self._note_gaps(first_seq, ok)
        self._remember(x, ok)
        new = self._detect(first_seq, x, ok)
        self._forget()
        return new

    def lost(self, lo: int, hi: int) -> None:
        """Samples ``[lo, hi)`` never reached us: a break, and the detector restarts at ``hi``."""
        self._break(lo, hi)
        self.detector.reset(hi)
        self.fed_until = hi
        self._run_start = None
        self._x, self._ok, self._x0 = np.zeros(0), np.zeros(0, bool), hi

    def unreadable(self, first_seq: int, stop_seq: int) -> None:
        """A window judged unreadable (quality gate, leads off): no RR spans it, and the live rate
        restarts after it. Beats detected inside stay in the history, but a window's figures never
        come from an unreadable window (the caller gives ``WindowBeats.none``)."""
        self._unreadable.append([first_seq, max(stop_seq, self.fed_until)])
        self._stretch_start = max(self._stretch_start, self.fed_until)

    def readable(self, first_seq: int, stop_seq: int) -> tuple[int, list[Beat]] | None:
        """A window judged readable. After unreadable ones, the bad stretch ended by ``first_seq``:
        the detector restarts there (its thresholds learned from the bad stretch) and runs again over
        the samples it keeps, so this window's beats come from a detector that never saw it.

        Returns ``(from_seq, beats)`` when it did: the beats from ``from_seq`` on were replaced by
        ``beats``. None when there was nothing to redo.
        """
        if not self._unreadable:
            return None
        start = max(first_seq, self._x0)
        for br in self._unreadable:  # the bad part lay before this window: no break inside it
            br[1] = min(br[1], start)
            self._breaks.append((br[0], max(br[1], br[0] + 1)))
        self._unreadable.clear()
        self._stretch_start = max([start] + [hi for lo, hi in self._breaks if lo >= start])
        kept = [b for b in self.beats if b.seq < start]
        self.beats = deque(kept)
        if kept:
            self._last_beat = kept[-1].seq
        elif self._last_beat is not None and self._last_beat >= start:
            self._last_beat = None  # the last beat before start is older than the beats kept
        self.detector.reset(start)
        i = start - self._x0
        x, ok = self._x[i:], self._ok[i:]
        self.fed_until = start
        return start, self._detect(start, x, ok)

    # -- output ---------------------------------------------------------------------------------
    def confirmed_until(self) -> int:
        """Every ordinary beat before this seq has been reported; the detector's search-back may still
        add one it missed, up to ``final_until``. What the alarms and the beat labels wait for."""
        return self.fed_until - self._confirm_samples

    def final_until(self) -> int:
        """Every beat before this seq has been reported (the detector's bounded delay)."""
        return self.fed_until - self.delay_samples

    def window(self, first_seq: int, stop_seq: int) -> WindowBeats:
        """Figures of the beats in ``[first_seq, stop_seq)`` (call once ``final_until() >= stop_seq``)."""
        seqs = [b.seq for b in self.beats if first_seq <= b.seq < stop_seq]
        rrs = [
            (b.seq, b.rr_ms)
            for b in self.beats
            if first_seq <= b.seq < stop_seq
            and b.rr_ms is not None
            and b.seq - self._rr_samples(b) >= first_seq
        ]
        rr = np.array([r for _, r in rrs])
        count = len(seqs)
        if rr.size < 2:
            reason = f"fewer than 2 measured RR intervals in the window ({count} beats, {rr.size} RR)"
            mean = float(rr.mean()) if rr.size else None
            return WindowBeats(count, None, reason, int(rr.size), _min(rr), _max(rr), mean, None)
        # successive differences only between adjacent measured intervals (beat i-1 → i → i+1)
        beat_index = {s: i for i, s in enumerate(seqs)}
        idx = np.array([beat_index[s] for s, _ in rrs])
        adjacent = np.diff(idx) == 1
        diffs = np.diff(rr)[adjacent]
        rmssd = float(np.sqrt(np.mean(diffs**2))) if diffs.size >= 1 else None
        mean = float(rr.mean())
        return WindowBeats(count, 60000.0 / mean, None, int(rr.size), _min(rr), _max(rr), mean, rmssd)

    def live(self, leads_off: bool = False, unreadable: bool = False) -> LiveRate:
        """The live heart rate now: the mean of the last ``live_rr_count`` measured RR since the last
        break; the open interval since the last beat joins them once it is longer than their mean.

        No number while leads are off, while the newest judged window is ``unreadable``, or when no
        beat came for ``live_timeout_s`` (which is said first: beats stopping must not read as a
        technical problem).
        """
        s = self.settings
        if leads_off:
            return LiveRate(None, 0, None, "leads off")
        last = self._last_beat
        since_s = (self.fed_until - (self._origin if last is None else last)) / self.fs
        if since_s > s.live_timeout_s:
            return LiveRate(None, 0, since_s if last is not None else None, f"no beat for {since_s:.0f} s")
        if unreadable:
            return LiveRate(None, 0, since_s, "signal unreadable")
        rr = [b.rr_ms for b in self.beats if b.seq >= self._stretch_start and b.rr_ms is not None]
        rr = rr[-s.live_rr_count :]
        if len(rr) < s.live_min_rr or last is None:
            return LiveRate(None, len(rr), since_s, "too few beats yet")
        mean = float(np.mean(rr))
        known = self.fed_until - self.delay_samples  # no beat before this is still to be reported
        open_ms = max(0, known - last) / self.fs * 1000.0
        if open_ms > mean:
            rr = [*rr[1:], open_ms] if len(rr) == s.live_rr_count else [*rr, open_ms]
            mean = float(np.mean(rr))
        return LiveRate(60000.0 / mean, len(rr), since_s, None)

    # -- internals ------------------------------------------------------------------------------
    def _detect(self, first_seq: int, x: np.ndarray, ok: np.ndarray) -> list[Beat]:
        found = self.detector.process(first_seq, x, ok)
        self.fed_until = first_seq + x.size
        order = np.argsort(found.seq, kind="stable")
        return [
            self._add(int(found.seq[i]), float(found.amplitude_mv[i]), float(found.width_ms[i]))
            for i in order
        ]

    def _remember(self, x: np.ndarray, ok: np.ndarray) -> None:
        """Keep the last ``keep_s`` of input, for ``readable`` to run the detector again."""
        self._x = np.concatenate([self._x, x])
        self._ok = np.concatenate([self._ok, ok])
        extra = self._x.size - self._keep
        if extra > self._keep // 4:  # trim in chunks, not every block
            self._x, self._ok = self._x[extra:], self._ok[extra:]
            self._x0 += extra

    def _rr_samples(self, b: Beat) -> int:
        return round((b.rr_ms or 0.0) * self.fs / 1000.0)

    def _add(self, seq: int, amplitude: float, width: float) -> Beat:
        prev = self.beats[-1].seq if self.beats else None
        rr = None
        if prev is not None and prev < seq and not self._broken(prev, seq):
            rr = (seq - prev) * 1000.0 / self.fs
        beat = Beat(seq, rr, amplitude, None if math.isnan(width) else width)
        if self.beats and seq <= self.beats[-1].seq:  # out of order (never expected): keep time order
            items = sorted([*self.beats, beat], key=lambda b: b.seq)
            self.beats = deque(items)
        else:
            self.beats.append(beat)
        self._last_beat = max(seq, self._last_beat or seq)
        return beat

    def _broken(self, a: int, b: int) -> bool:
        """A break lies between beats ``a`` and ``b``."""
        return any(lo < b and hi > a for lo, hi in (*self._breaks, *self._unreadable))

    def _break(self, lo: int, hi: int) -> None:
        if hi <= lo:
            hi = lo + 1
        self._breaks.append((lo, hi))
        self._stretch_start = max(self._stretch_start, hi)

    def _note_gaps(self, first_seq: int, ok: np.ndarray) -> None:
        """Runs of missing samples longer than the detector bridges are breaks (joined across blocks)."""
        if ok.all() and self._run_start is None:
            return
        starts, ends = missing_runs(first_seq, ok, self._run_start)
        self._run_start = None
        stop = first_seq + ok.size
        for lo, hi in zip(starts, ends, strict=True):
            if hi == stop:
                self._run_start = lo  # may continue in the next block
            if hi - lo > self._gap_max:
                self._break(int(lo), int(hi))

    def _forget(self) -> None:
        horizon = self.fed_until - self._keep
        while self.beats and self.beats[0].seq < horizon:
            self.beats.popleft()
        while self._breaks and self._breaks[0][1] < horizon:
            self._breaks.popleft()


def confirmation_delay(detector: QrsDetector, settings: QrsSettings) -> int:
    """Samples after which an ordinary beat has been reported (the detector's look-ahead).

    The detector's ``delay_samples`` also covers its search-back horizon (a missed beat found up to
    2 s late). Waiting for that would make asystole 2 s later; a beat found by search-back lies in a
    stretch that is not flat, which the engine's flat-line check sees anyway.
    """
    return max(0, detector.delay_samples - round(settings.horizon_s * detector.fs))


def _r(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


def _min(rr: np.ndarray) -> float | None:
    return float(rr.min()) if rr.size else None


def _max(rr: np.ndarray) -> float | None:
    return float(rr.max()) if rr.size else None


BEAT_FIELDS = tuple(WindowBeats.none("").fields())  # the result record's beat fields, in order


def setting_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Field names of the detector's and the tracker's settings (config composes them flat)."""
    return tuple(f.name for f in fields(QrsSettings)), tuple(f.name for f in fields(BeatSettings))
