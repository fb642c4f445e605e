"""The alarm engine on constructed signals through the front end and the real QRS detector, and offline.

Every signal goes through the AD8232 + 8-bit ADC model (what the monitor sees), the blocks are the
daemon worker's 0.2 s, and the engine code is the one the daemon runs (``alarm_replay.replay``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, shared_record

from ecgd import config as cfg
from ecgd.alarm_replay import episodes, replay
from ecgd.analysis.alarms import AlarmEngine, AlarmSettings
from ecgd.analysis.qrs import QrsDetector, QrsSettings
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.io import synthetic as syn
from ecgd.io.frontend import AnalogFrontEnd

FS = 360.0
FE = AnalogFrontEnd()
RAILS = adc_rails_mv(FE)


def run(
    mv_pieces, settings: AlarmSettings | None = None, classify=None, leads_off=None, frontend=True, rail=None
):
    """Alarm events and episodes; ``rail=(from_s, to_s)`` drives the AD8232 output to its top rail
    over that stretch (an electrode off: the output saturates after the board's filters)."""
    x = np.concatenate(mv_pieces)
    mv = FE.simulate_mv(x, FS) if frontend else x
    if rail is not None:
        mv[round(rail[0] * FS) : round(rail[1] * FS)] = RAILS[1]
    events = list(
        replay(
            mv,
            FS,
            settings or AlarmSettings(),
            QualitySettings(),
            RAILS if frontend else None,
            classify,
            round(10 * FS) if classify else 0,
            round(2 * FS) if classify else 0,
            leads_off=leads_off,
        )
    )
    return events, episodes(iter(events))


def feed_engine(electrode_mv, before_block):
    """The engine fed the QRS detector's beats block by block (0.2 s, as the daemon), through the front
    end; ``before_block(engine, first)`` may act on it (a relearn, a reload) and return its events."""
    x = FE.simulate_mv(electrode_mv, FS)
    engine = AlarmEngine(FS, AlarmSettings(), rails_mv=RAILS)
    detector = QrsDetector(FS, QrsSettings())
    events = []
    for first in range(0, x.size, round(0.2 * FS)):
        block = x[first : first + round(0.2 * FS)]
        found = detector.process(first, block)
        events += before_block(engine, first)
        events += engine.feed(first, block, None, found)
    return engine, events


def kinds(eps, name):
    return [e for e in eps if e.onset.alarm == name]


def test_a_flat_line_with_the_electrodes_on_is_asystole_raised_within_a_second_of_its_limit():
    events, eps = run([syn.regular(FS, 12, 70), syn.flat(FS, 10), syn.regular(FS, 6, 70)])
    (asy,) = kinds(eps, "asystole")
    last_beat = asy.onset.onset_seq - round(4 * FS)
    assert 11.0 * FS < last_beat < 12.0 * FS  # the last beat before the flat line
    assert asy.onset.priority == "high" and asy.onset.category == "physiological"
    assert (asy.onset.detected_seq - last_beat) / FS <= 5.0  # asystole_seconds + 1 s
    # raised in the block in which the flat line reaches the limit: the signal up to now shows that no
    # beat can be waiting in the detector's look-ahead (0.84 s), so the alarm does not wait for it
    assert 0 <= asy.onset.detected_seq - asy.onset.onset_seq <= round(0.2 * FS)
    assert asy.end is not None and 22 * FS <= asy.end.seq <= 22.6 * FS  # the first beat after it
    assert asy.end.duration_s == pytest.approx((asy.end.seq - asy.onset.onset_seq) / FS)
    (pause,) = kinds(eps, "pause")  # the pause came first and gave way to the asystole
    assert pause.onset.onset_seq < asy.onset.onset_seq and pause.end.detail == "superseded by asystole"
    assert {e.alarm for e in events} == {"asystole", "pause"}


def test_leads_off_at_a_rail_is_the_technical_alarm_never_asystole():
    pieces = [syn.regular(FS, 12, 70), syn.flat(FS, 10), syn.regular(FS, 8, 70)]
    _events, eps = run(pieces, rail=(12, 22))
    assert [e.onset.alarm for e in eps] == ["leads_off"]
    (off,) = eps
    assert off.onset.category == "technical" and off.onset.priority == "medium"
    assert 12 * FS <= off.onset.onset_seq <= 12.6 * FS and off.end is not None


def test_a_pin_high_on_a_flat_line_is_leads_off_and_the_same_line_with_pins_low_is_asystole():
    flat_from, flat_to = round(12 * FS), round(22 * FS)

    def pins(first, stop):
        return "leads off: AD8232 LO+ high" if first < flat_to and stop > flat_from else None

    pieces = [syn.regular(FS, 12, 70), syn.flat(FS, 10), syn.regular(FS, 6, 70)]
    _, with_pin = run(pieces, leads_off=pins)
    assert [e.onset.alarm for e in with_pin] == ["leads_off"]
    assert "LO+" in with_pin[0].onset.detail
    _, pins_low = run(pieces, leads_off=lambda a, b: None)
    assert "asystole" in [e.onset.alarm for e in pins_low] and "leads_off" not in [
        e.onset.alarm for e in pins_low
    ]


@pytest.mark.parametrize("p_mv", [0.15, 0.25, 0.3])
def test_the_p_waves_of_a_ventricular_standstill_are_no_heartbeat(p_mv):
    """The QRS stops, the atria go on: with nothing but P waves (0.15-0.3 mV, as tall as they come)
    the detector's levels decay until it takes them for beats, and without ``qrs_fraction`` the monitor
    showed a heart rate of 80 with no alarm, or at most a pause, through a cardiac arrest."""
    last_qrs = 11.5 * FS  # the 14th beat of syn.regular(12 s, 70 bpm), its R peak 0.3 s into its RR
    pieces = [syn.regular(FS, 12, 70), syn.p_waves(FS, 12, 80, p_mv), syn.regular(FS, 6, 70)]
    _events, eps = run(pieces)
    (asy,) = kinds(eps, "asystole")
    assert abs(asy.onset.onset_seq - last_qrs - 4 * FS) <= 0.25 * FS
    assert (asy.onset.detected_seq - last_qrs) / FS <= 5.0  # asystole_seconds + 1 s
    assert "× the usual QRS" in asy.onset.detail
    assert asy.end is not None and 24 * FS <= asy.end.seq <= 24.6 * FS  # the QRS is back
    assert not kinds(eps, "alarms_suspended")  # an arrest, not a technical warning
    _events, every_beat = run(pieces, AlarmSettings(qrs_fraction=0))
    assert not kinds(every_beat, "asystole")  # what the monitor did before


def test_smaller_beats_still_count_and_a_relearn_accepts_a_lower_qrs():
    """A QRS at 40 % of the usual is a heartbeat (no alarm); one at 15 % is not, until a relearn says
    the lead changed: then the same small beats are the patient's QRS again and the asystole ends."""
    small = syn.beats(FS, [60 / 70] * 14, amplitude_mv=0.48)
    _events, eps = run([syn.regular(FS, 12, 70), small, syn.regular(FS, 6, 70)])
    assert eps == []
    relearnt = []

    def relearn_once(engine, first):
        if not relearnt and "asystole" in engine.active and first > 20 * FS:
            engine.relearn()
            relearnt.append(first)
        return []

    tiny = np.concatenate([syn.regular(FS, 12, 70), syn.beats(FS, [60 / 70] * 42, amplitude_mv=0.18)])
    engine, events = feed_engine(tiny, relearn_once)
    onsets = [e for e in events if e.alarm == "asystole"]
    assert [e.state for e in onsets] == ["onset", "end"] and engine.small_beats > 0
    assert onsets[0].onset_seq < 17 * FS  # 4 s after the last full-size QRS (at 11.5 s)
    assert relearnt[0] < onsets[1].detected_seq < relearnt[0] + 5 * FS  # the small beats count again


def test_a_reload_during_a_standstill_keeps_the_usual_qrs_and_the_asystole():
    """A reload relearns the beat model, not the alarms' QRS size: an automatic reload during an arrest
    must not make the P waves the patient's QRS and end the asystole."""
    reloaded = []

    def reload_once(engine, _first):
        if reloaded or "asystole" not in engine.active:
            return []
        reloaded.append(True)
        return engine.apply_settings(AlarmSettings(tachy_bpm=130))

    engine, events = feed_engine(
        np.concatenate([syn.regular(FS, 12, 70), syn.p_waves(FS, 20, 80, 0.25)]), reload_once
    )
    assert reloaded and engine.settings.tachy_bpm == 130
    assert [e.state for e in events if e.alarm == "asystole"] == ["onset"]  # never ended by P waves
    assert engine.small_beats >= 10  # the P waves were detected, and not counted


def test_one_onset_only_while_an_alarm_stays_active():
    events, eps = run([syn.regular(FS, 10, 70), syn.flat(FS, 40)])
    onsets = [e for e in events if e.alarm == "asystole" and e.state == "onset"]
    assert len(onsets) == 1 and eps[-1].end is None  # still active at the end of the recording
    assert not kinds(eps, "bradycardia") and not kinds(eps, "extreme_bradycardia")  # superseded


def test_wide_complex_tachycardia_is_vtach_within_two_seconds_of_its_sixth_beat():
    _events, eps = run(
        [syn.regular(FS, 10, 75), syn.regular(FS, 6, 160, width_ms=180), syn.regular(FS, 8, 75)]
    )
    (vt,) = kinds(eps, "vtach")
    (run3,) = kinds(eps, "ventricular_run")
    assert run3.end.detail == "became a ventricular tachycardia" and run3.end.seq == vt.onset.onset_seq
    assert vt.onset.value == pytest.approx(160, abs=8) and vt.onset.threshold == 100
    assert "wide-complex rule" in vt.onset.detail
    assert (vt.onset.detected_seq - vt.onset.onset_seq) / FS < 2.0  # onset_seq is the 6th beat
    assert vt.end is not None and vt.end.seq < 17 * FS


def test_a_wide_complex_tachycardia_in_moderate_muscle_noise_is_still_a_vt():
    """The muscle-noise check (``vtach_max_noise``) must not take a VT's alarm away: a wide VT at
    160/min with 0.1 mV rms of 20-100 Hz noise on it keeps most of its power below 20 Hz through the
    front end, and raises what it raises with the check off (tests/test_beat_labels.py: a run in
    noise that is all noise)."""
    n = round(12 * FS)
    spectrum = np.fft.rfft(np.random.default_rng(5).normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / FS)
    burst = np.fft.irfft(np.where((freqs > 20) & (freqs < 100), spectrum, 0), n)
    vt = syn.regular(FS, 12, 160, width_ms=180) + 0.1 * burst / burst.std()
    pieces = [syn.regular(FS, 10, 75), vt, syn.regular(FS, 8, 75)]
    _, eps = run(pieces)
    _, off = run(pieces, AlarmSettings(vtach_max_noise=1.0))
    assert kinds(eps, "vtach") and [e.row() for e in eps] == [e.row() for e in off]
    assert not any(
        "not a VT" in ((e.onset.detail or "") + (e.end.detail or "" if e.end else "")) for e in eps
    )


def test_a_short_ventricular_run_is_the_low_priority_alarm_and_narrow_tachycardia_is_not_ventricular():
    _, eps = run([syn.regular(FS, 10, 75), syn.beats(FS, [0.4] * 4, width_ms=180), syn.regular(FS, 8, 75)])
    assert [e.onset.alarm for e in eps] == ["ventricular_run"]
    assert eps[0].onset.priority == "low" and eps[0].end is not None
    _, narrow = run([syn.regular(FS, 10, 75), syn.regular(FS, 6, 160, width_ms=90), syn.regular(FS, 4, 75)])
    assert not kinds(narrow, "vtach") and not kinds(narrow, "ventricular_run")


@pytest.mark.parametrize(
    ("bpm", "expected"),
    [
        (45, {"bradycardia"}),
        (35, {"bradycardia", "extreme_bradycardia"}),
        (135, {"tachycardia"}),
        (165, {"tachycardia", "extreme_tachycardia"}),
        (75, set()),
    ],
)
def test_rate_limits_hold_for_the_delay_then_alarm_once_and_end(bpm, expected):
    _, eps = run([syn.regular(FS, 10, 75), syn.regular(FS, 30, bpm), syn.regular(FS, 20, 75)])
    assert {e.onset.alarm for e in eps} == expected
    for ep in eps:
        assert ep.onset.value == pytest.approx(bpm, abs=3)
        assert 20 * FS <= ep.onset.onset_seq <= 34 * FS  # 10 s after the change, + up to 8 RR to average
        assert ep.end is not None and 40 * FS < ep.end.seq < 53 * FS  # + 8 RR to average, 5 s hold
    for ep in eps:
        assert ep.onset.priority == ("high" if ep.onset.alarm.startswith("extreme") else "medium")


def test_a_single_long_rr_is_a_pause_with_its_length():
    _, eps = run([syn.regular(FS, 10, 70), syn.flat(FS, 2.6), syn.regular(FS, 8, 70)])
    (pause,) = eps
    assert pause.onset.alarm == "pause" and pause.onset.priority == "medium"
    rr = (60 / 70 - 0.3) + 2.6 + 0.3  # last R 0.3 s into its beat, the next 0.3 s into the next one
    assert pause.end is not None and pause.end.value == pytest.approx(rr, abs=0.05)  # beat to beat


@pytest.mark.parametrize("flat_s", [1.65, 1.8])
def test_a_pause_just_past_its_limit_is_raised_from_the_rr_when_the_closing_beat_comes(flat_s):
    # RR 2.51 / 2.66 s: the beat (or its upstroke) comes within a block of the limit, before the check
    # that waits for the limit to pass without one could see it (MIT-BIH 207's 2.51-s pause)
    rr = (60 / 70 - 0.3) + flat_s + 0.3
    _, eps = run([syn.regular(FS, 10, 70), syn.flat(FS, flat_s), syn.regular(FS, 8, 70)])
    (pause,) = eps
    assert pause.onset.alarm == "pause" and pause.onset.value == pytest.approx(rr, abs=0.05)
    assert pause.end is not None and pause.end.value == pytest.approx(rr, abs=0.05)
    assert pause.end.detail == "a QRS complex again"
    assert (pause.onset.detected_seq - pause.end.seq) / FS < 1.2  # when the beat is confirmed


@pytest.mark.parametrize(("refractory_s", "raised"), [(0.19, True), (0.08, False)])
def test_a_deflection_just_before_the_closing_beat_counts_as_its_own_within_the_refractory_period(
    refractory_s, raised
):
    # 207's pause has a P wave 0.13 s before its closing beat: within the detector's refractory period no
    # QRS can be there, so it is that beat's; outside it, it may be a missed QRS and no pause is raised
    pieces = [syn.regular(FS, 10, 70), syn.flat(FS, 1.8), syn.regular(FS, 8, 70)]
    x = np.concatenate(pieces)
    start = pieces[0].size + pieces[1].size
    r = start + int(np.argmax(np.abs(x[start : start + round(0.8 * FS)])))  # the closing beat's R
    at, k = r - round(0.14 * FS), round(0.02 * FS)
    x[at - k : at + k + 1] += 0.2 * (1 - np.abs(np.arange(-k, k + 1)) / k)  # steep, 0.2 mV
    mv = FE.simulate_mv(x, FS)
    qrs = QrsSettings(refractory_s=refractory_s)
    eps = list(episodes(replay(mv, FS, AlarmSettings(), QualitySettings(), RAILS, qrs=qrs)))
    assert [e.onset.alarm for e in eps] == (["pause"] if raised else [])


def test_an_rr_just_short_of_the_pause_limit_is_no_pause():
    _, eps = run([syn.regular(FS, 10, 70), syn.flat(FS, 1.6), syn.regular(FS, 8, 70)])  # RR 2.46 s
    assert eps == []


def test_coarse_fibrillation_is_vfib_and_ends_when_beats_return():
    _, eps = run([syn.regular(FS, 10, 75), syn.fibrillation(FS, 12), syn.regular(FS, 15, 75)])
    (vfib,) = kinds(eps, "vfib")
    assert vfib.onset.priority == "high" and 2.5 <= vfib.onset.value <= 9
    assert (vfib.onset.detected_seq - 10 * FS) / FS < 6.0
    assert vfib.end is not None and vfib.end.seq > 22 * FS
    assert not kinds(eps, "asystole") and not kinds(eps, "vtach")


def test_a_pause_after_fibrillation_is_raised_while_the_vfib_alarm_holds():
    # MIT-BIH 207: a 2.5-s pause 4 s after flutter, while `vfib` still waits out its end hold
    _, eps = run(
        [
            syn.regular(FS, 10, 75),
            syn.fibrillation(FS, 12),
            syn.regular(FS, 4, 75),
            syn.flat(FS, 2.8),
            syn.regular(FS, 8, 75),
        ]
    )
    (vfib,) = kinds(eps, "vfib")
    (pause,) = kinds(eps, "pause")
    assert vfib.end is not None and pause.onset.detected_seq < vfib.end.seq  # raised inside the hold
    assert 26 * FS < pause.onset.onset_seq < 29 * FS and pause.end.detail == "a QRS complex again"


def test_fibrillation_that_decays_into_a_flat_line_is_asystole_at_once():
    _, eps = run(
        [syn.regular(FS, 10, 75), syn.fibrillation(FS, 12), syn.flat(FS, 14), syn.regular(FS, 6, 75)]
    )
    (vfib,) = kinds(eps, "vfib")
    (asy,) = kinds(eps, "asystole")
    assert (asy.onset.detected_seq - 22 * FS) / FS <= 5.0  # asystole_seconds + 1 s after the last wave
    assert vfib.end is not None and vfib.end.detail == "superseded by asystole"
    assert vfib.end.seq == asy.onset.detected_seq


def test_noise_suspends_the_rate_alarms_and_never_reports_them_resolved():
    quiet = ("N", None)
    noisy = ("unreadable", "gross noise: 60 % of signal power above 20 Hz (max 50 %)")
    state = {"noisy": False}

    def classify(x):
        return noisy if state["noisy"] else quiet

    settings = AlarmSettings(rate_delay_seconds=4)
    x = FE.simulate_mv(np.concatenate([syn.regular(FS, 30, 45), syn.regular(FS, 30, 75)]), FS)
    engine = AlarmEngine(FS, settings, rails_mv=RAILS)
    events = list(replay(x[: round(30 * FS)], FS, settings, QualitySettings(), RAILS, classify, 3600, 720))
    assert [e.alarm for e in events if e.state == "onset"] == ["bradycardia"]
    # A noisy window: one technical record (not one per window), which a readable window ends.
    events = []
    for i in range(0, 20, 2):
        events += engine.window(i, i + 1, *noisy)
    assert [(e.alarm, e.state) for e in events] == [("alarms_suspended", "onset")]
    assert engine.active.keys() == {"alarms_suspended"}
    assert "gross noise" in events[0].detail and events[0].category == "technical"
    assert events[0].priority == "low"
    # a verdict drawn later from beat labels, for a window older than the noisy ones, ends nothing
    assert engine.window(0, 1, *quiet) == [] and engine.active.keys() == {"alarms_suspended"}
    back = engine.window(20, 21, *quiet)
    assert [(e.alarm, e.state) for e in back] == [("alarms_suspended", "end")]


def test_suspended_rate_alarm_stays_active_through_noise_in_the_stream():
    noisy_from = round(40 * FS)

    def classify_at():
        calls = {"n": 0}

        def classify(x):
            calls["n"] += 1
            stop = 3600 + (calls["n"] - 1) * 720  # the window's end in the recording
            if noisy_from <= stop < noisy_from + 20 * FS:
                return "unreadable", "gross noise: steep deflections do not repeat like QRS complexes"
            return "N", None

        return classify

    settings = AlarmSettings(rate_delay_seconds=4)
    x = np.concatenate([syn.regular(FS, 10, 75), syn.regular(FS, 50, 45), syn.regular(FS, 30, 75)])
    events, _eps = run([x], settings, classify=classify_at())
    brady = [e for e in events if e.alarm == "bradycardia"]
    suspended = [e for e in events if e.alarm == "alarms_suspended"]
    assert [e.state for e in brady] == ["onset", "end"]
    assert [e.state for e in suspended] == ["onset", "end"]
    # the brady alarm did not end while suspended: its end comes after the suspension's end
    assert brady[1].detected_seq > suspended[1].detected_seq and brady[1].seq > 60 * FS


def test_afib_from_consecutive_af_windows():
    labels = ["N"] * 4 + ["AF"] * 5 + ["N"] * 6
    it = iter(labels)
    _, eps = run([syn.regular(FS, 40, 80)], classify=lambda x: (next(it, "N"), None))
    (af,) = kinds(eps, "afib")
    assert af.onset.priority == "low" and af.onset.value == 3 and af.end is not None


def test_switched_off_alarms_never_sound_and_a_reload_ends_an_active_one():
    s = AlarmSettings(asystole=False, pause=False)
    assert s.switched_off() == ["asystole", "pause"]
    _, eps = run([syn.regular(FS, 10, 70), syn.flat(FS, 10)], s)
    assert eps == []
    assert AlarmSettings(enabled=False).switched_off() == list(AlarmSettings().switched_off() or [
        "asystole", "vfib", "vtach", "ventricular_run", "bradycardia", "tachycardia",
        "extreme_bradycardia", "extreme_tachycardia", "pause", "afib",
    ])  # fmt: skip
    engine = AlarmEngine(FS, AlarmSettings(), rails_mv=RAILS)
    x = FE.simulate_mv(np.concatenate([syn.regular(FS, 10, 70), syn.flat(FS, 6)]), FS)
    from ecgd.analysis.qrs import QrsDetector

    det = QrsDetector(FS)
    for a in range(0, x.size, 72):
        engine.feed(a, x[a : a + 72], None, det.process(a, x[a : a + 72]))
    assert "asystole" in engine.active
    (ended,) = [e for e in engine.apply_settings(AlarmSettings(asystole=False)) if e.alarm == "asystole"]
    assert ended.state == "end" and "switched off" in ended.detail


def _after_a_fault(after_mv: np.ndarray, big_block_s: float):
    """12 s of beats, a 10-s sensor fault (samples missing), then ``after_mv``; the fault and the first
    ``big_block_s`` s after it fed as one block, as a worker that fell behind reads them."""
    x = FE.simulate_mv(np.concatenate([syn.regular(FS, 12, 70), syn.flat(FS, 10), after_mv]), FS)
    ok = np.ones(x.size, dtype=bool)
    ok[round(12 * FS) : round(22 * FS)] = False
    x[~ok] = 0.0  # what the ring holds for a missing slot is never read as signal
    engine = AlarmEngine(FS, AlarmSettings(), rails_mv=RAILS)
    detector = QrsDetector(FS, QrsSettings())
    events = []
    big = round((22 + big_block_s) * FS)
    cuts = [*range(0, round(12 * FS), 72), round(12 * FS), *range(big, x.size, 72), x.size]
    for a, b in itertools.pairwise(cuts):
        events += engine.feed(a, x[a:b], ok[a:b], detector.process(a, x[a:b]))
    return events


@pytest.mark.parametrize("big_block_s", [0.55, 0.7, 1.2])
def test_a_sensor_fault_read_late_in_one_block_is_no_flat_line_no_pause_and_no_blind_detector(big_block_s):
    """A late worker reads a whole fault and what followed it at once: the missing samples are no
    signal, so no asystole or pause is counted across them (the soak found an 11-s false asystole so)."""
    events = _after_a_fault(syn.regular(FS, 8, 70), big_block_s)
    assert [(e.alarm, e.state) for e in events] == []


def test_a_flat_line_after_a_sensor_fault_is_asystole_counted_from_the_end_of_the_fault():
    events = _after_a_fault(syn.flat(FS, 8), 0.7)
    (asy,) = [e for e in events if e.alarm == "asystole" and e.state == "onset"]
    # 4 s of flat line seen after the fault (from when the last second was no longer mostly missing,
    # 0.5 s after it, as with 0.2-s blocks), not 4 s after the last beat before it
    assert 26 * FS <= asy.onset_seq <= 26.6 * FS


def test_engine_rejects_a_gap_in_the_blocks():
    engine = AlarmEngine(FS, AlarmSettings())
    engine.feed(0, np.zeros(72), None, None)
    with pytest.raises(ValueError, match="expected 72"):
        engine.feed(100, np.zeros(72), None, None)


def test_alarm_config_is_validated_with_every_problem_at_once():
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse(
            "alarms: {brady_bpm: 30, asystol_seconds: 3, vtach_beats: 2.5, pause_seconds: 9, vfib: 1, "
            "qrs_fraction: 0.95}"
        )
    text = str(e.value)
    for bit in (
        "alarms.asystol_seconds: unknown key; did you mean alarms.asystole_seconds?",
        "alarms.vtach_beats: must be a whole number",
        "alarms.extreme_brady_bpm: 40 must be below brady_bpm (30)",
        "alarms.pause_seconds: 9 must be shorter than asystole_seconds (4)",
        "alarms.vfib: must be true or false",
        "alarms.qrs_fraction: 0.95 is out of range; allowed 0 to 0.9",
    ):
        assert bit in text
    s = cfg.parse("alarms: {tachy_bpm: 110, afib: false}")
    assert s.alarms.tachy_bpm == 110.0 and s.alarms.switched_off() == ["afib"]


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ecgd", "alarms", *args], capture_output=True, text=True, cwd=REPO
    )


