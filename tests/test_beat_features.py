"""Beat features, the patient's template (relearn) and RR irregularity, on constructed signals."""

from __future__ import annotations

import numpy as np
import pytest
from ecg_synth import FS, synth_ecg

from ecgd.analysis.beat_detect import detect_beats
from ecgd.analysis.beat_features import (
    BEAT_FEATURES,
    POST_S,
    PRE_S,
    WAVEFORM_SAMPLES,
    BeatAnalyzer,
    RelearnSettings,
    waveform_step,
)
from ecgd.analysis.rhythm import (
    RR_FEATURES,
    p_wave_coherence,
    p_wave_to_qrs,
    rr_features,
    span_p_wave_coherence,
)

F = {name: i for i, name in enumerate(BEAT_FEATURES)}
R = {name: i for i, name in enumerate(RR_FEATURES)}


def run_windows(an: BeatAnalyzer, x: np.ndarray, beats_s: np.ndarray, seconds: float = 10.0):
    n = round(seconds * FS)
    seqs = np.round(beats_s * FS).astype(np.int64)
    out = []
    for start in range(0, x.size - n + 1, n):
        inside = seqs[(seqs >= start) & (seqs < start + n)]
        out.append(an.analyse(start, x[start : start + n], inside))
    return out


def test_regular_rr_is_not_irregular_and_af_like_is():
    rng = np.random.default_rng(1)
    regular = 0.8 + rng.normal(0, 0.01, 12)
    af = rng.uniform(0.4, 1.1, 14)
    fr, fa = rr_features(regular), rr_features(af)
    assert fr is not None and fa is not None
    assert fr[R["cv"]] < 0.03 < 0.15 < fa[R["cv"]]
    assert fr[R["rmssd_rel"]] < 0.05 < 0.2 < fa[R["rmssd_rel"]]
    assert fr[R["near_median"]] == 1.0 and fa[R["near_median"]] < 0.6
    assert fa[R["cosen"]] > fr[R["cosen"]]
    assert 0.4 < fa[R["tpr"]] < 0.95
    assert fr[R["mean_rr_s"]] == pytest.approx(0.8, abs=0.02)


def test_too_few_beats_give_no_rr_features():
    assert rr_features(np.full(6, 0.8)) is None
    assert rr_features(np.array([0.8] * 5 + [5.0] * 4)) is None  # gaps are not rhythm


def test_wide_qrs_patient_is_normal_against_their_own_template():
    """Every beat wide (bundle branch block): after learning, the beats match the template."""
    beats = np.arange(0.5, 120, 0.8)
    x = synth_ecg(beats, np.ones(beats.size, dtype=bool), 121)
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30))
    out = run_windows(an, x, beats)
    late = np.concatenate([f.x for f in out[4:]])
    assert not out[-1].learning and out[0].learning
    assert np.all(late[:, F["corr_qrs"]] > 0.97)
    assert np.all(np.abs(late[:, F["width_ratio"]] - 1) < 0.15)
    assert np.all(np.abs(late[:, F["rr_pre_local"]] - 1) < 0.05)


def test_wide_premature_beat_stands_out_from_a_narrow_template():
    beats = list(np.arange(0.5, 60, 0.8))
    wide = np.zeros(len(beats), dtype=bool)
    k = 50  # a premature wide beat followed by a compensatory pause
    beats[k] = beats[k] - 0.3
    wide[k] = True
    x = synth_ecg(np.array(beats), wide, 61)
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=20))
    out = run_windows(an, x, np.array(beats))
    allx = np.concatenate([f.x for f in out])
    seq = np.concatenate([f.seq for f in out])
    i = int(np.argmin(np.abs(seq - round(beats[k] * FS))))
    pvc = allx[i]
    assert pvc[F["rr_pre_local"]] < 0.7
    assert pvc[F["rr_post_pre"]] > 1.8
    assert pvc[F["width_ratio"]] > 1.5
    assert pvc[F["corr_qrs"]] < allx[i - 2, F["corr_qrs"]]


