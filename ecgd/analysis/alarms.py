"""The alarm layer: asystole, VF, VT, rate limits, pauses and AF as IEC 60601-1-8 style state machines.

Pure: no threads, no clock, no I/O. Time is the sample sequence number at ``fs``; the daemon and
``ecgd alarms`` feed the same blocks (the new beats, the block's signal, the electrode state) and the
same window verdicts, and get the same events. An event is a *change*: one ``onset`` when an alarm's
condition starts to hold (with the measured value and the threshold) and one ``end`` (with the
duration) when it stops; never one per block or window.

What may be concluded from what:

- Leads off (an LO pin high, or the output sitting at an ADC rail) is the technical ``leads_off``
  alarm and blocks every physiological alarm. It is never an asystole.
- A flat line with the electrodes on *is* an asystole: no QRS for ``asystole_seconds`` and no steep
  deflection in that stretch. No QRS but a busy signal that is not VF is a detector that cannot see
  beats: the rate alarms are suspended (``alarms_suspended``), never reported as resolved.
- P waves are not a heartbeat: when the QRS stops and the atria go on, the detector's levels decay until
  it takes P waves for beats. A detected beat under ``qrs_fraction`` of the patient's usual QRS height
  is no QRS here, and for asystole only a deflection ``qrs_fraction`` as steep as the usual QRS is one.
- Noisy windows (the quality gate's ``gross noise``/``implausible amplitude``/``no QRS``) suspend the
  rate, pause, ventricular and AF alarms until a readable window. Active alarms stay active while
  suspended: only evidence ends an alarm.
- A pause is one RR interval longer than ``pause_seconds``: raised once the line has been quiet that
  long since the last beat, or from the RR itself when the closing beat comes within a block of it.
- Asystole and VF supersede the rate and pause alarms (no brady/pause floods on top of an arrest); an
  asystole also supersedes a VF that has decayed into a flat line.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from ecgd.analysis import vf
from ecgd.analysis.quality import noise_power_fraction

HIGH, MEDIUM, LOW = "high", "medium", "low"
PHYSIOLOGICAL, TECHNICAL = "physiological", "technical"

# Internal constants (shapes of the measurement, not thresholds a user tunes).
_HISTORY_S = 10.0  # signal kept for the asystole/VF/rail checks (≥ asystole_seconds + VF window)
_SLOPE_SPAN_S = 0.02  # slope over ±10 ms, as the quality gate measures QRS steepness
_BEAT_SETTLE_S = 0.5  # after a beat its own QRS and T wave is not "activity" in the gap that follows
_RR_AVERAGE = 8  # heart rate from the mean of the last 8 RR intervals (IEC 60601-2-27 allows 4-16)
_RATE_END_HOLD_S = 5.0  # a rate alarm ends after the rate has been back within its limit this long
_VF_WINDOW_S = 4.0
_VF_BAND_HZ = (2.5, 9.0)  # 150-540 oscillations a minute: flutter and coarse fibrillation
_VF_END_HOLD_S = 5.0  # VF comes and goes below the limit: one episode, not a flood
_RUN_GAP_S = 1.5  # no beat this long after a ventricular beat: the run is over
_RUN_RR_SLACK = 1.25  # a run's beats follow each other within this × the VT interval; its mean rate decides
_RUN_NOISE_CUTOFF_HZ = 20.0  # muscle noise above, QRS and VT below (the quality gate's default cutoff)
_RUN_NOISE_EDGE_S = 0.15  # the noise check's signal: from this before a run's beats to this after
_LEADS_ON_HOLD_S = 1.0  # the output must stay off the rails this long before leads count as on again
_MISSING_MAX = 0.5  # more of the last second missing than this: nothing can be judged
_QRS_REFERENCE = 16  # the patient's usual QRS: the median of the last this many beats that counted ...
_QRS_REFERENCE_MIN = 8  # ... once there are this many (before: every beat counts)
_QRS_SLOPE_S = 0.06  # a beat's steepness: the steepest slope within ±60 ms of its R peak
_NOISE_PREFIXES = ("gross noise", "implausible amplitude", "no QRS complexes found")
_ALARM_NAMES = (
    "asystole",
    "vfib",
    "vtach",
    "ventricular_run",
    "bradycardia",
    "tachycardia",
    "extreme_bradycardia",
    "extreme_tachycardia",
    "pause",
    "afib",
)


def _opt(default: Any, help: str, lo: float | None = 0, hi: float | None = None) -> Any:
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi})


@dataclass(frozen=True)
class AlarmSettings:
    """Alarm switches and limits; YAML ``alarms.<field>``. Defaults are those monitors ship with."""

    enabled: bool = _opt(True, "run the alarm layer at all (false: no alarm records, said once at start)")
    asystole: bool = _opt(True, "alarm `asystole` (high): no QRS while the electrodes are on")
    asystole_seconds: float = _opt(4.0, "no QRS for this long (s) with a flat line: asystole", 2, 30)
    qrs_fraction: float = _opt(
        0.3,
        "a detected beat lower than this fraction of the patient's usual QRS (the median of the last "
        "16 beats that counted) is no QRS for the alarms, and for asystole a line is flat while "
        "nothing in it is this fraction as steep as the usual QRS: the P waves of a ventricular "
        "standstill are not a heartbeat (0: every detected beat counts)",
        0,
        0.9,
    )
    vfib: bool = _opt(True, "alarm `vfib` (high): ventricular fibrillation/flutter from the signal")
    vfib_seconds: float = _opt(2.0, "the signal must look like VF for this long (s)", 0.5, 20)
    vfib_max_leakage: float = _opt(0.45, "VF filter leakage below this: a VF-like oscillation", 0.01, 1)
    vfib_min_amplitude_mv: float = _opt(0.2, "VF must be coarser than this (5-95 % span, mV)", 0.01, 10)
    vtach: bool = _opt(True, "alarm `vtach` (high): a run of ventricular beats at a fast rate")
    vtach_beats: int = _opt(6, "consecutive ventricular beats that make a VT", 3, 30)
    vtach_rate_bpm: float = _opt(
        100.0, "... at a mean rate of at least this (bpm, over the run; also for ventricular runs)", 60, 300
    )
    vtach_width_ms: float = _opt(
        140.0,
        "only without a beat-aware model (no beat labels): a beat at least this wide (the QRS "
        "detector's width_ms, which reads ~115-130 ms for a narrow QRS) counts as ventricular "
        "(wide-complex tachycardia rule)",
        60,
        300,
    )
    vtach_confidence: float = _opt(
        0.8,
        "with beat labels: the mean P(V) the beat model gives the run's V beats must reach this for a "
        "vtach (a run the model labels V only just, e.g. aberrant SVT, stays a ventricular_run)",
        0,
        1,
    )
    vtach_af_rr_cv: float = _opt(
        0.15,
        "in atrial fibrillation (afib_windows AF windows in a row, whether or not the afib alarm is on) a "
        "run whose RR intervals vary by at least this coefficient of variation is AF conducted with "
        "aberrancy, not VT, which is regular; it stays a ventricular_run (1: off)",
        0.01,
        1,
    )
    vtach_max_noise: float = _opt(
        0.2,
        "a run whose last vtach_beats beats lie in signal with more than this share of its power above "
        "20 Hz (muscle noise, whose spikes the QRS detector takes for beats and the beat model for V) "
        "stays a ventricular_run, and a shorter run in such noise raises none; VT's power lies below "
        "20 Hz (1: off)",
        0.01,
        1,
    )
    ventricular_probability: float = _opt(
        0.5,
        "with beat labels: a beat counts as ventricular for vtach and ventricular_run when the beat "
        "model labels it V or gives it at least this P(V) (the V label's own threshold is chosen for "
        "window labels; a missed VT costs more than a false one)",
        0.05,
        1,
    )
    ventricular_run: bool = _opt(True, "alarm `ventricular_run` (low): 3 … vtach_beats−1 ventricular beats")
    bradycardia: bool = _opt(True, "alarm `bradycardia` (medium)")
    brady_bpm: float = _opt(50.0, "heart rate below this (bpm) for rate_delay_seconds: bradycardia", 20, 200)
    tachycardia: bool = _opt(True, "alarm `tachycardia` (medium)")
    tachy_bpm: float = _opt(120.0, "heart rate above this (bpm) for rate_delay_seconds: tachycardia", 60, 300)
    extreme_bradycardia: bool = _opt(True, "alarm `extreme_bradycardia` (high)")
    extreme_brady_bpm: float = _opt(40.0, "heart rate below this (bpm): extreme bradycardia", 15, 200)
    extreme_tachycardia: bool = _opt(True, "alarm `extreme_tachycardia` (high)")
    extreme_tachy_bpm: float = _opt(150.0, "heart rate above this (bpm): extreme tachycardia", 60, 350)
    rate_delay_seconds: float = _opt(
        10.0, "a rate limit must be crossed this long (s) before it alarms", 0, 120
    )
    pause: bool = _opt(True, "alarm `pause` (medium): one RR interval too long")
    pause_seconds: float = _opt(2.5, "an RR interval longer than this (s) is a pause", 1, 30)
    afib: bool = _opt(True, "alarm `afib` (low): from the window labels")
    afib_windows: int = _opt(
        3, "consecutive AF windows before afib begins (and non-AF windows before it ends)", 1, 100
    )
    afib_label: str = field(default="AF", metadata={"help": "the model label that means atrial fibrillation"})

    def switched_off(self) -> list[str]:
        """Alarms that will never sound (all of them when the layer is off)."""
        if not self.enabled:
            return list(_ALARM_NAMES)
        return [name for name in _ALARM_NAMES if not getattr(self, name)]

    def problems(self) -> list[str]:
        found = []
        if not self.extreme_brady_bpm < self.brady_bpm:
            found.append(
                f"extreme_brady_bpm: {self.extreme_brady_bpm:g} must be below brady_bpm ({self.brady_bpm:g})"
            )
        if not self.brady_bpm < self.tachy_bpm:
            found.append(f"brady_bpm: {self.brady_bpm:g} must be below tachy_bpm ({self.tachy_bpm:g})")
        if not self.tachy_bpm < self.extreme_tachy_bpm:
            found.append(
                f"extreme_tachy_bpm: {self.extreme_tachy_bpm:g} must be above tachy_bpm ({self.tachy_bpm:g})"
            )
        if not self.pause_seconds < self.asystole_seconds:
            found.append(
                f"pause_seconds: {self.pause_seconds:g} must be shorter than asystole_seconds "
                f"({self.asystole_seconds:g})"
            )
        return found


PRIORITY = {
    "asystole": HIGH,
    "vfib": HIGH,
    "vtach": HIGH,
    "extreme_bradycardia": HIGH,
    "extreme_tachycardia": HIGH,
    "bradycardia": MEDIUM,
    "tachycardia": MEDIUM,
    "pause": MEDIUM,
    "ventricular_run": LOW,
    "afib": LOW,
    "leads_off": MEDIUM,
    "alarms_suspended": LOW,
}
UNITS = {
    "asystole": "s",
    "pause": "s",
    "vfib": "Hz",
    "vtach": "bpm",
    "ventricular_run": "bpm",
    "bradycardia": "bpm",
    "tachycardia": "bpm",
    "extreme_bradycardia": "bpm",
    "extreme_tachycardia": "bpm",
    "afib": "windows",
}
TECHNICAL_ALARMS = ("leads_off", "alarms_suspended")


class BeatsLike(Protocol):
    """What the engine needs from the QRS detector (``ecgd.analysis.qrs.DetectedBeats`` fits)."""

    seq: np.ndarray  # absolute R-peak sample seqs
    # read if present (``DetectedBeats`` and ``beats.BeatArrays`` have them; NaN = not measured):
    # ``rr_ms`` (the beat stage's RR), ``amplitude_mv`` (qrs_fraction), ``width_ms`` (wide-complex rule)


class LabelledLike(Protocol):
    """What the engine needs from the beat labeller (``ecgd.analysis.beat_labels.LabelledBeats`` fits)."""

    seq: np.ndarray  # the beats labelled now, in time order
    labels: np.ndarray  # N / S / V / Q
    probs: np.ndarray  # [beats, 3]: P(N), P(S), P(V) (NaN for a beat not judged)
    until: int  # every beat before this seq has been labelled


@dataclass(frozen=True)
class AlarmEvent:
    """One change of one alarm. ``seq`` is where the change is placed on the sampling grid."""

    alarm: str
    state: str  # onset | end
    priority: str
    category: str
    alarm_id: str
    onset_seq: int
    seq: int
    detected_seq: int  # the block end at which the engine could say so (latency = this - cause)
    value: float | None
    threshold: float | None
    unit: str | None
    duration_s: float | None
    detail: str

    def describe(self) -> str:
        name = self.alarm.upper().replace("_", " ")
        if self.state == "onset":
            return f"{name} ({self.priority}): {self.detail}"
        return f"{name} ended after {self.duration_s:.1f} s: {self.detail}"


@dataclass
class _Active:
    onset_seq: int
    alarm_id: str
    value: float | None


@dataclass
class _Beat:
    seq: int
    ventricular: bool
    rr_ok: bool = True  # False: the beat stage measured no RR to it (a gap or an unreadable stretch)
    p_v: float = 1.0  # the beat model's P(V) (a labelled beat); the wide-complex rule is sure


class AlarmEngine:
    """Feed blocks in order (``feed``) and window verdicts when they are known (``window``)."""

    def __init__(
        self,
        fs: float,
        settings: AlarmSettings,
        *,
        first_seq: int = 0,
        delay_samples: int = 0,
        rails_mv: tuple[float, float] | None = None,
        rail_margin_fraction: float = 0.02,
        rail_max_run_s: float = 0.4,
        min_qrs_slope_mv_per_s: float = 8.0,
        refractory_s: float = 0.19,
        id_prefix: str = "",
        labelled_beats: bool = False,
    ) -> None:
        """``labelled_beats``: ventricular beats come from a beat classifier's labels (``feed(labelled=)``),
        not from the wide-complex rule on the detector's QRS widths."""
        self.fs = float(fs)
        self.labelled_beats = labelled_beats
        self.settings = settings
        self.delay = int(delay_samples)
        self.id_prefix = id_prefix
        self.min_slope = min_qrs_slope_mv_per_s
        # the QRS detector's refractory period: a steep deflection this close before a beat is that beat's
        # P wave or QRS onset, never a QRS of its own (the ventricles cannot beat again so soon)
        self._refractory = round(refractory_s * self.fs)
        if rails_mv is not None:
            low, high = min(rails_mv), max(rails_mv)
            margin = rail_margin_fraction * (high - low)
            self._rails: tuple[float, float] | None = (low + margin, high - margin)
        else:
            self._rails = None
        self._rail_run_n = max(1, round(rail_max_run_s * self.fs))
        n = int(_HISTORY_S * self.fs)
        self._mv = np.zeros(n, dtype=np.float32)
        self._valid = np.zeros(n, dtype=bool)
        self._stop = first_seq  # the history ends just before this seq
        self._first = first_seq
        self._block_start = first_seq
        self._fed = False
        self.active: dict[str, _Active] = {}
        self._beats: deque[_Beat] = deque(maxlen=64)
        self._last_beat: int | None = None
        self._since = first_seq  # gaps are counted from here (start, leads back on, a beat)
        self._rail_run = 0
        self._last_rail = -(1 << 62)
        self._rail_off = False
        self._pins_off: str | None = None
        self._noise_reason: str | None = None  # the last window verdict that suspends the rate alarms
        self._blind_reason: str | None = None  # no QRS in a busy signal
        self._cond_since: dict[str, int | None] = {}
        self._clear_since: dict[str, int | None] = {}
        self._vf_since: int | None = None
        self._pause_checked: int | None = None  # the newest beat whose RR was judged for a pause
        self._pause_from: int | None = None  # the beat the newest pause alarm started from
        self._vf_clear_since: int | None = None
        self._vf_last: vf.VfMeasure | None = None
        self._run: list[int] = []  # seqs of the current run, from its first V beat to its last
        self._run_v = 0  # V beats in it
        self._run_p_v = 0.0  # the sum of their P(V)
        self._consecutive_v = 0  # V beats at its end, one after the other
        self._gap_beat: int | None = None  # a beat not labelled V after the run's last V beat
        self._aberrant_cv: float | None = None  # RR CV of a run kept from VT only by being irregular in AF
        self._noisy: float | None = None  # noise share of a run kept from VT only by muscle noise
        self._unsure: float | None = None  # mean P(V) of a VT-length run kept from VT by the model's doubt
        self._label_horizon = first_seq  # labelled_beats: every beat before this has its label
        self._window_stop = first_seq  # the newest window verdict's end
        self._last_labelled: int | None = None
        self._af_count = 0
        self._non_af_count = 0
        self._in_af = False  # afib's condition, kept whether or not that alarm is on (the VT rule reads it)
        self._qrs_heights: deque[float] = deque(maxlen=_QRS_REFERENCE)  # of the beats that counted
        self._qrs_slopes: deque[float] = deque(maxlen=_QRS_REFERENCE)
        self.small_beats = 0  # detected beats not counted as QRS (below qrs_fraction of the usual)

    # -- public -------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._stop

    def apply_settings(self, settings: AlarmSettings) -> list[AlarmEvent]:
        """A reload: new limits apply from the next block; an alarm switched off while active ends. The
        patient's usual QRS is kept (only :meth:`relearn` forgets it): a reload during an arrest must
        not make the P waves the QRS."""
        self.settings = settings
        off = set(settings.switched_off())
        return [
            self._end(name, self._stop, None, "alarm switched off in the configuration")
            for name in list(self.active)
            if name in off
        ]

    def feed(
        self,
        first_seq: int,
        mv: np.ndarray,
        valid: np.ndarray | None,
        beats: BeatsLike | None,
        leads_off: str | None = None,
        labelled: LabelledLike | None = None,
    ) -> list[AlarmEvent]:
        """One block of new samples ``[first_seq, first_seq + len(mv))`` and the beats found so far.

        ``leads_off`` is the LO pins' reason if an electrode was off during the block. Which beats are
        ventricular: with ``labelled_beats``, the beats ``labelled`` now (label ``V``; they trail
        ``beats`` by about one RR interval); without, a beat whose ``width_ms`` (from the detector)
        reaches ``vtach_width_ms`` (the wide-complex rule).
        """
        x = np.asarray(mv, dtype=np.float32)
        ok = np.ones(x.size, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        if self._fed and first_seq != self._stop:
            raise ValueError(f"block starts at {first_seq}, expected {self._stop}: blocks must be contiguous")
        self._fed = True
        lost_until = self._starved_until(ok)
        self._append(x, ok)
        self._block_start = first_seq
        events: list[AlarmEvent] = []
        if not self.settings.enabled:
            return events
        self._pins_off = leads_off
        self._check_rails(x, ok, first_seq)
        events += self._technical()
        blocked = self._leads_off() or self._starved()
        new = self._take_beats(beats)
        horizon = self._stop - self.delay
        if self.labelled_beats:
            new = self._take_labelled(labelled)
            horizon = self._label_horizon if labelled is None else max(self._label_horizon, labelled.until)
            self._label_horizon = horizon
        if blocked:
            self._since = self._stop
            self._reset_conditions()
            return events + self._technical_suspend()
        if lost_until is not None and lost_until > self._since:
            # a stretch inside the block where nothing could be judged: what follows it starts afresh,
            # as after a block that ended starved (a late worker reads a sensor fault and what came
            # after it at once: its missing samples are no flat line, no pause, no blind detector)
            self._since = lost_until
            self._reset_conditions()
        events += self._ventricular(new, horizon)
        events += self._vf()
        events += self._gap()
        events += self._rates()
        events += self._technical_suspend()
        return events

    def window(self, first_seq: int, stop_seq: int, label: str, reason: str | None) -> list[AlarmEvent]:
        """A window's verdict: noisy windows suspend the rate alarms; AF windows drive ``afib``."""
        if not self.settings.enabled:
            return []
        events: list[AlarmEvent] = []
        at = min(stop_seq, self._stop)
        newest = stop_seq > self._window_stop  # a verdict drawn from beat labels may come after a later
        self._window_stop = max(self._window_stop, stop_seq)  # window's quality verdict: the newest counts
        if reason is not None and reason.startswith(_NOISE_PREFIXES):
            if newest:
                self._noise_reason = reason
        elif label not in ("unreadable", "unclassified", "skipped"):
            if newest:
                self._noise_reason = None
            events += self._afib(label == self.settings.afib_label, at)
        events += self._technical_suspend()
        return events

    def relearn(self) -> None:
        """Forget the patient's usual QRS (``ecgd relearn``: the lead or the patient changed)."""
        self._qrs_heights.clear()
        self._qrs_slopes.clear()

    def close(self) -> list[AlarmEvent]:
        """Nothing: an alarm active at the end stays active (offline: ``end`` is null)."""
        return []

    def status(self, leave_out: tuple[str, ...] = ()) -> str | None:
        """``ASYSTOLE 12 s · VTACH 3 s`` for the active alarms, highest priority first."""
        active = {k: v for k, v in self.active.items() if k not in leave_out}
        if not active:
            return None
        rank = {HIGH: 0, MEDIUM: 1, LOW: 2}
        ordered = sorted(active.items(), key=lambda kv: (rank[PRIORITY[kv[0]]], kv[1].onset_seq))
        parts = [
            f"{name.upper().replace('_', ' ')} {max(0.0, (self._stop - a.onset_seq) / self.fs):.0f} s"
            for name, a in ordered
        ]
        return " · ".join(parts)

    # -- signal history ------------------------------------------------------------------------
    def _append(self, x: np.ndarray, ok: np.ndarray) -> None:
        n = x.size
        if n >= self._mv.size:
            self._mv[:] = x[-self._mv.size :]
            self._valid[:] = ok[-self._mv.size :]
        elif n:
            self._mv[:-n] = self._mv[n:]
            self._mv[-n:] = x
            self._valid[:-n] = self._valid[n:]
            self._valid[-n:] = ok
        self._stop += n

    def _history(self, start_seq: int) -> tuple[np.ndarray, np.ndarray]:
        """Signal and validity from ``start_seq`` (clipped to the history) to now."""
        k = min(self._mv.size, max(0, self._stop - start_seq))
        return self._mv[self._mv.size - k :], self._valid[self._mv.size - k :]

    def _slopes(self, start_seq: int, stop_seq: int) -> tuple[np.ndarray, int]:
        """|slope| (mV/s, over ±10 ms; 0 where a sample is missing) over ``[start_seq, stop_seq)`` of the
        history, and the seq just after the span of its first value."""
        x, ok = self._history(start_seq)
        cut = max(0, self._stop - stop_seq)
        x, ok = x[: x.size - cut], ok[: ok.size - cut]
        k = max(1, round(_SLOPE_SPAN_S * self.fs / 2))
        if x.size <= 2 * k:
            return np.zeros(0), stop_seq
        slope = np.abs(x[2 * k :] - x[: -2 * k]) * (self.fs / (2 * k))
        return np.where(ok[2 * k :] & ok[: -2 * k], slope, 0.0), stop_seq - x.size + 2 * k

    def _last_activity(self, start_seq: int, stop_seq: int, min_slope: float | None = None) -> int | None:
        """The seq just after the last QRS-steep sample in ``[start_seq, stop_seq)`` (None: flat):
        at least ``min_slope`` (default: the absolute floor, ``min_qrs_slope_mv_per_s``)."""
        slope, first = self._slopes(start_seq, stop_seq)
        steep = np.flatnonzero(slope >= (self.min_slope if min_slope is None else min_slope))
        return None if steep.size == 0 else first + int(steep[-1])  # the end of that slope's span

    def _asystole_slope(self) -> float:
        """What is steep enough to be a QRS the detector missed, for asystole: ``qrs_fraction`` of the
        patient's usual QRS steepness, never below the absolute floor. A P wave of 0.3 mV is as steep
        as the floor; a QRS several times steeper."""
        if len(self._qrs_slopes) < _QRS_REFERENCE_MIN:
            return self.min_slope
        return max(self.min_slope, self.settings.qrs_fraction * float(np.median(self._qrs_slopes)))

    def _counts_as_qrs(self, height_mv: float) -> bool:
        """Whether a detected beat is a QRS for the alarms. Why: after the QRS stops, the detector's
        levels decay until it takes the P waves of a ventricular standstill for beats (0.15-mV P waves
        after real patients' QRS, README); a beat under ``qrs_fraction`` of the usual height is not one
        (on DS1 31 true beats of 51,459: README). A beat of unknown height counts."""
        fraction = self.settings.qrs_fraction
        known = fraction > 0 and len(self._qrs_heights) >= _QRS_REFERENCE_MIN and math.isfinite(height_mv)
        if known and height_mv < fraction * float(np.median(self._qrs_heights)):
            self.small_beats += 1
            return False
        return True

    def _learn_qrs(self, seq: int, height_mv: float) -> None:
        """Add a beat that counted to the patient's usual QRS: its height and its steepest slope."""
        half = round(_QRS_SLOPE_S * self.fs)
        if not math.isfinite(height_mv) or self._stop - (seq - half) > self._mv.size:
            return  # no height, or its span is no longer in the history
        slope, _ = self._slopes(seq - half, seq + half + 1)
        if slope.size:
            self._qrs_heights.append(height_mv)
            self._qrs_slopes.append(float(slope.max()))

    # -- technical state ------------------------------------------------------------------------
    def _check_rails(self, x: np.ndarray, ok: np.ndarray, first_seq: int) -> None:
        """Leads off without pins: the output stays at a rail longer than a clipped QRS ever does."""
        if self._rails is None or x.size == 0:
            return
        low, high = self._rails
        at = ((x <= low) | (x >= high)) & ok
        if at.any():
            d = np.diff(np.r_[False, at, False].astype(np.int8))
            starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            runs = stops - starts
            if starts[0] == 0:
                runs[0] += self._rail_run  # a run carried over from the last block
            if int(runs.max()) >= self._rail_run_n:
                self._rail_off = True
            self._rail_run = int(runs[-1]) if stops[-1] == x.size else 0
            self._last_rail = first_seq + int(stops[-1]) - 1
        else:
            self._rail_run = 0
        if self._rail_off and self._stop - 1 - self._last_rail >= _LEADS_ON_HOLD_S * self.fs:
            self._rail_off = False

    def _leads_off(self) -> bool:
        return self._pins_off is not None or self._rail_off

    def _starved_until(self, ok: np.ndarray) -> int | None:
        """The seq just after the last sample of a new block (validity ``ok``, not yet appended) at which
        more than ``_MISSING_MAX`` of the second up to it was missing (None: at none). ``_starved`` asks
        this of the newest sample only; a block longer than a second, which a worker that fell behind
        reads, can hold a whole sensor fault and the samples after it."""
        n = max(1, int(self.fs))
        p = min(n, self._stop - self._first, self._valid.size)
        both = np.concatenate((self._valid[self._valid.size - p :], ok)) if p else ok
        missing = np.concatenate(([0], np.cumsum(~both)))
        ends = np.arange(p + 1, both.size + 1)  # exclusive ends: each new sample as the newest
        starts = np.maximum(0, ends - n)
        hit = np.flatnonzero((missing[ends] - missing[starts]) > _MISSING_MAX * (ends - starts))
        return None if hit.size == 0 else self._stop + int(ends[hit[-1]]) - p

    def _starved(self) -> bool:
        _, ok = self._history(max(self._first, self._stop - int(self.fs)))
        return ok.size > 0 and float(np.mean(~ok)) > _MISSING_MAX

    def _technical(self) -> list[AlarmEvent]:
        off = self._leads_off()
        if off and "leads_off" not in self.active:
            why = self._pins_off or "the AD8232 output sits at an ADC rail"
            return [
                self._onset(
                    "leads_off", self._stop, None, None, f"electrode off ({why}); ECG alarms cannot sound"
                )
            ]
        if not off and "leads_off" in self.active:
            return [self._end("leads_off", self._block_start, None, "electrodes on again")]
        return []

    def _suspend_reason(self) -> str | None:
        if self._leads_off():
            return None  # leads_off says it
        if self._starved():
            return "more than half of the last second's samples are missing"
        return self._blind_reason or self._noise_reason

    def _technical_suspend(self) -> list[AlarmEvent]:
        reason = self._suspend_reason()
        if reason is not None and "alarms_suspended" not in self.active:
            return [
                self._onset("alarms_suspended", self._stop, None, None, f"rate alarms suspended: {reason}")
            ]
        if reason is None and "alarms_suspended" in self.active and not self._leads_off():
            return [self._end("alarms_suspended", self._stop, None, "signal readable again")]
        return []

    def _rate_suspended(self) -> bool:
        return self._noise_reason is not None or self._blind_reason is not None

    # -- beats ----------------------------------------------------------------------------------
    def _take_beats(self, beats: BeatsLike | None) -> list[_Beat]:
        """New beats in seq order. A detector's search-back may report a beat late (before beats
        already seen): it joins the RR history, but the ventricular-run logic sees beats in order only."""
        if beats is None or len(beats.seq) == 0:
            return []
        seqs = np.asarray(beats.seq, dtype=np.int64)
        widths_ms = getattr(beats, "width_ms", None)
        rr_ms = getattr(beats, "rr_ms", None)  # the beat stage's: NaN where no RR may be measured
        heights = getattr(beats, "amplitude_mv", None)
        out = []
        for i in np.argsort(seqs, kind="stable").tolist():
            s = int(seqs[i])
            if heights is not None:
                if not self._counts_as_qrs(float(heights[i])):
                    continue
                self._learn_qrs(s, float(heights[i]))
            if widths_ms is not None and not self.labelled_beats:
                w = float(widths_ms[i])
                ventricular = math.isfinite(w) and w >= self.settings.vtach_width_ms
            else:
                ventricular = False
            beat = _Beat(s, ventricular, rr_ms is None or bool(np.isfinite(rr_ms[i])))
            if self._last_beat is not None and s <= self._last_beat:
                if all(b.seq != s for b in self._beats):
                    self._beats.append(beat)
                    self._beats = deque(sorted(self._beats, key=lambda b: b.seq), maxlen=self._beats.maxlen)
                continue
            out.append(beat)
            self._beats.append(beat)
            self._last_beat = s
        return out

    def _take_labelled(self, labelled: LabelledLike | None) -> list[_Beat]:
        """The beats labelled now, in order, for the ventricular-run logic (a late one is history)."""
        if labelled is None or len(labelled.seq) == 0:
            return []
        out = []
        p_v = np.asarray(labelled.probs)[:, 2].tolist()
        for s, label, p in zip(
            np.asarray(labelled.seq).tolist(), np.asarray(labelled.labels).tolist(), p_v, strict=True
        ):
            if self._last_labelled is not None and s <= self._last_labelled:
                continue
            ventricular = label == "V" or (not math.isnan(p) and p >= self.settings.ventricular_probability)
            out.append(_Beat(int(s), ventricular, p_v=p))
            self._last_labelled = int(s)
        return out

    def _rr_s(self) -> list[float]:
        """RR intervals since the last break; none across a stretch where beats may have been lost."""
        beats = [b for b in self._beats if b.seq >= self._since]
        return [(b.seq - a.seq) / self.fs for a, b in itertools.pairwise(beats) if b.rr_ok]

    # -- the alarms -----------------------------------------------------------------------------
    def _on(self, name: str) -> bool:
        return self.settings.enabled and bool(getattr(self.settings, name))

    def _gap(self) -> list[AlarmEvent]:
        """Asystole and pause from the time since the last beat (confirmed up to now − delay)."""
        s = self.settings
        events: list[AlarmEvent] = []
        horizon = self._stop - self.delay
        last = self._last_beat if self._last_beat is not None and self._last_beat >= self._since else None
        start = last if last is not None else self._since
        gap_s = (horizon - start) / self.fs
        settle = int(_BEAT_SETTLE_S * self.fs) if last is not None else 0
        events += self._pause_at_beat(last)
        if gap_s < min(s.pause_seconds, s.asystole_seconds) and not self.active.keys() & {
            "asystole",
            "pause",
        }:
            self._blind_reason = None
            return events  # nothing can start and nothing active can end: the common case, cheaply
        # The last steep deflection since the beat: a QRS the detector missed, noise, or VF. An
        # asystole needs asystole_seconds without one; a pause needs none since the last beat.
        activity = self._last_activity(start + settle, horizon)
        # for asystole only what could be a QRS is activity: P waves go on in a ventricular standstill
        asystole_slope = self._asystole_slope()
        activity_asystole = activity
        if activity is not None and asystole_slope > self.min_slope:
            activity_asystole = self._last_activity(start + settle, horizon, asystole_slope)
        quiet_since = start if activity_asystole is None else max(start, activity_asystole)
        flat_s = (horizon - quiet_since) / self.fs
        for name in ("asystole", "pause"):
            a = self.active.get(name)
            if (
                a is not None
                and last is not None
                and last > a.onset_seq - round(self._threshold(name) * self.fs)
            ):
                events.append(self._end(name, last, None, "a QRS complex again"))
        # VF explains a missing QRS for as long as its alarm lasts, but only a signal that looks like VF
        # *now* hides a gap: in the alarm's end hold a pause after the returning beats, or a VF that
        # decays into a flat line, is raised at once (MIT-BIH 207 has a 2.5-s pause 4 s after flutter).
        vf_like_now = self._vf_since is not None
        self._blind_reason = None
        if (
            gap_s >= s.asystole_seconds
            and flat_s < s.asystole_seconds
            and not vf_like_now
            and "vfib" not in self.active
        ):
            self._blind_reason = f"no QRS complex found for {gap_s:.1f} s in a signal that is not flat"
        if vf_like_now:
            return events
        if (
            gap_s >= s.pause_seconds
            and activity is None
            and self._on("pause")
            and "pause" not in self.active
            and last is not None
            and not self._rate_suspended()
            and "asystole" not in self.active
        ):
            at = last + round(s.pause_seconds * self.fs)
            self._pause_from = last
            events.append(
                self._onset(
                    "pause",
                    at,
                    round(gap_s, 2),
                    s.pause_seconds,
                    f"no QRS for {gap_s:.1f} s (limit {s.pause_seconds:g} s)",
                )
            )
        # The signal is known up to now, the beats only up to the horizon: a beat not yet confirmed is a
        # steep deflection, so a line flat up to now is an asystole now, not one confirmation delay later.
        recent = self._last_activity(max(quiet_since, horizon), self._stop, asystole_slope)
        quiet_now = quiet_since if recent is None else max(quiet_since, recent)
        flat_now_s = (self._stop - quiet_now) / self.fs
        if flat_now_s >= s.asystole_seconds and self._on("asystole") and "asystole" not in self.active:
            at = quiet_now + round(s.asystole_seconds * self.fs)
            since_beat_s = (self._stop - start) / self.fs
            flat = f"flat for {flat_now_s:.1f} s"
            if asystole_slope > self.min_slope:
                flat += (
                    f" (nothing as steep as {asystole_slope:.0f} mV/s, {s.qrs_fraction:g} × the usual QRS)"
                )
            events.append(
                self._onset(
                    "asystole",
                    at,
                    round(since_beat_s, 2),
                    s.asystole_seconds,
                    f"no QRS for {since_beat_s:.1f} s, {flat}, electrodes on "
                    f"(limit {s.asystole_seconds:g} s)",
                )
            )
            for name in ("vfib", "bradycardia", "extreme_bradycardia", "pause"):
                if name in self.active:
                    events.append(self._end(name, self._stop, None, "superseded by asystole"))
        return events

    def _pause_at_beat(self, last: int | None) -> list[AlarmEvent]:
        """A pause the new beat's RR shows that the real-time check could not: that one looks a block at
        a time at beats confirmed up to the horizon, so a beat closing the interval within a block of the
        limit (or its P wave or QRS onset, before its position) always came first (MIT-BIH 207: 2.511 s
        between two beats). Raised and ended at once, on the same evidence: no steep deflection between
        the beats but the closing beat's own, nothing suspending the rate alarms, no asystole, no VF."""
        s = self.settings
        if last is None or last == self._pause_checked:
            return []
        self._pause_checked = last
        earlier = [b for b in self._beats if self._since <= b.seq <= last]
        if len(earlier) < 2 or not earlier[-1].rr_ok:
            return []
        prev = earlier[-2].seq
        limit = round(s.pause_seconds * self.fs)
        if (
            last - prev <= limit
            or prev == self._pause_from
            or self._stop - prev > self._mv.size  # older than the signal kept: not judged here
            or not self._on("pause")
            or self.active.keys() & {"pause", "asystole"}
            or self._vf_since is not None
            or self._rate_suspended()
        ):
            return []
        settle = int(_BEAT_SETTLE_S * self.fs)
        if self._last_activity(prev + settle, last - self._refractory) is not None:
            return []
        rr_s = (last - prev) / self.fs
        self._pause_from = prev
        onset = self._onset(
            "pause",
            prev + limit,
            round(rr_s, 2),
            s.pause_seconds,
            f"an RR interval of {rr_s:.2f} s (limit {s.pause_seconds:g} s)",
        )
        return [onset, self._end("pause", last, None, "a QRS complex again")]

    def _threshold(self, name: str) -> float:
        return {"asystole": self.settings.asystole_seconds, "pause": self.settings.pause_seconds}[name]

    def _heart_rate(self) -> float | None:
        rr = self._rr_s()[-_RR_AVERAGE:]
        if len(rr) < 2:
            return None
        mean = sum(rr) / len(rr)
        open_s = (self._stop - self.delay - self._last_beat) / self.fs if self._last_beat is not None else 0.0
        if open_s > mean:  # a beat overdue lowers the rate now, not at the next beat
            rr = [*rr[1:], open_s]
            mean = sum(rr) / len(rr)
        return 60.0 / mean

    def _rates(self) -> list[AlarmEvent]:
        s = self.settings
        events: list[AlarmEvent] = []
        hr = self._heart_rate()
        superseded = "asystole" in self.active or "vfib" in self.active
        limits = (
            ("bradycardia", s.brady_bpm, lambda v: v < s.brady_bpm, lambda v: v >= s.brady_bpm),
            (
                "extreme_bradycardia",
                s.extreme_brady_bpm,
                lambda v: v < s.extreme_brady_bpm,
                lambda v: v >= s.extreme_brady_bpm,
            ),
            ("tachycardia", s.tachy_bpm, lambda v: v > s.tachy_bpm, lambda v: v <= s.tachy_bpm),
            (
                "extreme_tachycardia",
                s.extreme_tachy_bpm,
                lambda v: v > s.extreme_tachy_bpm,
                lambda v: v <= s.extreme_tachy_bpm,
            ),
        )
        delay = round(s.rate_delay_seconds * self.fs)
        hold = round(_RATE_END_HOLD_S * self.fs)
        if hr is None or self._rate_suspended():
            for name, *_ in limits:  # no evidence either way: timers restart, active alarms stay
                self._cond_since[name] = None
                self._clear_since[name] = None
            return events
        for name, limit, crossed, cleared in limits:
            if name in self.active:
                if cleared(hr):
                    since = self._clear_since.get(name)
                    since = self._stop if since is None else since
                    self._clear_since[name] = since
                    if self._stop - since >= hold:
                        events.append(self._end(name, self._stop, round(hr, 1), f"heart rate {hr:.0f} bpm"))
                else:
                    self._clear_since[name] = None
                continue
            if not self._on(name) or superseded or not crossed(hr):
                self._cond_since[name] = None
                continue
            since = self._cond_since.get(name)
            since = self._stop if since is None else since
            self._cond_since[name] = since
            if self._stop - since >= delay:
                side = "below" if "brady" in name else "above"
                events.append(
                    self._onset(
                        name,
                        self._stop,
                        round(hr, 1),
                        limit,
                        f"heart rate {hr:.0f} bpm, {side} {limit:g} bpm for {s.rate_delay_seconds:g} s",
                    )
                )
        return events

    def _ventricular(self, new: list[_Beat], horizon: int) -> list[AlarmEvent]:
        """Runs of ventricular beats among ``new`` (in order); a run with no beat for ``_RUN_GAP_S``
        before ``horizon`` (where the beats, or their labels, are complete) is over.

        With beat labels a beat is ventricular when the model labels it V or gives it P(V) of at least
        ``ventricular_probability`` (``_take_labelled``: the V label's threshold is chosen for windows).
        A run is judged by its mean rate, as monitors do: a V beat goes on with it within
        ``_RUN_RR_SLACK`` × the VT interval (a VT whose RR alternates around the limit, DS1 223's, is one),
        and both alarms need the run's mean rate at ``vtach_rate_bpm``. A run may hold single
        non-ventricular beats that come at the VT rate themselves (two in a row end it), and it is a VT
        once ``vtach_beats`` of its beats are ventricular: inside a run the beat
        model's prematurity cues fade (each beat is "on time" for the run), and out of sample it labels
        every other VT beat or the run's tail N (patient-wise CV on DS1: 1 of 7 VT runs as six V labels
        in a row). A VT also needs the model to be sure of them (mean P(V) of the run's ventricular beats
        at least ``vtach_confidence``; with 2.1.0's fold bundles the true vtach onsets of DS1 and SVDB had
        0.86 or more, the false ones of aberrant APCs (207) and fusion beats (208) 0.60-0.70); a run it
        is unsure of is reported as a ``ventricular_run`` (one for the whole run, through its gap beats,
        while a short run's keeps to consecutive V beats). So is an
        irregular run in atrial fibrillation (RR coefficient of variation ≥ ``vtach_af_rr_cv``): the
        clinical rule that VT is regular and an irregularly irregular wide-complex tachycardia is AF
        conducted with aberrancy (DS1 203, AF with aberrant beats the model calls V). And so is a run
        whose newest ``vtach_beats`` beats lie in muscle noise (more than ``vtach_max_noise`` of their
        signal's power above 20 Hz): the detector's beats there are the noise's spikes, which the
        model, finding them unlike the patient's beat, calls V (SVDB 854, 860); a VT's power lies
        below 20 Hz, and one that outlasts the noise is raised once its newest beats are clear of it."""
        s = self.settings
        events: list[AlarmEvent] = []
        vt_rr = 60.0 / s.vtach_rate_bpm * self.fs
        for beat in new:
            last = self._gap_beat if self._gap_beat is not None else (self._run[-1] if self._run else None)
            rr = beat.seq - last if last is not None else None
            on_time = rr is not None and rr <= vt_rr * _RUN_RR_SLACK  # a V beat goes on with the run
            fast = rr is not None and rr <= vt_rr * 1.0001  # a beat not V must be at the VT rate itself
            if beat.ventricular and self._run and on_time:
                if self._gap_beat is not None:
                    self._run.append(self._gap_beat)
                    self._gap_beat = None
                    self._consecutive_v = 0
                self._run.append(beat.seq)
                self._run_v += 1
                self._run_p_v += beat.p_v
                self._consecutive_v += 1
            elif (
                not beat.ventricular and self._run and fast and self.labelled_beats and self._gap_beat is None
            ):
                self._gap_beat = beat.seq  # perhaps a VT beat the model missed: the next beat tells
                events += self._short_run_over(beat.seq)
                continue
            else:
                slow = not (on_time if beat.ventricular else fast)
                why = "the rate fell" if self._run and slow else "a non-ventricular beat"
                events += self._run_over(beat.seq if self._gap_beat is None else self._gap_beat, why)
                self._start_run(beat)
                continue
            events += self._run_alarms(beat.seq)
        if self._run and horizon - self._run[-1] > _RUN_GAP_S * self.fs:
            events += self._run_over(self._run[-1], "no further beat")
            self._start_run(None)
        return events

    def _start_run(self, beat: _Beat | None) -> None:
        first = beat is not None and beat.ventricular
        self._run = [beat.seq] if first and beat is not None else []
        self._run_v = self._consecutive_v = int(first)
        self._run_p_v = beat.p_v if first and beat is not None else 0.0
        self._gap_beat = None
        self._aberrant_cv = None
        self._noisy = None
        self._unsure = None

    def _run_alarms(self, at: int) -> list[AlarmEvent]:
        """Onsets for the run as it stands after its newest V beat."""
        s = self.settings
        if self._rate_suspended() or "vfib" in self.active or self._vf_since is not None:
            return []  # no VT on top of VF: it supersedes
        n = len(self._run)
        rate = 60.0 * (n - 1) * self.fs / (self._run[-1] - self._run[0]) if n > 1 else 0.0
        if rate < s.vtach_rate_bpm * 0.9999:
            return []  # the run's mean rate: not (yet) fast enough for either alarm
        events: list[AlarmEvent] = []
        mean_p_v = self._run_p_v / self._run_v if self._run_v else 0.0
        confident = mean_p_v >= s.vtach_confidence
        rr_cv = 0.0
        if self._in_af and n >= 3:
            rr = np.diff(np.asarray(self._run, dtype=np.float64))
            rr_cv = float(rr.std() / rr.mean())
        aberrant = rr_cv >= s.vtach_af_rr_cv  # irregular in AF: conducted with aberrancy, not VT
        held_back = aberrant and confident and self._run_v >= s.vtach_beats and "vtach" not in self.active
        self._aberrant_cv = rr_cv if held_back else None  # as the run stands now: it may turn regular
        # Muscle noise, over the run's newest beats (a VT outlasting a burst is raised once clear of it):
        # a VT-length run in noise is held back as a ventricular_run that says why; a shorter one is the
        # noise's spikes, not ectopy, and raises nothing (with NSTDB muscle noise 79 of DS1's 302 false
        # ventricular runs and 2 of its 53 true; SVDB 115 of 542, 3 of 43).
        vt_length = self._run_v >= s.vtach_beats
        judged = "vtach" not in self.active and (
            (vt_length and confident and not aberrant)
            or (not vt_length and self._consecutive_v >= 3 and "ventricular_run" not in self.active)
        )
        noise = self._run_noise(at) if judged else 0.0
        noisy = noise > s.vtach_max_noise
        self._noisy = noise if noisy and vt_length else None
        self._unsure = mean_p_v if vt_length and not confident and self.labelled_beats else None
        if (
            vt_length
            and confident
            and not aberrant
            and not noisy
            and self._on("vtach")
            and "vtach" not in self.active
        ):
            if "ventricular_run" in self.active:
                events.append(self._end("ventricular_run", at, n, "became a ventricular tachycardia"))
            beats = self._run_beats()
            events.append(
                self._onset(
                    "vtach",
                    at,
                    round(rate, 1),
                    s.vtach_rate_bpm,
                    f"{beats} at {rate:.0f} bpm{self._rule(mean_p_v)}",
                )
            )
        elif (
            # a VT-length run held back (unsure, aberrant or in noise), or 3+ V beats in a row out of noise
            ((vt_length and (not confident or aberrant or noisy)) or (self._consecutive_v >= 3 and not noisy))
            and "vtach" not in self.active
            and self._on("ventricular_run")
            and "ventricular_run" not in self.active
        ):
            beats = self._run_beats() if vt_length else f"{self._consecutive_v} ventricular beats"
            events.append(
                self._onset(
                    "ventricular_run",
                    at,
                    round(rate, 1),
                    s.vtach_rate_bpm,
                    f"{beats} at {rate:.0f} bpm{self._rule()}{self._held_back_note()}",
                )
            )
        return events

    def _run_beats(self) -> str:
        """The run's beats as its record counts them: the ones the model did not call V said so."""
        n = len(self._run)
        return f"{n} ventricular beats" if self._run_v == n else f"{n} beats ({self._run_v} ventricular)"

    def _short_run_over(self, at: int) -> list[AlarmEvent]:
        """A beat not labelled V ends a short run's ventricular_run (consecutive V beats); a VT-length
        run goes on through it, and so does the ventricular_run standing for one held back from VT
        (one episode per run, not one per stretch between the beats the model did not call V)."""
        self._consecutive_v = 0
        held_vt = self._run_v >= self.settings.vtach_beats
        if "ventricular_run" in self.active and "vtach" not in self.active and not held_vt:
            n = len(self._run)
            return [self._end("ventricular_run", at, n, f"run over ({n} beats): a non-ventricular beat")]
        return []

    def _rule(self, mean_p_v: float | None = None) -> str:
        if self.labelled_beats:
            sure = "" if mean_p_v is None else f", mean P(V) {mean_p_v:.2f}"
            p = self.settings.ventricular_probability
            return f" (beats labelled V, or P(V) ≥ {p:g}, by the beat classifier{sure})"
        return f" (wide-complex rule: QRS ≥ {self.settings.vtach_width_ms:g} ms; beats not classified)"

    def _held_back_note(self) -> str:
        if self._noisy is not None:
            return (
                f"; not a VT: {100 * self._noisy:.0f} % of the run's signal power above "
                f"{_RUN_NOISE_CUTOFF_HZ:g} Hz (max {100 * self.settings.vtach_max_noise:.0f} %), "
                "muscle noise?"
            )
        if self._aberrant_cv is not None:
            return f"; not a VT: irregular in AF (RR CV {self._aberrant_cv:.2f}), aberrant conduction?"
        if self._unsure is not None:
            return (
                f"; not a VT: the beat classifier unsure (mean P(V) {self._unsure:.2f}, "
                f"vtach_confidence {self.settings.vtach_confidence:g})"
            )
        return ""

    def _run_noise(self, at: int) -> float:
        """Share of the power above ``_RUN_NOISE_CUTOFF_HZ`` in the signal of the run's newest
        ``vtach_beats`` beats (from just before the first of them to just after ``at``); 0 when less
        than a second of it is still in the history, so a run that cannot be judged is not held back."""
        first = self._run[-min(len(self._run), self.settings.vtach_beats)]
        edge = round(_RUN_NOISE_EDGE_S * self.fs)
        x, ok = self._history(first - edge)
        cut = max(0, self._stop - (at + edge))  # the history runs on past the run's newest beat
        x, ok = x[: x.size - cut], ok[: ok.size - cut]
        if x.size < self.fs or ok.mean() < 0.9:
            return 0.0
        if not ok.all():
            x = np.where(ok, x, np.median(x[ok]))
        return noise_power_fraction(x.astype(np.float64), self.fs, _RUN_NOISE_CUTOFF_HZ)

    def _run_over(self, at: int, why: str) -> list[AlarmEvent]:
        n = len(self._run)
        return [
            self._end(name, at, n, f"run over ({n} beats): {why}{self._held_back_note()}")
            for name in ("vtach", "ventricular_run")
            if name in self.active
        ]

    def _vf(self) -> list[AlarmEvent]:
        s = self.settings
        n = int(_VF_WINDOW_S * self.fs)
        x, ok = self._history(self._stop - n)
        events: list[AlarmEvent] = []
        m = None
        if x.size == n and ok.all():
            m = vf.measure(x, self.fs)
        elif x.size == n and ok.mean() > 0.9:
            m = vf.measure(np.where(ok, x, np.median(x[ok])), self.fs)
        like = m is not None and m.is_vf(s.vfib_max_leakage, s.vfib_min_amplitude_mv, _VF_BAND_HZ)
        if like:
            self._vf_last = m
            self._vf_since = self._vf_since if self._vf_since is not None else self._stop
            self._vf_clear_since = None
        else:
            self._vf_since = None
            if "vfib" in self.active:
                self._vf_clear_since = (
                    self._vf_clear_since if self._vf_clear_since is not None else self._stop
                )
                if self._stop - self._vf_clear_since >= _VF_END_HOLD_S * self.fs:
                    events.append(self._end("vfib", self._stop, None, "the signal no longer looks like VF"))
        if (
            like
            and self._on("vfib")
            and "vfib" not in self.active
            and self._stop - self._vf_since >= s.vfib_seconds * self.fs
        ):
            assert m is not None
            events.append(
                self._onset(
                    "vfib",
                    self._stop,
                    round(m.frequency_hz, 2),
                    s.vfib_max_leakage,
                    f"coarse oscillation at {m.frequency_hz:.1f} Hz ({60 * m.frequency_hz:.0f}/min), "
                    f"{m.amplitude_mv:.2f} mV, VF-filter leakage {m.leakage:.2f} "
                    f"(VF below {s.vfib_max_leakage:g})",
                )
            )
            for name in (
                "asystole",
                "pause",
                "bradycardia",
                "extreme_bradycardia",
                "tachycardia",
                "extreme_tachycardia",
            ):
                if name in self.active:
                    events.append(self._end(name, self._stop, None, "superseded by VF"))
        return events

    def _afib(self, af: bool, at: int) -> list[AlarmEvent]:
        s = self.settings
        if af:
            self._af_count += 1
            self._non_af_count = 0
        else:
            self._non_af_count += 1
            self._af_count = 0
        if self._af_count >= s.afib_windows:
            self._in_af = True
        elif self._non_af_count >= s.afib_windows:
            self._in_af = False
        if af and self._af_count >= s.afib_windows and self._on("afib") and "afib" not in self.active:
            return [
                self._onset(
                    "afib", at, self._af_count, s.afib_windows, f"{self._af_count} consecutive AF windows"
                )
            ]
        if not af and "afib" in self.active and self._non_af_count >= s.afib_windows:
            return [self._end("afib", at, None, f"{self._non_af_count} consecutive windows without AF")]
        return []

    def _reset_conditions(self) -> None:
        self._cond_since.clear()
        self._clear_since.clear()
        self._vf_since = None
        self._start_run(None)
        self._blind_reason = None

    # -- records ---------------------------------------------------------------------------------
    def _onset(
        self, name: str, seq: int, value: float | None, threshold: float | None, detail: str
    ) -> AlarmEvent:
        alarm_id = f"{self.id_prefix}{name}-{seq}"
        self.active[name] = _Active(seq, alarm_id, value)
        return AlarmEvent(
            name,
            "onset",
            PRIORITY[name],
            TECHNICAL if name in TECHNICAL_ALARMS else PHYSIOLOGICAL,
            alarm_id,
            seq,
            seq,
            self._stop,
            value,
            threshold,
            UNITS.get(name),
            None,
            detail,
        )

    def _end(self, name: str, seq: int, value: float | None, detail: str) -> AlarmEvent:
        a = self.active.pop(name)
        seq = max(seq, a.onset_seq)
        if name in ("asystole", "pause") and value is None:
            value = round((seq - (a.onset_seq - round(self._threshold(name) * self.fs))) / self.fs, 2)
        return AlarmEvent(
            name,
            "end",
            PRIORITY[name],
            TECHNICAL if name in TECHNICAL_ALARMS else PHYSIOLOGICAL,
            a.alarm_id,
            a.onset_seq,
            seq,
            self._stop,
            value,
            None,
            UNITS.get(name),
            (seq - a.onset_seq) / self.fs,
            detail,
        )


SETTING_NAMES = tuple(f.name for f in fields(AlarmSettings))
