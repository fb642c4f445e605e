"""Alarm benchmark: false alarms per hour, episode sensitivity and latency (issue 9).

Every record, and every constructed latency trial, goes through the AD8232 + 8-bit PCF8591 model and
the daemon's alarm path (``ecgd.alarm_replay``: the same QRS detector, beat labeller, window
classifier and ``AlarmEngine`` in 0.2-s blocks, with the bundled model unless ``--no-model``), at the
device's ``sampling.rate_hz`` (360 Hz): SVDB's 128 Hz records are resampled as the training tables
resample them (``--native-rate`` replays them as recorded). Scored against the reference beat and
rhythm annotations:

- **false alarms per hour**, per alarm, on MIT-BIH DS1 (22 records) and SVDB (58 records). An onset is
  *true* when the reference agrees at that moment: asystole — no reference beat in the
  ``asystole_seconds`` before it; pause — none in the ``pause_seconds`` − 0.2 s before it; vtach /
  ventricular_run — a run of ≥ 3 reference V beats, or a (VT/(VFL/(VF rhythm, within −3 … +1 s;
  vfib — (VFL/(VF/(VT within −5 … +2 s; bradycardia/tachycardia (and extreme) — the reference rate
  (mean of the 8 RR before the onset) beyond the limit with 5 bpm of slack, and a tachycardia (or
  extreme) inside a (VT/(VFL/(VF rhythm within −3 … +1 s (the reference marks flutter waves, not beats,
  there, but the ventricles are fast); afib — (AFIB/(AFL within
  the 30 s before. Technical alarms (leads_off, alarms_suspended) are counted, not judged. A false
  asystole also says how large the reference's beats before it are on the monitored lead
  (``lead_qrs_mv`` in the false log; the table counts those below ``SILENT_LEAD_MV`` at every beat)
  and whether the reference marks that signal noisy there (MIT-BIH's ``~`` annotations).
- **episode sensitivity**: reference runs of ≥ 6 V beats at ≥ 100 bpm (vtach or vfib raised or active
  within the run + 2 s), runs of 3-5 V beats (ventricular_run or vtach), RR > 2.5 s outside
  VF/flutter (pause or asystole, the gap + 1 s), the (VFL episodes of 207 (vfib, the episode + 5 s), and
  (AFIB/(AFL episodes of ≥ 60 s, joined across other rhythms shorter than 30 s (afib starting from 30 s
  before the episode to its end; with the delay from the episode's start to the onset, and from its
  end to the alarm's end).
- **latency**: a flat baseline with the front end's noise (electrodes on) at 20 random points of DS1
  records (seed 9; the trace returns to its baseline within 0.1 s, no step); constructed coarse VF
  at 10 random points; rate steps (the signal after a point time-compressed or stretched, as if
  played faster or slower).

    nice -n 10 .venv/bin/python bench/alarms.py [--data ../shared/data] [--quick] [--daemon]

``--daemon`` adds the latency on the daemon path: the daemon in real time with the emulated device
playing a constructed recording (~70 s). ``--config`` scores other alarm settings (e.g.
``alarms: {vtach_confidence: 0}``, the VT rule before that setting); ``--onset-log`` lists every
physiological onset with its judgement, e.g. to read the mean P(V) in the ``vtach`` details;
``--missed-log`` every reference VT run, short ventricular run and pause that no alarm found.
``--noise ma6`` adds NSTDB muscle noise (``bw``: baseline wander) at 6 dB SNR against the QRS before
the front end, 2 minutes on and 2 off after the first 5, as ``bench/qrs_accuracy.py`` does: what the
alarms do when the patient moves (DS1 with ``--quick``). ``--records mitdb/203,svdb/801`` scores only
those records (with ``--cv`` and ``--onset-log``: one patient's alarms, ~10 s a record).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecgd import config as cfg  # noqa: E402
from ecgd.alarm_replay import episodes, recording_events  # noqa: E402
from ecgd.analysis.alarms import TECHNICAL_ALARMS  # noqa: E402
from ecgd.io import synthetic as syn  # noqa: E402
from ecgd.io.records import Recording  # noqa: E402
from training.beat_data import resample  # noqa: E402

DS1 = "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()  # noqa: SIM905
BEATS = set("NLRBAaJSVFejnE/fQ?")
TABLE_COLUMN = {"mitdb": "mitdb DS1", "svdb": "svdb"}  # a database's column in the tables
VT_RHYTHMS = ("(VT", "(VFL", "(VF")
AF_RHYTHMS = ("(AFIB", "(AFL")
AF_BRIDGE_S = 30.0  # AF episodes of the reference joined across other rhythms shorter than this
# A QRS this small on the monitored lead is below what monitors count: their specifications give QRS
# detection from 0.5 mV and automatic minimum thresholds of about 0.15 mV (a Mindray manual: 0.16 mV). A false
# asystole with every reference beat below it is the lead going silent, which the annotators, who had a
# second lead, did not have to see: told apart in the table and the false log, still counted false.
SILENT_LEAD_MV = 0.15
QRS_HALF_S = 0.06  # the span around a reference beat its QRS amplitude is read over


def load(path: Path):
    import wfdb

    rec = wfdb.rdrecord(str(path), channels=[0])
    ann = wfdb.rdann(str(path), "atr")
    return rec, ann


def at_device_rate(mv: np.ndarray, fs: float, ann, rate_hz: float | None):
    """A record as the monitor samples it, at ``rate_hz`` (None: as recorded), its annotations moved
    with it, resampled as the training tables are (``training.beat_data.resample``): the beat model and
    its features were made at the device's rate; at 128 Hz a QRS is 8-10 samples wide and the template
    alignment (±14 ms) 2 samples."""
    if rate_hz is None or fs == rate_hz:
        return mv, fs, ann
    out, samples = resample(mv, fs, np.asarray(ann.sample), rate_hz)
    return out, rate_hz, SimpleNamespace(sample=samples, symbol=ann.symbol, aux_note=ann.aux_note)


def device_signal(path: Path, rate_hz: float | None, noise: str | None = None):
    """A record's first signal and annotations at ``rate_hz`` (``at_device_rate``), with NSTDB noise
    ``noise`` (e.g. ``ma6``: kind, SNR in dB) added as ``bench/qrs_accuracy.py`` adds it, if given."""
    rec, ann = load(path)
    mv, fs, ann = at_device_rate(rec.p_signal[:, 0], float(rec.fs), ann, rate_hz)
    if noise is not None:
        from qrs_accuracy import with_noise

        beats = np.asarray(ann.sample)[np.isin(np.array(ann.symbol), list(BEATS))]
        mv = with_noise(path.parent.parent, mv, fs, beats, noise[:2], float(noise[2:]))
    return mv, fs, ann


def fold_bundles(run: Path) -> dict[str, object]:
    """Each record of a ``train_beats`` run's cross-validation (``mitdb/101``, ...) -> the fold bundle
    that never saw that patient."""
    from ecgd.analysis.model import load_model

    folds = json.loads((run / "cv_metrics.json").read_text())["folds"]
    out: dict[str, object] = {}
    for k, rids in enumerate(folds):
        held_out = load_model(run / f"fold{k + 1}" / "default.tflite")
        out.update({rid: held_out for rid in rids})
    return out


class Reference:
    """Beats, V runs, long RRs and rhythm intervals of one record's annotations."""

    def __init__(self, ann, fs: float, n: int) -> None:
        sym = np.array(ann.symbol)
        samples = np.asarray(ann.sample)
        is_beat = np.isin(sym, list(BEATS))
        self.fs = fs
        self.beats = samples[is_beat]
        self.v = sym[is_beat] == "V"
        self.rhythms: list[tuple[str, int, int]] = []
        cur, start = None, 0
        for s, a in zip(samples, ann.aux_note, strict=True):
            a = (a or "").strip("\x00")
            if a.startswith("("):
                if cur is not None:
                    self.rhythms.append((cur, start, int(s)))
                cur, start = a, int(s)
        if cur is not None:
            self.rhythms.append((cur, start, n))
        self.runs: list[tuple[int, int, int, float]] = []  # (first, last, beats, rate)
        i = 0
        while i < self.v.size:
            if not self.v[i]:
                i += 1
                continue
            j = i
            while j + 1 < self.v.size and self.v[j + 1]:
                j += 1
            k = j - i + 1
            rate = 60.0 * (k - 1) * fs / (self.beats[j] - self.beats[i]) if k > 1 else 0.0
            self.runs.append((int(self.beats[i]), int(self.beats[j]), k, rate))
            i = j + 1
        self.noise0 = _noisy_first_signal(ann, samples, sym, n)
        rr = np.diff(self.beats)
        self.long_rr = [
            (int(a), int(b))
            for a, b, r in zip(self.beats[:-1], self.beats[1:], rr, strict=True)
            if r > 2.5 * fs
        ]

    def af_episodes(self, bridge_s: float = AF_BRIDGE_S) -> list[tuple[int, int]]:
        """(AFIB/(AFL stretches joined across other rhythms shorter than ``bridge_s``: in 203 the AF is
        annotated as 20 episodes cut by 1-4 s runs of VT, and an afib alarm that rightly stays on through
        them would otherwise miss every episode after the first (an episode is found by an onset)."""
        out: list[list[int]] = []
        for r, a, b in self.rhythms:
            if not r.startswith(AF_RHYTHMS):
                continue
            if out and a - out[-1][1] < bridge_s * self.fs:
                out[-1][1] = b
            else:
                out.append([a, b])
        return [(a, b) for a, b in out]

    def lead_noisy(self, lo: int, hi: int) -> bool:
        """The reference marks the monitored signal (the record's first) noisy or unreadable somewhere in
        ``[lo, hi)`` (MIT-BIH's ``~`` annotations; SVDB has none)."""
        return any(a < hi and b > lo for a, b in self.noise0)

    def rhythm_near(self, names, lo: int, hi: int) -> bool:
        return any(r.startswith(names) and s < hi and e > lo for r, s, e in self.rhythms)

    def v_run_near(self, lo: int, hi: int, min_beats: int = 3) -> bool:
        return any(k >= min_beats and a <= hi and b >= lo for a, b, k, _ in self.runs)

    def beats_in(self, lo: int, hi: int) -> int:
        return int(np.count_nonzero((self.beats >= lo) & (self.beats < hi)))

    def rate_at(self, seq: int) -> float | None:
        before = self.beats[self.beats <= seq][-9:]
        if before.size < 3:
            return None
        return 60.0 * self.fs / float(np.mean(np.diff(before)))