def test_waveforms_are_the_beat_and_its_difference_from_the_template_only_when_asked():
    beats = list(np.arange(0.5, 60, 0.8))
    wide = np.zeros(len(beats), dtype=bool)
    wide[50] = True
    x = synth_ecg(np.array(beats), wide, 61)
    plain = run_windows(BeatAnalyzer(FS, RelearnSettings(learn_seconds=20)), x, np.array(beats))
    assert all(f.waveform is None for f in plain)  # the daemon's analyser computes none
    out = run_windows(BeatAnalyzer(FS, RelearnSettings(learn_seconds=20), waveforms=True), x, np.array(beats))
    w = np.concatenate([f.waveform for f in out])
    seq = np.concatenate([f.seq for f in out])
    assert w.shape == (seq.size, round((PRE_S + POST_S) * FS) // waveform_step(FS), 2)
    assert w.shape[1] == WAVEFORM_SAMPLES
    assert np.array_equal(np.concatenate([f.x for f in out]), np.concatenate([f.x for f in plain]))
    i = int(np.argmin(np.abs(seq - round(beats[50] * FS))))
    span = np.ptp(w[i - 2, :, 0])  # a normal beat, over the template's amplitude: about 1
    assert 0.8 < span < 1.2 and np.abs(w[i - 2, :, 1]).max() < 0.1  # and like its template
    assert np.abs(w[i, :, 1]).max() > 0.5  # the wide beat is not


def test_waveforms_at_another_rate_are_on_the_same_instants_as_at_360_hz():
    """A front end at 250 Hz gives the same 78 samples a waveform graph trained at 360 Hz takes: its
    block means interpolated onto the 360-Hz instants (not 81 samples on another grid)."""
    beats = np.arange(0.5, 40, 0.8)
    wide = np.zeros(beats.size, dtype=bool)
    wide[40] = True
    x = synth_ecg(beats, wide, 41)
    fs2 = 250.0
    x2 = np.interp(np.arange(round(41 * fs2)) / fs2, np.arange(x.size) / FS, x)

    def waves(signal: np.ndarray, fs: float) -> np.ndarray:
        an = BeatAnalyzer(fs, RelearnSettings(learn_seconds=20), waveforms=True)
        n = round(10 * fs)
        seqs = np.round(beats * fs).astype(np.int64)
        out = []
        for start in range(0, signal.size - n + 1, n):
            inside = seqs[(seqs >= start) & (seqs < start + n)]
            f = an.analyse(start, signal[start : start + n], inside)
            out.append(f.waveform)
        return np.concatenate(out)

    at360, at250 = waves(x, FS), waves(x2, fs2)
    assert at250.shape == at360.shape == (beats.size, WAVEFORM_SAMPLES, 2)
    known = ~np.isnan(at360).any(axis=(1, 2)) & ~np.isnan(at250).any(axis=(1, 2))
    assert known.sum() > 20
    # the same beats, the same shape: RMS within 5 % of the template's amplitude; the R peak differs more
    # (the fiducial falls on a 4-ms grid at 250 Hz), the rest (50 ms and more from it) within 5 %
    d = at250[known] - at360[known]
    t = (np.arange(WAVEFORM_SAMPLES) * 3 + 1) / 360.0 - PRE_S  # the 360-Hz instants, from the fiducial
    assert np.sqrt(np.mean(d**2)) < 0.05
    assert np.abs(d[:, np.abs(t) > 0.05]).max() < 0.05
    assert np.abs(at250[40, :, 1]).max() > 0.5  # and the wide beat still differs from its template


def bigeminy(start_s: float, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``n`` beat times from ``start_s``, every other one a wide beat 0.5 s after a narrow one (pause 1.1 s),
    their wide flags, and the time after the last."""
    times = start_s + np.concatenate(([0.0], np.cumsum(np.where(np.arange(n - 1) % 2 == 0, 0.5, 1.1))))
    end = float(times[-1] + (0.5 if (n - 1) % 2 == 0 else 1.1))
    return times, np.arange(n) % 2 == 1, end


def test_bigeminy_template_is_the_narrow_beat():
    """Half the beats ventricular: the dominant-beat choice takes the narrow, non-premature cluster."""
    times_a, wide_a, t = bigeminy(0.5, 80)
    x = synth_ecg(times_a, wide_a, t + 1)
    an = BeatAnalyzer(FS)
    out = run_windows(an, x, times_a)
    allx = np.concatenate([f.x for f in out])
    seq = np.concatenate([f.seq for f in out])
    is_wide = wide_a[np.argmin(np.abs(seq[:, None] - np.round(times_a * FS)[None, :]), axis=1)]
    assert np.median(allx[~is_wide, F["width_ratio"]]) == pytest.approx(1.0, abs=0.15)
    assert np.median(allx[is_wide, F["width_ratio"]]) > 1.5


def test_relearn_forgets_the_template():
    beats = np.arange(0.5, 30, 0.8)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 31)
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=10))
    run_windows(an, x, beats)
    assert an.template.ready and not an.template.learning
    an.relearn()
    assert not an.template.ready and an.template.learning


def test_overlapping_windows_update_the_template_once_per_beat():
    """With a 2-s hop every beat is seen in five windows but learned once: 20 s of signal, 20 s learned."""
    beats = np.arange(0.5, 40, 0.8)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 41)
    seqs = np.round(beats * FS).astype(np.int64)
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30))
    n = 3600
    for start in range(0, 20 * 360 - n + 1, 720):
        f = an.analyse(start, x[start : start + n], seqs[(seqs >= start) & (seqs < start + n)])
    assert f.learning
    assert an.template.learned_s == pytest.approx(19.2, abs=0.9)


def test_a_beat_gets_one_fiducial_wherever_its_position_was_given():
    """An RS complex with S a little deeper than R: the largest deflection within 50 ms is R seen from
    before the beat and S seen from after it, so a detector's position (later than an annotator's) gave
    another fiducial and another segment. The centre of the slope energy is one point either way."""
    beats = np.arange(0.5, 60, 0.8)
    t = np.arange(round(61 * FS)) / FS
    x = np.random.default_rng(3).normal(0, 0.01, t.size)
    for bt in beats:
        r_wave = np.exp(-0.5 * ((t - bt) / 0.008) ** 2)
        s_wave = np.exp(-0.5 * ((t - bt - 0.035) / 0.008) ** 2)
        x += r_wave - 1.05 * s_wave + 0.25 * np.exp(-0.5 * ((t - bt - 0.3) / 0.05) ** 2)
    jitter = np.random.default_rng(4).uniform(-0.04, 0.04, beats.size)
    early, late = (BeatAnalyzer(FS, RelearnSettings(learn_seconds=20)) for _ in range(2))
    a = run_windows(early, x, beats - 0.02)
    b = run_windows(late, x, beats + jitter)
    sa, sb = np.concatenate([f.seq for f in a]), np.concatenate([f.seq for f in b])
    assert sa.size == sb.size == beats.size
    assert np.abs(sa - sb).max() <= 2
    xa, xb = np.concatenate([f.x for f in a[3:]]), np.concatenate([f.x for f in b[3:]])
    assert np.all(xa[:, F["corr_qrs"]] > 0.97) and np.all(xb[:, F["corr_qrs"]] > 0.97)
    assert np.abs(xa[:, F["width_ratio"]] - xb[:, F["width_ratio"]]).max() < 0.1


def test_window_detector_finds_the_constructed_beats():
    beats = np.arange(0.4, 10, 0.75)
    x = synth_ecg(beats, np.zeros(beats.size, dtype=bool), 10)
    found = detect_beats(x, FS)
    assert found.size == beats.size
    assert np.max(np.abs(found - beats * FS)) < 0.05 * FS
    assert detect_beats(np.zeros(100), FS).size == 0


def test_leaving_out_ventricular_beats_keeps_the_rhythm_and_drops_the_ectopy():
    """Sinus rhythm with a PVC every fourth beat looks irregular; its intervals between non-V beats do not."""
    from ecgd.analysis.rhythm import rr_between_kept

    rr = np.tile([0.8, 0.8, 0.5, 1.1], 4)  # coupling interval 0.5 s, compensatory pause 1.1 s
    seq = np.concatenate(([0], np.cumsum(np.round(rr * FS)))).astype(np.int64)
    is_v = np.zeros(seq.size, dtype=bool)
    is_v[3::4] = True
    kept = rr_between_kept(seq, is_v, FS)
    assert np.allclose(kept, 0.8, atol=0.01) and kept.size == 8
    everything, regular = rr_features(np.diff(seq) / FS), rr_features(np.tile(kept, 2))
    assert everything is not None and regular is not None
    assert everything[R["cv"]] > 0.2 > 0.02 > regular[R["cv"]]
    assert rr_between_kept(seq[:1], is_v[:1], FS).size == 0


def _narrow_then(rest_times: np.ndarray, rest_wide: np.ndarray, seconds: float = 150.0):
    """60 s of narrow sinus beats at 75 bpm, then ``rest_times`` (s, from 60 s) with ``rest_wide``."""
    first = np.arange(0.5, 60, 0.8)
    times = np.concatenate((first, rest_times))
    wide = np.concatenate((np.zeros(first.size, dtype=bool), rest_wide))
    return synth_ecg(times, wide, seconds), times, wide


def test_a_lasting_change_of_the_dominant_beat_is_taken_over():
    """Every beat turns wide for good at the same, slow rate (a new conduction pattern, a moved
    electrode): after about a minute the template is the new beat, so it is this patient's normal."""
    rest = np.arange(60.3, 149, 0.8)
    x, times, _ = _narrow_then(rest, np.ones(rest.size, dtype=bool))
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30))
    out = run_windows(an, x, times)
    assert an.template.changes == 1
    last = np.concatenate([f.x for f in out[-3:]])
    assert np.all(last[:, F["corr_qrs"]] > 0.97)
    assert np.all(np.abs(last[:, F["width_ratio"]] - 1) < 0.15)
    off = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30, change_beats=0))
    last_off = np.concatenate([f.x for f in run_windows(off, x, times)[-3:]])
    assert off.template.changes == 0 and np.median(last_off[:, F["width_ratio"]]) > 1.5


