"""Online QRS detection: R-peak sequence numbers from the sample stream, one block at a time.

A Pan–Tompkins / Hamilton–Tompkins detector made for a stream: band-pass, derivative, square,
moving-window integration, then adaptive signal/noise peak levels, a refractory period, T-wave
discrimination by slope, a P-wave hold-back, and search-back for a beat missed after a long RR.

Why it is built the way it is:

- **Exact across block boundaries.** Every filter is a linear-phase FIR with *integer* coefficients
  run on integer microvolts (``np.convolve``/``cumsum`` on int64), so a filtered sample does not
  depend on where a block started (floating-point sums would, by an ulp, and an ulp can flip a
  threshold). Decisions are taken in time order over *candidates* (local maxima of the integrated
  signal, a few per second), each once enough look-ahead has arrived, and the search-back runs at
  deadlines on the sample grid, not at block ends. The same beats come out whatever the block size.
- **Bounded delay.** An ordinary beat is returned at most 0.84 s after its R peak (filter delay,
  look-ahead, the 250-ms P-wave hold-back); a beat found by search-back, or during the 2-s learning
  phase after a start, a reset or a long gap, at most ``delay_samples`` after it (2.84 s: the
  ``horizon_s`` more).
- **Gaps never make beats.** Missing samples are held at the last valid value for the filters.
  A short run (≤ ``gap_max_s``) is bridged, and no R peak is ever placed on a missing sample. A longer
  run blanks every candidate whose filters saw it, and the RR history restarts after it (no
  search-back or refractory period across a gap); the signal and noise levels are kept, so the
  first clean beat after the gap is found at once (re-acquisition = the filters' settling time, ~0.4 s).
- **Never a beat from a flat line.** An absolute floor (``min_qrs_mv``, calibrated at start-up by
  running the filters over a synthetic QRS) keeps the threshold above ADC quantisation noise, and
  levels decay when no beat is found, so a sudden drop in amplitude is re-acquired. A search-back's
  lower threshold (half the threshold) stops at the floor too: it once took muscle noise in MIT-BIH
  207's 2.51-s pause for a beat.

Pure numpy, no threads, clock or I/O; ``bench/qrs_accuracy.py`` measures it against the reference
annotations and the peer detectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from ecgd.analysis.gaps import missing_runs

_UV_PER_MV = 1000  # input is quantised to integer microvolts: below every ADC's LSB (8-bit: 11.7 µV)
_CLIP_MV = 30.0  # body-surface ECG never exceeds this; keeps the int64 sums far from overflow
_TAP_SCALE = 1 << 12  # FIR coefficients are rounded to 1/4096: < 0.1 % ripple on the response
_LEVEL_WEIGHT = 0.125  # running signal/noise levels: 1/8 new peak (Pan–Tompkins)
_SEARCHBACK_WEIGHT = 0.25  # a search-back beat moves the signal level faster (Pan–Tompkins)
_RR_HISTORY = 8  # RR average over the last 8 intervals
_WIDTH_FRACTION = (1, 5)  # QRS onset/offset: the slope falls below 1/5 of its peak
_R_LOWPASS_HZ = 30.0  # the R peak is located on the signal low-passed at 30 Hz, minus its 200-ms mean


@dataclass(frozen=True)
class QrsSettings:
    """Detector tuning; YAML ``beats.<field>``. Defaults chosen by ``bench/qrs_accuracy.py`` (README)."""

    band_low_hz: float = 5.0  # QRS energy sits at 5-20 Hz; P/T waves and baseline below, EMG above
    band_high_hz: float = 20.0
    filter_s: float = 0.2  # FIR length: sets how sharp the band edges are and half of it is delay
    integration_s: float = 0.15  # moving-window integration: about the widest QRS
    refractory_s: float = 0.19  # no second QRS within 190 ms (300 bpm, a 200-ms RR, still fits at 128 Hz)
    t_wave_s: float = 0.36  # a peak this soon after a beat must be as steep as a QRS, or it is a T wave
    t_wave_slope_ratio: float = 0.5  # ... at least this fraction of the last QRS's steepest slope
    # Peaks are compared as (integrated energy) ** exponent: 1 is Pan–Tompkins' energy; 0.5 is amplitude-
    # like and keeps small aberrant and ectopic beats within reach of the threshold.
    envelope_exponent: float = 0.5
    threshold_fraction: float = 0.3125  # threshold = noise + this x (signal - noise) (Hamilton–Tompkins)
    p_wave_s: float = 0.25  # a beat is held this long: if a much stronger complex follows ...
    p_wave_ratio: float = 1.25  # ... (this many times its height) it was a P wave (or an artefact)
    searchback_rr: float = 1.66  # search back when no beat for this many average RR intervals
    searchback_fraction: float = 0.5  # ... for the largest peak above this fraction of the threshold
    horizon_s: float = 2.0  # longest look back (learning, search-back): bounds the delay
    min_qrs_mv: float = 0.08  # a QRS smaller than this (equivalent amplitude) is never detected
    gap_max_s: float = 0.02  # missing runs up to this are bridged; longer ones blank the detector

    def problems(self) -> list[str]:
        """Every out-of-range field as ``'<field>: why'`` (a config loader reports them all at once)."""
        found = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                found.append(f"{f.name}: {value!r} must be a number > 0")
        if found:
            return found
        if not self.band_low_hz < self.band_high_hz:
            found.append(
                f"band_high_hz: {self.band_high_hz!r} must exceed band_low_hz ({self.band_low_hz!r})"
            )
        for name in ("t_wave_slope_ratio", "threshold_fraction", "searchback_fraction", "envelope_exponent"):
            if not getattr(self, name) <= 1.0:
                found.append(f"{name}: {getattr(self, name)!r} must be ≤ 1")
        if not self.p_wave_ratio >= 1.0:
            found.append(f"p_wave_ratio: {self.p_wave_ratio!r} must be ≥ 1")
        if not self.searchback_rr > 1.0:
            found.append(f"searchback_rr: {self.searchback_rr!r} must be > 1")
        if not self.t_wave_s >= self.refractory_s:
            found.append(f"t_wave_s: {self.t_wave_s!r} must be ≥ refractory_s ({self.refractory_s!r})")
        return found


@dataclass(frozen=True)
class DetectedBeats:
    """Beats confirmed by one ``process`` call, in detection order (search-back beats may come late)."""

    seq: np.ndarray  # int64: the R peak's sample sequence number (absolute, the sampler's grid)
    amplitude_mv: np.ndarray  # float64: |R peak| above the 200-ms mean around it, mV (low-passed at 30 Hz)
    width_ms: np.ndarray  # float64: QRS width estimate from the slope envelope (NaN: not measurable)

    def __len__(self) -> int:
        return int(self.seq.size)

    @staticmethod
    def empty() -> DetectedBeats:
        return DetectedBeats(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


@dataclass
class _Candidate:
    """A local maximum of the integrated signal and what is measured around it."""

    peak: int  # seq of the integrated signal's maximum
    height: float  # integrated signal there, in units of a 1-mV reference QRS
    r: int  # seq of the R peak (max |band-passed|, never a missing sample); -1: none
    slope: float  # steepest |derivative| around it (T-wave discrimination)
    amplitude_mv: float
    width_ms: float


@dataclass
class _Levels:
    """Adaptive state of the decision stage (survives gaps, not resets)."""

    signal: float = 0.0
    noise: float = 0.0
    learned: bool = False
    rr: list[int] = field(default_factory=list)


class QrsDetector:
    """Stateful streaming detector: feed contiguous blocks, get each beat once, whatever the hop."""

    def __init__(self, fs: float, settings: QrsSettings = QrsSettings()) -> None:
        problems = settings.problems()
        if not (isinstance(fs, (int, float)) and math.isfinite(fs) and fs >= 100.0):
            problems.append(f"fs: {fs!r} Hz is not usable (need ≥ 100 Hz)")
        elif settings.band_high_hz >= fs / 2:
            problems.append(f"band_high_hz: {settings.band_high_hz!r} must be below fs/2 ({fs / 2:g})")
        if problems:
            raise ValueError("; ".join(problems))
        self.fs = float(fs)
        self.settings = settings
        s = settings
        self._bp_taps, self._d_taps, self._r_taps = _design(self.fs, s)
        self._n_taps = self._bp_taps.size
        self._g = (self._n_taps - 1) // 2  # linear-phase delay of both FIRs
        self._h = max(1, round(s.integration_s * self.fs / 2))  # half-width of the centred integration
        self._w_peak = max(1, round(0.1 * self.fs))  # candidate: the largest sample within ±100 ms
        self._r_half = max(1, round(0.1 * self.fs))  # R peak: within ±100 ms of the integration peak
        self._w_half = max(2, round(0.15 * self.fs))  # width measured within ±150 ms of the R peak
        self._env = max(1, round(0.012 * self.fs))  # slope-envelope smoothing for the width (±12 ms)
        self._gap_max = max(0, round(s.gap_max_s * self.fs))
        self._refractory = round(s.refractory_s * self.fs)
        self._t_wave = round(s.t_wave_s * self.fs)
        self._p_wave = round(s.p_wave_s * self.fs)
        self._horizon = round(s.horizon_s * self.fs)
        self._floor = s.min_qrs_mv ** (2 * s.envelope_exponent)  # heights: relative to a 1-mV reference QRS
        self._dscale, self._mref = self._calibrate()
        # Look-ahead past a candidate before it is decided: its ±100 ms peak window, the R search and
        # the width measurement, and the longest run that could still turn into a long gap.
        # A missing sample at seq q reaches the candidates within g + reach of it.
        self._reach = max(self._w_peak + self._h, self._r_half + self._w_half + self._env)
        self._ahead = self._reach + self._gap_max + 1
        self.delay_samples: int = self._g + self._ahead + 2 * self._r_half + self._p_wave + self._horizon
        self.reset(0)

    # ------------------------------------------------------------------ public API

    def reset(self, next_seq: int) -> None:
        """Forget everything (filters, levels, RR): after an unreadable stretch, leads off, a restart."""
        self._next = int(next_seq)
        self._x_hist: np.ndarray | None = None  # last n_taps-1 input µV (hold-filled)
        self._last_valid_uv = 0
        self._sq_hist = np.zeros(2 * self._h, np.int64)
        self._start = int(next_seq)  # first input seq of this run
        # Time-aligned history (index 0 = seq self._buf0) of band-passed, derivative, squared-derivative
        # integrated, and validity, in the FIRs' compensated time.
        self._buf0 = int(next_seq)
        self._b = np.zeros(0, np.int64)
        self._d = np.zeros(0, np.int64)
        self._m = np.zeros(0, np.int64)
        self._valid = np.zeros(0, bool)
        self._valid_seq0 = int(next_seq)  # validity is indexed by input seq
        self._run_start: int | None = None  # start of the missing run touching the end of the input
        # Long gaps: [lo, hi) candidate seqs blanked, the run's first seq, RR restarted yet.
        self._blanks: list[list] = []
        self._cand_from = int(next_seq) + self._n_taps + 2 * self._h  # filters settled from here
        self._learn_until = self._cand_from + self._horizon
        self._levels = _Levels()
        self._pending: list[_Candidate] = []  # candidates of the learning phase, not yet decided
        self._noise: list[_Candidate] = []  # rejected candidates since the last beat (search-back)
        self._last: _Candidate | None = None
        self._deadline: int | None = None
        self._out: list[_Candidate] = []
        self._held: tuple[_Candidate, tuple] | None = None  # the newest beat, until _p_wave has passed

    def process(self, first_seq: int, mv: np.ndarray, valid: np.ndarray | None = None) -> DetectedBeats:
        """Feed the next contiguous block; return the beats this call confirms.

        ``mv``: electrode millivolts; ``valid``: False where the sampler counted a missing sample (its
        value is ignored, NaN is fine there). ``first_seq`` must continue the previous call.
        """
        if first_seq != self._next:
            raise ValueError(
                f"block starts at seq {first_seq}, expected {self._next} (call reset() after a jump)"
            )
        x = np.asarray(mv, dtype=np.float64).ravel()
        ok = np.ones(x.size, bool) if valid is None else np.asarray(valid, dtype=bool).ravel()
        if ok.size != x.size:
            raise ValueError(f"valid has {ok.size} flags for {x.size} samples")
        ok = ok & np.isfinite(x)
        if x.size == 0:
            return DetectedBeats.empty()
        self._next += x.size
        uv = self._hold(x, ok)
        self._track_gaps(first_seq, ok)
        self._filter(uv, ok)
        self._decide()
        out, self._out = self._out, []
        if not out:
            return DetectedBeats.empty()
        return DetectedBeats(
            np.array([c.r for c in out], np.int64),
            np.array([c.amplitude_mv for c in out]),
            np.array([c.width_ms for c in out]),
        )

    # ------------------------------------------------------------------ filtering

    def _calibrate(self) -> tuple[int, float]:
        """Scale of the squared derivative, and the integrated height of a 1-mV reference QRS.

        The reference is a 1-mV, 90-ms triangle-like Gaussian complex: heights are expressed relative
        to it, so thresholds mean the same at 128 Hz and 360 Hz.
        """
        n = round(2 * self.fs)
        t = (np.arange(n) - n // 2) / self.fs
        qrs_uv = np.round(1000.0 * np.exp(-0.5 * (t / 0.015) ** 2)).astype(np.int64)
        d = np.convolve(qrs_uv, self._d_taps)
        dscale = max(1, int(np.abs(d).max()) // 2000)  # 1-mV QRS: |d| ~ 2000 after scaling
        sq = (d // dscale) ** 2
        m = np.convolve(sq, np.ones(2 * self._h + 1, np.int64))
        return dscale, float(m.max())

    def _hold(self, x: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Integer µV with missing samples held at the last valid value (the filters need a number)."""
        uv = np.round(np.clip(np.where(ok, x, 0.0), -_CLIP_MV, _CLIP_MV) * _UV_PER_MV).astype(np.int64)
        if self._x_hist is None:  # start: as if the first valid value had always been there (no step)
            self._last_valid_uv = int(uv[np.flatnonzero(ok)[0]]) if ok.any() else 0
            self._x_hist = np.full(self._n_taps - 1, self._last_valid_uv, np.int64)
        if not ok.all():
            idx = np.where(ok, np.arange(x.size), -1)
            np.maximum.accumulate(idx, out=idx)
            uv = np.where(idx >= 0, uv[np.maximum(idx, 0)], self._last_valid_uv)
        self._last_valid_uv = int(uv[-1])
        return uv

    def _track_gaps(self, first_seq: int, ok: np.ndarray) -> None:
        """Blank the candidates whose filters saw a missing run longer than ``gap_max``."""
        if ok.all() and self._run_start is None:
            return
        starts, ends = missing_runs(first_seq, ok, self._run_start)  # joined to one left open before
        self._run_start = None
        block_end = first_seq + ok.size
        for lo, hi in zip(starts, ends, strict=True):
            open_run = hi == block_end
            if hi - lo > self._gap_max:
                blank_hi = math.inf if open_run else hi + self._g + self._reach
                if self._blanks and self._blanks[-1][2] == lo:  # the same run, seen again
                    self._blanks[-1][1] = blank_hi
                else:
                    self._blanks.append([lo - self._g - self._reach, blank_hi, lo, False])
            if open_run:
                self._run_start = lo

    def _filter(self, uv: np.ndarray, ok: np.ndarray) -> None:
        """Run the integer FIRs over the block and append their outputs to the aligned history."""
        buf = np.concatenate([self._x_hist, uv])
        self._x_hist = buf[-(self._n_taps - 1) :]
        b = np.convolve(buf, self._r_taps, "valid")
        d = np.convolve(buf, self._d_taps, "valid") // self._dscale
        sq = d * d
        sqbuf = np.concatenate([self._sq_hist, sq])
        self._sq_hist = sqbuf[-2 * self._h :]
        c = np.cumsum(np.r_[np.int64(0), sqbuf])
        w = 2 * self._h + 1
        m = c[w:] - c[:-w]  # centred integration: m[k] covers sq[k-h .. k+h]
        # b, d: first value belongs to compensated seq (block start - g); m lags a further h.
        self._b = np.concatenate([self._b, b])
        self._d = np.concatenate([self._d, d])
        self._m = np.concatenate([self._m, m])
        self._valid = np.concatenate([self._valid, ok])

    # ------------------------------------------------------------------ decisions

    def _decide(self) -> None:
        """Find the new candidates that have their look-ahead, then decide them in time order."""
        end = self._next  # input available up to (excluding) this seq
        # Compensated seq of history index 0: b/d start at buf0 - g (first run) ... keep arithmetic simple:
        b0 = self._buf0 - self._g  # seq of self._b[0] and self._d[0]
        m0 = b0 - self._h  # seq of self._m[0] (centred on b[k - h]; the first h are start-up garbage)
        ready = end - self._g - self._ahead  # candidates before this seq can be decided
        lo = max(self._cand_from, m0 + self._w_peak)
        if ready > lo:
            m = self._m
            i0, i1 = lo - m0, ready - m0
            seg = m[i0 - self._w_peak : i1 + self._w_peak]
            win = 2 * self._w_peak + 1
            if seg.size >= win:
                view = np.lib.stride_tricks.sliding_window_view(seg, win)
                centre = view[:, self._w_peak]
                left = view[:, : self._w_peak].max(axis=1)
                right = view[:, self._w_peak + 1 :].max(axis=1)
                peaks = np.flatnonzero((centre > left) & (centre >= right) & (centre > 0)) + lo
                for p in peaks:
                    self._step(int(p))
            self._cand_from = ready
            self._until(ready)
        self._trim()

    def _measure(self, p: int) -> _Candidate | None:
        """R peak, slope, amplitude and width around an integration peak; None inside a blanked stretch."""
        for lo, hi, _, _ in self._blanks:
            if lo <= p < hi:
                return None
        b0 = self._buf0 - self._g
        m0 = b0 - self._h
        height = (float(self._m[p - m0]) / self._mref) ** self.settings.envelope_exponent
        a, z = p - self._r_half - b0, p + self._r_half + 1 - b0
        seg = np.abs(self._b[a:z])
        valid = self._valid[a + b0 - self._valid_seq0 : z + b0 - self._valid_seq0]
        if not valid.any():
            return None
        seg = np.where(valid, seg, -1)
        r = a + int(np.argmax(seg))
        slope = float(np.abs(self._d[a:z]).max())
        amplitude = float(abs(self._b[r])) / _TAP_SCALE / _UV_PER_MV
        return _Candidate(p, height, r + b0, slope, amplitude, self._width(r))

    def _width(self, r: int) -> float:
        """QRS width in ms: from the first to the last sample within ±150 ms of the R peak where the
        smoothed slope of the low-passed signal reaches 1/5 of its peak (the peak taken within ±50 ms);
        NaN if it is still that steep at ±150 ms. The band-passed slope would make wide beats look
        narrow (their energy lies below 5 Hz). MIT-BIH, 8-bit: N beats ~70 ms, V 135-200, LBBB ~170.
        """
        e = self._env
        a, z = r - self._w_half, r + self._w_half + 1
        if a - e - 1 < 0 or z + e + 1 > self._b.size:
            return math.nan
        x = self._b[a - e - 1 : z + e + 1]
        slope = np.abs(x[2:] - x[:-2])  # central difference, at samples a - e .. z + e - 1
        env = np.convolve(slope, np.ones(2 * e + 1, np.int64), "valid")  # at samples a .. z - 1
        centre = self._w_half
        near = self._r_half // 2
        top = int(env[centre - near : centre + near + 1].max())
        if top <= 0:
            return math.nan
        steep = np.flatnonzero(env * _WIDTH_FRACTION[1] >= top * _WIDTH_FRACTION[0])
        if steep[0] == 0 or steep[-1] == env.size - 1:
            return math.nan  # still steep at ±150 ms: not a measurable complex
        return 1000.0 * (steep[-1] - steep[0] + 1) / self.fs

    def _threshold(self) -> float:
        lv = self._levels
        return max(self._floor, lv.noise + self.settings.threshold_fraction * (lv.signal - lv.noise))

    def _step(self, p: int) -> None:
        """One candidate, in time order: deadlines before it first, then learning or the decision."""
        self._until(p)
        c = self._measure(p)
        if c is None:
            return
        if not self._levels.learned:
            self._pending.append(c)
            return
        self._decide_one(c)

    def _until(self, t: int) -> None:
        """Act on what falls due before seq ``t``: long gaps, the end of learning, search-back deadlines.

        A deadline is acted on once every candidate that could lie before it has been decided
        (candidates come in order of their integration peak, R peaks lie within ±r_half of it).
        """
        for blank in self._blanks:
            if not blank[3] and blank[0] < t:  # nothing is known across a long gap: restart RR
                blank[3] = True
                self._last = None
                self._deadline = None
                self._noise.clear()
                self._levels.rr.clear()
        while self._blanks and self._blanks[0][3] and self._blanks[0][1] <= t:
            self._blanks.pop(0)
        if self._held is not None and self._held[0].r + self._p_wave + self._r_half < t:
            self._release()
        if not self._levels.learned and t >= self._learn_until:
            self._learn()
        while self._levels.learned and self._deadline is not None and self._deadline < t - self._r_half:
            self._search_back(self._deadline)

    def _learn(self) -> None:
        """Initial levels from the learning phase's candidates, then decide them as usual."""
        lv = self._levels
        lv.learned = True
        heights = np.array([c.height for c in self._pending])
        if heights.size:
            lv.signal = 0.5 * float(heights.max())
            lv.noise = min(float(np.median(heights)), lv.signal) * 0.5
        pending, self._pending = self._pending, []
        for c in pending:
            self._decide_one(c)

    def _decide_one(self, c: _Candidate) -> None:
        lv = self._levels
        held = self._held
        if (
            held is not None
            and c.r - held[0].r < self._p_wave
            and c.height >= self.settings.p_wave_ratio * held[0].height
            and c.height >= self._threshold()
            and not self._is_t_wave(c)
        ):
            # The beat still held was the P wave of this much stronger complex: take it back.
            first, saved = held
            self._held = None
            lv.signal, lv.noise, lv.rr, self._last, self._deadline, self._noise = saved
            self._noise_peak(first)
        if self._last is not None and c.r - self._last.r < self._refractory:
            return
        if c.height < self._threshold() or self._is_t_wave(c):
            self._noise_peak(c)
            return
        # A beat after a long RR: first look back for the beats skipped in between (Pan–Tompkins).
        while self._last is not None and c.r - self._last.r > self._searchback_after():
            best = self._missed(c.r - self._refractory + 1)
            if best is None:
                break
            self._beat(best, _SEARCHBACK_WEIGHT)
        if self._is_t_wave(c):
            self._noise_peak(c)
            return
        self._beat(c, _LEVEL_WEIGHT)

    def _is_t_wave(self, c: _Candidate) -> bool:
        """Soon after a beat and much less steep than it: the beat's T wave, not a new QRS."""
        last = self._last
        return (
            last is not None
            and c.r - last.r < self._t_wave
            and c.slope < self.settings.t_wave_slope_ratio * last.slope
        )

    def _searchback_after(self) -> int:
        rr = np.mean(self._levels.rr) if self._levels.rr else 1.5 * self.fs  # 40 bpm until an RR is known
        return round(self.settings.searchback_rr * float(rr))

    def _noise_peak(self, c: _Candidate) -> None:
        lv = self._levels
        lv.noise += _LEVEL_WEIGHT * (c.height - lv.noise)
        self._noise.append(c)

    def _beat(self, c: _Candidate, weight: float) -> None:
        """Accept a beat; it is held back ``_p_wave`` in case a much stronger complex follows."""
        lv = self._levels
        self._release()
        later = [n for n in self._noise if n.r > c.r]  # still eligible for the next search-back
        self._held = (c, (lv.signal, lv.noise, list(lv.rr), self._last, self._deadline, list(self._noise)))
        lv.signal += weight * (c.height - lv.signal)
        if self._last is not None:
            lv.rr.append(c.r - self._last.r)
            del lv.rr[:-_RR_HISTORY]
        self._last = c
        self._noise = later
        self._deadline = c.r + self._searchback_after()

    def _release(self) -> None:
        if self._held is not None:
            self._out.append(self._held[0])
            self._held = None

    def _missed(self, before: int) -> _Candidate | None:
        """The largest skipped peak before seq ``before`` above the lower threshold, if any."""
        last = self._last
        th2 = max(self._floor, self.settings.searchback_fraction * self._threshold())
        best: _Candidate | None = None
        for c in self._noise:
            if c.r >= before or c.r < before - self._horizon or c.height < th2:
                continue
            if (last is not None and c.r - last.r < self._refractory) or self._is_t_wave(c):
                continue
            if best is None or c.height > best.height:
                best = c
        return best

    def _search_back(self, t: int) -> None:
        """No beat for ``searchback_rr`` RR intervals by seq ``t``: look back for one."""
        best = self._missed(t)
        if best is not None:
            self._beat(best, _SEARCHBACK_WEIGHT)
        else:  # nothing: the levels were too high for this signal; let them follow it down
            self._levels.signal *= 0.5
            self._levels.noise *= 0.5
            self._deadline = t + self._searchback_after()

    def _trim(self) -> None:
        """Keep only the history a future decision can look at (the horizon plus the windows)."""
        keep_from = (
            self._cand_from - self._horizon - 2 * (self._w_peak + self._r_half + self._w_half + self._env)
        )
        b0 = self._buf0 - self._g
        cut = keep_from - b0
        if cut > 4 * self._horizon:  # trim in chunks, not every call
            self._b = self._b[cut:]
            self._d = self._d[cut:]
            self._m = self._m[cut:]
            self._buf0 += cut
            vcut = self._buf0 - self._g - self._valid_seq0
            if vcut > 0:
                self._valid = self._valid[vcut:]
                self._valid_seq0 += vcut
        self._noise = [c for c in self._noise if c.r >= self._cand_from - 2 * self._horizon]