def _noisy_first_signal(ann, samples: np.ndarray, sym: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Stretches where a ``~`` annotation marks signal 0 noisy or unreadable, each until the next ``~``.
    WFDB's convention for its subtype: bits 0-3 mark signals 0-3 noisy, bits 4-7 unreadable, -1 all
    unreadable."""
    subtype = getattr(ann, "subtype", None)
    idx = np.flatnonzero(sym == "~")
    if subtype is None or idx.size == 0:
        return []
    ends = [*(int(samples[j]) for j in idx[1:]), n]
    kinds = np.asarray(subtype)[idx].astype(int)
    return [(int(samples[i]), e) for i, e, k in zip(idx, ends, kinds, strict=True) if k == -1 or k & 0x11]


def lead_qrs_mv(lead_mv: np.ndarray, beats: np.ndarray, fs: float) -> list[float]:
    """Each beat's peak-to-peak on the monitored lead (as the device digitised it) over ±``QRS_HALF_S``,
    the straight line between the span's ends taken off first: after a baseline jump the front end's
    recovery slope would otherwise read as a QRS."""
    h = round(QRS_HALF_S * fs)
    out = []
    for b in beats:
        seg = np.asarray(lead_mv[max(0, b - h) : b + h + 1], dtype=np.float64)
        if seg.size < 3:
            continue
        seg = seg - np.linspace(seg[0], seg[-1], seg.size)
        out.append(round(float(np.ptp(seg)), 3))
    return out


def judge(ep, ref: Reference, s) -> bool:
    """Is this onset true by the reference annotations (see the module docstring)?"""
    fs = ref.fs
    o = ep.onset.onset_seq
    a = ep.onset.alarm
    sec = lambda x: round(x * fs)  # noqa: E731
    if a == "asystole":
        return ref.beats_in(o - sec(s.asystole_seconds), o + 1) == 0
    if a == "pause":
        return ref.beats_in(o - sec(s.pause_seconds - 0.2), o + 1) == 0
    if a in ("vtach", "ventricular_run"):
        return ref.v_run_near(o - sec(3), o + sec(1)) or ref.rhythm_near(VT_RHYTHMS, o - sec(3), o + sec(1))
    if a == "vfib":
        return ref.rhythm_near(VT_RHYTHMS, o - sec(5), o + sec(2))
    if a == "afib":
        return ref.rhythm_near(AF_RHYTHMS, o - sec(30), o + 1)
    if a in ("tachycardia", "extreme_tachycardia") and ref.rhythm_near(VT_RHYTHMS, o - sec(3), o + sec(1)):
        return True  # VT or ventricular flutter/fibrillation: fast, though the reference marks no beats
    rate = ref.rate_at(o)
    if rate is None:
        return False
    limit = ep.onset.threshold
    return rate < limit + 5 if "brady" in a else rate > limit - 5


def active_between(eps, names, lo: int, hi: int) -> bool:
    for ep in eps:
        if ep.onset.alarm not in names:
            continue
        end = ep.end.seq if ep.end is not None else 1 << 62
        if ep.onset.onset_seq <= hi and end >= lo:
            return True
    return False


def score_record(
    path: Path,
    settings,
    model,
    stats,
    episodes_out,
    onsets_out=None,
    missed_out=None,
    native_rate: bool = False,
    noise: str | None = None,
) -> None:
    """Score one record into ``stats``, at the device's sampling rate unless ``native_rate``; its false
    onsets go to ``episodes_out``, every onset of a physiological alarm, judged (``true``), to
    ``onsets_out`` and every reference episode no alarm found to ``missed_out`` if given. ``noise``
    (e.g. ``ma6``): NSTDB noise of that kind added at that SNR (dB) before the front end, as
    ``bench/qrs_accuracy.py`` adds it."""
    mv, fs, ann = device_signal(path, None if native_rate else settings.sampling.rate_hz, noise)
    recording = Recording(mv, fs, path.name, "0")
    eps = episodes(recording_events(recording, settings, settings.analog_frontend, model))
    ref = Reference(ann, fs, mv.size)
    s = settings.alarms
    hours = mv.size / fs / 3600
    db = path.parent.name
    stats[db]["hours"] += hours
    lead = None  # the monitored lead as the device digitised it: read only for a false asystole
    for ep in eps:
        a = ep.onset.alarm
        stats[db][f"{a}:n"] += 1
        true = a in TECHNICAL_ALARMS or judge(ep, ref, s)
        if not true:
            stats[db][f"{a}:false"] += 1
            row = {"record": f"{db}/{path.name}", **ep.row()}
            if a == "asystole":
                if lead is None:
                    lead = settings.analog_frontend.simulate_mv(mv, fs)
                lo, hi = ep.onset.onset_seq - round(s.asystole_seconds * fs), ep.onset.onset_seq + 1
                amps = lead_qrs_mv(lead, ref.beats[(ref.beats >= lo) & (ref.beats < hi)], fs)
                silent = bool(amps) and max(amps) < SILENT_LEAD_MV
                stats[db]["asystole:silent_lead"] += silent
                stats[db]["asystole:noisy_lead"] += ref.lead_noisy(lo, hi)
                row |= {"lead_qrs_mv": amps, "reference_lead_noisy": ref.lead_noisy(lo, hi)}
            episodes_out.append(row)
        if onsets_out is not None and a not in TECHNICAL_ALARMS:
            onsets_out.append({"record": f"{db}/{path.name}", "true": true, **ep.row()})
        if a == "alarms_suspended" and ep.end is not None:
            stats[db]["suspended_s"] += ep.end.seq / fs - ep.onset.onset_seq / fs
    sec = lambda x: round(x * fs)  # noqa: E731

    def count(kind: str, found: bool, first: int, last: int, **what) -> None:
        stats[db][kind] += 1
        stats[db][f"{kind}:found"] += found
        if not found and missed_out is not None:
            missed_out.append(
                {"record": f"{db}/{path.name}", "episode": kind, "first": first, "last": last, **what}
            )

    for first, last, k, rate in ref.runs:
        if k >= s.vtach_beats and rate >= s.vtach_rate_bpm:
            found = active_between(eps, ("vtach", "vfib"), first, last + sec(2))
            count("vt_runs", found, first, last, beats=k, rate_bpm=round(rate, 1))
        elif 3 <= k < s.vtach_beats:
            found = active_between(eps, ("ventricular_run", "vtach", "vfib"), first, last + sec(2))
            count("v_runs", found, first, last, beats=k, rate_bpm=round(rate, 1))
    for a, b in ref.long_rr:
        if ref.rhythm_near(VT_RHYTHMS, a, b):
            continue  # no beat labels inside VF/flutter: that gap is not a pause
        found = active_between(eps, ("pause", "asystole"), a + sec(2.3), b + sec(1))
        count("pauses", found, a, b, rr_s=round((b - a) / fs, 3))
    for a, b in ref.af_episodes():  # AF episodes of at least a minute: found, and how late afib starts / ends
        if b - a < sec(60):
            continue
        stats[db]["af_eps"] += 1
        hits = [ep for ep in eps if ep.onset.alarm == "afib" and a - sec(30) <= ep.onset.onset_seq <= b]
        if hits:
            stats[db]["af_found"] += 1
            stats[db]["af_onset_s"] += (max(hits[0].onset.onset_seq, a) - a) / fs
            last = hits[-1].end.seq if hits[-1].end is not None else mv.size
            stats[db]["af_end_s"] += (last - b) / fs
    if path.name == "207":
        for r, a, b in ref.rhythms:
            if r.startswith("(VFL"):
                stats[db]["vfl"] += 1
                stats[db]["vfl_found"] += active_between(eps, ("vfib",), a, b + sec(5))


def pct(found: float, total: float) -> str:
    return f"{found:.0f}/{total:.0f} ({100 * found / total:.0f} %)" if total else "–"


def false_alarm_table(stats) -> str:
    names = [
        "asystole", "vfib", "vtach", "extreme_bradycardia", "extreme_tachycardia", "bradycardia",
        "tachycardia", "pause", "ventricular_run", "afib",
    ]  # fmt: skip
    rows = ["| alarm | " + " | ".join(f"{db}: onsets, false (false/h)" for db in stats) + " |"]
    rows.append("|---|" + "---|" * len(stats))
    for a in names:
        cells = []
        for st in stats.values():
            n, f = st[f"{a}:n"], st[f"{a}:false"]
            cell = f"{n:.0f}, {f:.0f} ({f / st['hours']:.2f}/h)"
            if a == "asystole" and f:
                cell += (
                    f"; the lead < {SILENT_LEAD_MV:g} mV at every reference beat: "
                    f"{st['asystole:silent_lead']:.0f}, marked noisy by the reference: "
                    f"{st['asystole:noisy_lead']:.0f}"
                )
            cells.append(cell)
        rows.append(f"| `{a}` | " + " | ".join(cells) + " |")
    for a in TECHNICAL_ALARMS:
        cells = [f"{st[f'{a}:n']:.0f} ({st[f'{a}:n'] / st['hours']:.1f}/h)" for st in stats.values()]
        rows.append(f"| `{a}` (technical: onsets) | " + " | ".join(cells) + " |")
    high = ("asystole", "vfib", "vtach", "extreme_bradycardia", "extreme_tachycardia")
    cells = []
    for st in stats.values():
        f = sum(st[f"{a}:false"] for a in high)
        cells.append(f"{f:.0f} in {st['hours']:.1f} h = {24 * f / st['hours']:.1f} per 24 h")
    rows.append("| **false high-priority** | " + " | ".join(cells) + " |")
    cells = [f"{100 * st['suspended_s'] / 3600 / st['hours']:.1f} %" for st in stats.values()]
    rows.append("| time with rate alarms suspended | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def sensitivity_table(stats) -> str:
    rows = ["| episodes | " + " | ".join(stats) + " |", "|---|" + "---|" * len(stats)]
    for label, n, f in (
        ("VT runs ≥ 6 V beats ≥ 100 bpm (vtach/vfib)", "vt_runs", "vt_runs:found"),
        ("ventricular runs of 3-5 V beats", "v_runs", "v_runs:found"),
        ("pauses: RR > 2.5 s (pause/asystole)", "pauses", "pauses:found"),
        ("(VFL episodes of 207 (vfib)", "vfl", "vfl_found"),
    ):
        rows.append(f"| {label} | " + " | ".join(pct(st[f], st[n]) for st in stats.values()) + " |")
    rows.append(
        "| AF episodes ≥ 60 s, joined across < 30 s of other rhythm (afib): found; "
        "mean delay of onset / of end after the episode's | "
        + " | ".join(
            f"{pct(st['af_found'], st['af_eps'])}; {st['af_onset_s'] / st['af_found']:.0f} s / "
            f"{st['af_end_s'] / st['af_found']:.0f} s"
            if st["af_found"]
            else pct(st["af_found"], st["af_eps"])
            for st in stats.values()
        )
        + " |"
    )
    return "\n".join(rows)


# -- latency ---------------------------------------------------------------------------------------
def _replay(mv_electrodes: np.ndarray, fs: float, settings, model=None):
    """The daemon's alarm path over a constructed signal: with ``model`` its beat labels and windows too."""
    recording = Recording(np.asarray(mv_electrodes, dtype=np.float32), fs, "trial", "0")
    return episodes(recording_events(recording, settings, settings.analog_frontend, model))


def asystole_latency(
    data: Path, settings, trials: int, rng, model=None, standstill: bool = False
) -> list[dict]:
    """Simulated arrests at random DS1 points; ``standstill``: the atria go on (P waves of 0.1-0.3 mV
    at 60-100/min on the flat line), the ventricles do not."""
    out = []
    for _ in range(trials):
        name = DS1[int(rng.integers(len(DS1)))]
        rec, ann = load(data / "mitdb" / name)
        fs = float(rec.fs)
        cut = int(rng.integers(round(120 * fs), rec.sig_len - round(20 * fs)))
        start = cut - round(90 * fs)
        before = rec.p_signal[start:cut, 0]
        # The heart stops: the trace returns (within 0.1 s, no step) to the baseline of the last second
        # and stays there with the front end's noise.
        baseline = float(np.median(before[-round(fs) :]))
        ramp = np.linspace(before[-1], baseline, round(0.1 * fs))
        if standstill:
            bpm, p_mv = float(rng.uniform(60, 100)), float(rng.uniform(0.1, 0.3))
            rest = syn.p_waves(fs, 12, bpm, p_mv, rng)
        else:
            rest = syn.flat(fs, 12, rng)
        x = np.concatenate([before, ramp, baseline + rest])
        eps = _replay(x, fs, settings, model)
        beats = np.asarray(ann.sample)[np.isin(ann.symbol, list(BEATS))] - start
        last = int(beats[beats < cut - start].max())
        asy = [e for e in eps if e.onset.alarm == "asystole"]
        false = [e for e in asy if e.onset.onset_seq < cut - start]
        found = [e for e in asy if e.onset.onset_seq >= last]
        lat = (found[0].onset.detected_seq - last) / fs if found else None
        out.append(
            {"record": name, "cut_s": round(cut / fs, 1), "latency_s": lat, "false_before": len(false)}
        )
    return out


def arrest_line(what: str, trials: list[dict], limit_s: float) -> str:
    """One README line for ``asystole_latency``'s trials."""
    lats = [r["latency_s"] for r in trials if r["latency_s"] is not None]
    n = len(trials)
    return (
        f"- simulated {what} at {n} random DS1 points: detected {len(lats)}/{n}, within {limit_s:g} s of "
        f"the last beat {sum(1 for v in lats if v <= limit_s)}/{n}"
        + (
            f"; latency after the last beat median {np.median(lats):.2f} s, max {max(lats):.2f} s"
            if lats
            else ""
        )
        + f"; false asystole before the cut: {sum(r['false_before'] for r in trials)}"
    )


def vf_latency(data: Path, settings, trials: int, rng, model=None) -> list[dict]:
    out = []
    for _ in range(trials):
        name = DS1[int(rng.integers(len(DS1)))]
        rec, _ = load(data / "mitdb" / name)
        fs = float(rec.fs)
        cut = int(rng.integers(round(120 * fs), rec.sig_len - round(20 * fs)))
        freq, amp = float(rng.uniform(3.5, 7.0)), float(rng.uniform(0.3, 1.0))
        x = np.concatenate(
            [rec.p_signal[cut - round(90 * fs) : cut, 0], syn.fibrillation(fs, 15, freq, amp, rng)]
        )
        eps = _replay(x, fs, settings, model)
        vf = [e for e in eps if e.onset.alarm == "vfib" and e.onset.detected_seq >= round(90 * fs)]
        lat = (vf[0].onset.detected_seq - round(90 * fs)) / fs if vf else None
        out.append({"record": name, "freq_hz": round(freq, 1), "mv": round(amp, 2), "latency_s": lat})
    return out


def rate_steps(data: Path, settings, model=None) -> list[dict]:
    """Record 101 (sinus, ~70 bpm): 90 s as recorded, then played k times faster from there."""
    rec, ann = load(data / "mitdb" / "101")
    fs = float(rec.fs)
    step = round(90 * fs)
    base = rec.p_signal[:, 0]
    beats = np.asarray(ann.sample)[np.isin(ann.symbol, list(BEATS))]
    before = 60 * fs / np.mean(np.diff(beats[(beats > step - 30 * fs) & (beats < step)]))
    out = []
    for k in (0.55, 0.7, 1.9, 2.4):
        tail = base[step : step + round(60 * fs * k)]
        t = np.arange(0, tail.size - 1, k)
        x = np.concatenate([base[:step], np.interp(t, np.arange(tail.size), tail)])
        eps = _replay(x, fs, settings, model)
        raised = {}
        for e in eps:
            if e.onset.detected_seq >= step and e.onset.alarm not in raised:
                raised[e.onset.alarm] = round((e.onset.detected_seq - step) / fs, 1)
        out.append({"factor": k, "bpm": f"{before:.0f} → {before * k:.0f}", "raised_after_s": raised})
    return out


def daemon_latency() -> list[dict]:
    """The daemon in real time, emulated device playing: sinus, flat (asystole), sinus, wide VT, sinus."""
    from ecgd.daemon import Daemon

    fs = 360.0
    pieces = [
        syn.regular(fs, 12, 70), syn.flat(fs, 8), syn.regular(fs, 8, 70),
        syn.regular(fs, 6, 160, width_ms=180), syn.regular(fs, 10, 70),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "x.npy", np.concatenate(pieces))
        conf = {
            "device": {"kind": "emulated"},
            "emulated": {"recording": str(tmp / "x.npy"), "recording_rate_hz": fs},
            "output": {"journal": False, "log_file": str(tmp / "r.jsonl")},
        }
        (tmp / "c.yaml").write_text(json.dumps(conf))
        daemon = Daemon(cfg.load(tmp / "c.yaml"))
        daemon.start()
        daemon.run(duration_s=sum(p.size for p in pieces) / fs + 6)
        rows = [json.loads(line) for line in (tmp / "r.jsonl").read_text().splitlines()]
    from datetime import datetime

    def t(iso):
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()

    out = []
    for r in rows:
        if r["kind"] == "alarm" and r["alarm_state"] == "onset" and r["alarm"] in ("asystole", "vtach"):
            emit = t(r["time"]) - t(r["onset_time"])
            cause = "last beat" if r["alarm"] == "asystole" else "6th ventricular beat"
            base = r["threshold"] if r["alarm"] == "asystole" else 0.0
            out.append({"alarm": r["alarm"], "after": cause, "latency_s": round(base + emit, 2)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data", type=Path, default=Path(os.environ.get("ECGD_DATA", REPO.parent / "shared" / "data"))
    )
    ap.add_argument("--quick", action="store_true", help="DS1 only, no SVDB")
    ap.add_argument("--svdb-only", action="store_true", help="SVDB only, no latency (to run beside --quick)")
    ap.add_argument("--daemon", action="store_true", help="also the daemon-path latency (real time, ~70 s)")
    ap.add_argument("--daemon-only", action="store_true", help="only the daemon-path latency")
    ap.add_argument(
        "--no-model", action="store_true", help="no window classifier (no afib, no noise verdicts)"
    )
    ap.add_argument("--false-log", type=Path, help="write every false onset as a JSON line here")
    ap.add_argument(
        "--onset-log", type=Path, help="write every physiological onset, with `true` as judged, as JSON lines"
    )
    ap.add_argument(
        "--missed-log", type=Path, help="write every reference VT run, short run and pause no alarm found"
    )
    ap.add_argument(
        "--config", type=Path, help="an ecgd YAML (e.g. other alarm limits); default: the defaults"
    )
    ap.add_argument(
        "--records",
        help="only these records, e.g. mitdb/203,svdb/801 (with --onset-log, to read one patient's "
        "alarms); no latency trials",
    )
    ap.add_argument(
        "--native-rate",
        action="store_true",
        help="replay SVDB at its recorded 128 Hz, not the device's sampling.rate_hz (before 2026-12-03)",
    )
    ap.add_argument(
        "--noise",
        help="add NSTDB noise before the front end, e.g. ma6 (muscle, 6 dB SNR against the QRS) or bw0: "
        "2 min on, 2 min off after the first 5 min, as bench/qrs_accuracy.py adds it",
    )
    ap.add_argument(
        "--cv",
        type=Path,
        help="a training.train_beats run: each record scored with the fold bundle that never saw its "
        "patient (the shipped model was trained on all of DS1 and SVDB)",
    )
    args = ap.parse_args()
    if args.noise is not None and (
        args.noise[:2] not in ("ma", "bw") or not args.noise[2:].lstrip("-").isdigit()
    ):
        ap.error(f"--noise {args.noise}: give ma or bw and an SNR in dB, e.g. ma6")
    settings = cfg.load(args.config) if args.config is not None else cfg.Settings()
    if args.daemon_only:
        print("## Latency on the daemon path (real time, emulated device)\n")
        rows = daemon_latency()
        for r in rows:
            print(f"- {r['alarm']}: {r['latency_s']:.2f} s after the {r['after']}")
        return 0 if rows else 1
    model = None
    fold_models: dict[str, object] = {}
    if not args.no_model:
        from ecgd.analysis.model import load_model

        model = load_model(settings.model_path, settings.metadata_path)
        if args.cv is not None:
            fold_models = fold_bundles(args.cv)
    t0 = time.monotonic()
    false_eps: list[dict] = []
    onsets: list[dict] = []
    missed: list[dict] = []
    paths = [] if args.svdb_only else [args.data / "mitdb" / r for r in DS1]
    if not args.quick:
        paths += sorted({p.with_suffix("") for p in (args.data / "svdb").glob("*.hea")})
    if args.records is not None:
        paths = [args.data / r for r in args.records.split(",")]
        unknown = [
            str(p) for p in paths if p.parent.name not in TABLE_COLUMN or not p.with_suffix(".hea").exists()
        ]
        if unknown:
            ap.error(f"--records: not a MIT-BIH or SVDB record here: {', '.join(unknown)}")
    stats: dict[str, dict] = {TABLE_COLUMN[p.parent.name]: defaultdict(float) for p in paths}
    for p in paths:
        st = stats[TABLE_COLUMN[p.parent.name]]
        before = sum(v for k, v in st.items() if k.endswith(":false"))
        record_model = fold_models.get(f"{p.parent.name}/{p.name}", model)
        score_record(
            p,
            settings,
            record_model,
            {p.parent.name: st},
            false_eps,
            onsets,
            missed,
            args.native_rate,
            args.noise,
        )
        after = sum(v for k, v in st.items() if k.endswith(":false"))
        print(f"# {p.parent.name}/{p.name}: {after - before:.0f} false onsets", file=sys.stderr, flush=True)
    if args.false_log:
        args.false_log.write_text("".join(json.dumps(e) + "\n" for e in false_eps))
    if args.onset_log:
        args.onset_log.write_text("".join(json.dumps(e) + "\n" for e in onsets))
    if args.missed_log:
        args.missed_log.write_text("".join(json.dumps(e) + "\n" for e in missed))
    noise = f", NSTDB {args.noise} added" if args.noise else ""
    print(
        f"## Alarms on the reference databases (through the 8-bit front end{noise}; "
        f"{time.monotonic() - t0:.0f} s)\n"
    )
    print(false_alarm_table(stats) + "\n")
    print(sensitivity_table(stats) + "\n")
    if args.svdb_only or args.cv is not None or args.noise or args.records:
        return 0  # the latency trials are the shipped model's on clean signals, as README gives them
    rng = np.random.default_rng(9)
    print("## Latency (offline, the daemon's blocks)\n")
    limit_s = settings.alarms.asystole_seconds + 1
    asy = asystole_latency(args.data, settings, 20, rng, model)
    print(arrest_line("asystole", asy, limit_s))
    standstill = asystole_latency(args.data, settings, 20, np.random.default_rng(10), model, True)
    print(
        arrest_line(
            "ventricular standstill (P waves of 0.1-0.3 mV at 60-100/min, no QRS)", standstill, limit_s
        )
    )
    vf = vf_latency(args.data, settings, 10, rng, model)
    vl = [r["latency_s"] for r in vf if r["latency_s"] is not None]
    print(
        f"- simulated coarse VF (3.5-7 Hz, 0.3-1 mV) at 10 random DS1 points: detected {len(vl)}/10; "
        f"latency from VF onset median {np.median(vl):.1f} s, max {max(vl):.1f} s"
        if vl
        else "- simulated VF: not detected"
    )
    for r in rate_steps(args.data, settings, model):
        print(f"- rate step ×{r['factor']:g} ({r['bpm']} bpm): raised after the step {r['raised_after_s']}")
    if args.daemon:
        print("\n## Latency on the daemon path (real time, emulated device)\n")
        for r in daemon_latency():
            print(f"- {r['alarm']}: {r['latency_s']:.2f} s after the {r['after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