def test_a_replaced_dominant_beat_stays_this_patients_normal_beat():
    """Intermittent conduction (pre-excitation, bundle branch block): narrow, then wide for 70 s (taken
    over), then narrow again. The narrow beats are judged against the replaced template at once, not as
    foreign beats for the minute a change takes; with ``former_templates: 0`` they are foreign."""
    wide_s = np.arange(60.3, 130, 0.8)
    narrow_s = np.arange(wide_s[-1] + 0.8, 150, 0.8)  # 25 beats: too few for a change back
    rest = np.concatenate((wide_s, narrow_s))
    is_wide = np.concatenate((np.ones(wide_s.size, dtype=bool), np.zeros(narrow_s.size, dtype=bool)))
    x, times, _ = _narrow_then(rest, is_wide, 150.0)
    back = slice(14, 15)  # 140-150 s: narrow beats 10-20 s after the return
    for kept, like in ((2, True), (0, False)):
        an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30, former_templates=kept))
        out = run_windows(an, x, times)
        assert an.template.changes == 1 and len(an.template.formers) == kept // 2
        after = np.concatenate([f.x for f in out[back]])
        normal = np.all(after[:, F["corr_qrs"]] > 0.97) and np.all(
            np.abs(after[:, F["width_ratio"]] - 1) < 0.15
        )
        assert normal == like, (kept, after[:, [F["corr_qrs"], F["width_ratio"]]])
        if kept:  # the wide beat is still the template; the narrow one is known beside it
            assert an.template.width > 1.5 * an.template.formers[0].width