def _design(fs: float, s: QrsSettings) -> tuple[np.ndarray, np.ndarray]:
    """Integer taps of the band-pass and of its derivative (same length, same linear-phase delay).

    A Hamming-windowed sinc band-pass, normalised to unit gain at the band's centre, rounded to
    1/4096; the derivative is the band-pass convolved with a central difference. A third FIR, a
    low-pass (0-30 Hz) minus the 200-ms mean, keeps the QRS's shape for the R peak and its amplitude
    (the band-pass would move the fiducial to the steepest lobe).
    """
    n = max(5, round(s.filter_s * fs)) | 1
    k = np.arange(n) - (n - 1) / 2
    lo, hi = s.band_low_hz / fs, s.band_high_hz / fs
    h = (2 * hi * np.sinc(2 * hi * k) - 2 * lo * np.sinc(2 * lo * k)) * np.hamming(n)
    centre = math.sqrt(s.band_low_hz * s.band_high_hz) / fs
    gain = abs(np.sum(h * np.exp(-2j * np.pi * centre * np.arange(n))))
    bp = np.round(h / gain * _TAP_SCALE).astype(np.int64)
    bp = np.r_[0, bp, 0]
    d = np.convolve(np.round(h / gain * _TAP_SCALE).astype(np.int64), [1, 0, -1])
    lp = 2 * min(_R_LOWPASS_HZ / fs, 0.45) * np.sinc(2 * min(_R_LOWPASS_HZ / fs, 0.45) * k) * np.hamming(n)
    r = np.round((lp / lp.sum() - 1.0 / n) * _TAP_SCALE).astype(np.int64)
    return bp, d, np.r_[0, r, 0]