def test_offline_alarms_command_prints_one_line_per_episode(tmp_path):
    x = np.concatenate([syn.regular(FS, 12, 70), syn.flat(FS, 8), syn.regular(FS, 10, 70), syn.flat(FS, 6)])
    np.save(tmp_path / "x.npy", x)
    out = _cli(str(tmp_path / "x.npy"), "--fs", "360", "--frontend", "pcf8591", "--no-model")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    asy = [r for r in rows if r["alarm"] == "asystole"]
    assert len(asy) == 2 and asy[0]["end"] is not None and asy[1]["end"] is None
    assert asy[0]["priority"] == "high" and 15 * FS < asy[0]["onset"] < 16.5 * FS
    assert set(rows[0]) >= {"alarm", "priority", "onset", "end", "value"}


def test_offline_alarms_command_errors():
    missing = _cli("/nonexistent/x.npy", "--fs", "360")
    assert missing.returncode == 66 and "no such file" in missing.stderr
    no_rate = _cli(str(REPO / "README.md").replace(".md", ".npy"))
    assert no_rate.returncode == 66
    bad = _cli(str(REPO / "ecgd" / "demo" / "mitdb201_excerpt"), "--config", "/nonexistent.yaml")
    assert bad.returncode == 78 and "file not found" in bad.stderr


def test_ventricular_flutter_of_mitdb_207_is_vfib(tmp_path):
    import wfdb

    path = shared_record("mitdb/207")
    rec = wfdb.rdrecord(str(path.with_suffix("")), channels=[0], sampfrom=540000, sampto=600000)
    np.save(tmp_path / "207.npy", rec.p_signal[:, 0])  # the last (VFL) episode of 207, 2:31-2:47 min
    ann = wfdb.rdann(str(path.with_suffix("")), "atr", sampfrom=540000, sampto=600000)
    vfl = [s - 540000 for s, a in zip(ann.sample, ann.aux_note, strict=True) if a.startswith("(VFL")]
    out = _cli(str(tmp_path / "207.npy"), "--fs", "360", "--frontend", "pcf8591", "--no-model")
    assert out.returncode == 0, out.stderr
    vf = [json.loads(line) for line in out.stdout.splitlines() if '"vfib"' in line]
    assert vf and vfl
    assert any(abs(r["onset"] - vfl[0]) < 10 * FS for r in vf)


def test_alarm_settings_fields_all_have_help():
    for f in dataclasses.fields(AlarmSettings):
        assert f.metadata.get("help"), f.name