def test_a_sustained_fast_wide_rhythm_is_not_taken_over():
    """Wide beats at 150 bpm for 90 s (a VT): too fast to be a new dominant beat; they stay abnormal."""
    rest = np.arange(60.3, 149, 0.4)
    x, times, _ = _narrow_then(rest, np.ones(rest.size, dtype=bool))
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30))
    out = run_windows(an, x, times)
    assert an.template.changes == 0
    assert np.median(out[-1].x[:, F["width_ratio"]]) > 1.5


def test_ventricular_bigeminy_after_learning_is_not_taken_over():
    """Every other beat a premature wide beat: half the beats, premature, so the narrow beat stays."""
    rest, wide, t = bigeminy(60.3, 110)
    x, times, _ = _narrow_then(rest, wide, t + 1)
    an = BeatAnalyzer(FS, RelearnSettings(learn_seconds=30))
    last = run_windows(an, x, times)[-1].x
    assert an.template.changes == 0
    assert last[:, F["width_ratio"]].min() < 1.15 and last[:, F["width_ratio"]].max() > 1.5


def _p_stretches(n: int, locked: float, seed: int = 0) -> np.ndarray:
    """``n`` P-wave stretches (61 samples, 170 ms at 360 Hz): a P wave of amplitude ``locked`` at the same
    place in each, plus atrial noise of 0.02 mV that is not locked to the beats (f waves)."""
    rng = np.random.default_rng(seed)
    t = np.arange(61)
    wave = locked * np.exp(-0.5 * ((t - 30) / 7.0) ** 2)
    return wave[None, :] + rng.normal(0, 0.02, (n, 61))


def test_p_wave_coherence_tells_a_p_wave_before_every_beat_from_atrial_activity_not_locked_to_them():
    seq = np.arange(30) * 288  # 0.8 s apart
    normal = np.ones(30, bool)
    sinus = p_wave_coherence(seq, normal, _p_stretches(30, 0.15), None, FS)
    fibrillation = p_wave_coherence(seq, normal, _p_stretches(30, 0.0), None, FS)
    assert sinus is not None and fibrillation is not None
    assert sinus > 0.8 and fibrillation < 0.1  # ~1/30 for noise alone
    assert p_wave_coherence(seq[:7], normal[:7], _p_stretches(7, 0.15), None, FS) is None  # too few beats


def test_p_wave_coherence_counts_only_normal_beats_with_room_for_their_p_wave():
    """A beat not labelled N (its P wave, if any, is another) and a beat less than 0.45 s after the one
    before (the P-wave stretch holds that beat's T wave) are left out: 8 of the 12 here, too many; with
    every beat labelled N, 4, and the 8 left are enough."""
    seq = np.arange(12) * 288
    normal = np.ones(12, bool)
    normal[::3] = False
    seq[1::3] -= 150  # 0.38 s after the beat before it
    assert p_wave_coherence(seq, normal, _p_stretches(12, 0.15), None, FS) is None
    assert p_wave_coherence(seq, np.ones(12, bool), _p_stretches(12, 0.15), None, FS) > 0.8
    flat = np.zeros((12, 61))
    assert p_wave_coherence(seq, np.ones(12, bool), flat, None, FS) is None  # nothing to judge


def test_p_wave_ratio_measures_the_locked_p_wave_against_the_qrs_whatever_the_noise():
    """A P wave of 0.15 mV before every beat: its mean stretch's RMS over the QRS (1.5 mV) is the same
    with 0.02 mV or 0.3 mV of activity not locked to the beats (which takes the coherence from ~1 to
    below AF's limit); without a locked wave, noise of either size leaves about 0 (the noise's share
    of a mean of n stretches is taken off)."""
    seq = np.arange(60) * 288
    normal = np.ones(60, bool)
    t = np.arange(61)
    locked_rms = float(np.sqrt(np.mean((0.15 * np.exp(-0.5 * ((t - 30) / 7.0) ** 2)) ** 2)))
    rng = np.random.default_rng(1)
    for noise_mv in (0.02, 0.3):
        extra = rng.normal(0, noise_mv, (60, 61))
        sinus = p_wave_to_qrs(seq, normal, _p_stretches(60, 0.15) + extra, None, FS, 1.5)
        assert sinus == pytest.approx(locked_rms / 1.5, rel=0.15), noise_mv
        fibrillation = p_wave_to_qrs(seq, normal, _p_stretches(60, 0.0) + extra, None, FS, 1.5)
        assert fibrillation < 0.2 * locked_rms / 1.5, noise_mv
    noisy = _p_stretches(60, 0.15) + rng.normal(0, 0.3, (60, 61))
    assert p_wave_coherence(seq, normal, noisy, None, FS) < 0.5  # what the coherence makes of it
    assert p_wave_to_qrs(seq[:7], normal[:7], _p_stretches(7, 0.15), None, FS, 1.5) is None  # too few beats
    assert p_wave_to_qrs(seq, normal, _p_stretches(60, 0.15), None, FS, 0.0) is None  # no QRS to compare


def test_span_p_wave_coherence_is_the_definition_for_every_span():
    """The running sums training uses give, span by span, the energy of the mean stretch over the mean
    energy of the stretches of the N beats with 0.45 s before them and no gap, as computed here directly;
    spans with fewer than 8 such beats are not judged."""
    rng = np.random.default_rng(3)
    n = 400
    seq = np.cumsum(rng.integers(100, 500, n)).astype(np.int64)
    normal = rng.random(n) < 0.7
    locked = rng.random((n, 1)) < 0.5
    p_wave = _p_stretches(n, 0.15) * locked + rng.normal(0, 0.1, (n, 61))
    p_wave[rng.random(n) < 0.05] = np.nan
    stops, span = np.sort(rng.integers(0, seq[-1] + 400, 60)), 3000
    got = span_p_wave_coherence(seq, normal, p_wave, stops, span, FS)
    before = np.concatenate(([-(10**9)], seq[:-1]))
    for stop, g in zip(stops, got, strict=True):
        inside = (seq >= stop - span) & (seq < stop)
        use = inside & normal & (seq - before >= 0.45 * FS) & ~np.isnan(p_wave).any(axis=1)
        if use.sum() < 8:
            assert np.isnan(g)
            continue
        x = p_wave[use]
        mean = x.mean(axis=0)
        assert g == pytest.approx(mean @ mean / np.mean(np.sum(x * x, axis=1)), rel=1e-9)
        lo = int(np.argmax(inside))
        prev = int(seq[lo - 1]) if lo else None  # the daemon's one-span call says the same
        assert p_wave_coherence(seq[inside], normal[inside], p_wave[inside], prev, FS) == pytest.approx(g)
    assert np.isnan(got).any() and not np.isnan(got).all()
