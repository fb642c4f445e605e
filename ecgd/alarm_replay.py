"""``ecgd alarms``: the daemon's alarm path over a recording, one JSON line per alarm episode.

The recording is cut into the blocks the daemon's worker sees (~0.2 s; :func:`ecgd.offline.drive`, the
loop ``ecgd classify`` runs too), each goes through the same QRS detector and the same ``AlarmEngine``;
the classifier's windows (the daemon's window length and hop) give the engine the same quality and AF
verdicts, each once its last sample has been fed. With
``--frontend pcf8591`` the recording first goes through the AD8232 + 8-bit ADC model, so the result
is what the monitor would have said.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ecgd.analysis.alarms import AlarmEngine, AlarmEvent, AlarmSettings
from ecgd.analysis.beat_labels import BeatLabeller
from ecgd.analysis.beats import BeatArrays, BeatSettings, BeatTracker, confirmation_delay
from ecgd.analysis.classifier import SKIPPED, UNCLASSIFIED, UNREADABLE, Classification
from ecgd.analysis.qrs import QrsDetector, QrsSettings
from ecgd.analysis.quality import QualitySettings, adc_rails_mv
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.offline import Fed, Screened, drive


def new_engine(
    fs: float,
    alarms: AlarmSettings,
    quality: QualitySettings,
    rails_mv: tuple[float, float] | None,
    first_seq: int,
    detector: QrsDetector,
    qrs: QrsSettings,
    id_prefix: str,
    labelled_beats: bool = False,
) -> AlarmEngine:
    """The engine as the daemon builds it (one place, so offline and live agree); ``labelled_beats``
    when a :class:`~ecgd.analysis.beat_labels.BeatLabeller` feeds it the beats' labels."""
    return AlarmEngine(
        fs,
        alarms,
        first_seq=first_seq,
        delay_samples=confirmation_delay(detector, qrs),
        rails_mv=rails_mv,
        rail_margin_fraction=quality.rail_margin_fraction,
        rail_max_run_s=quality.rail_max_run_s,
        min_qrs_slope_mv_per_s=quality.qrs_min_slope_mv_per_s,
        refractory_s=qrs.refractory_s,
        id_prefix=id_prefix,
        labelled_beats=labelled_beats,
    )


@dataclass
class Episode:
    onset: AlarmEvent
    end: AlarmEvent | None = None

    def row(self) -> dict[str, Any]:
        e = self.onset
        row: dict[str, Any] = {
            "alarm": e.alarm,
            "priority": e.priority,
            "category": e.category,
            "onset": e.onset_seq,
            "end": self.end.seq if self.end else None,
            "value": e.value,
            "unit": e.unit,
            "threshold": e.threshold,
            "detected": e.detected_seq,
            "duration_s": None if self.end is None else round(self.end.duration_s or 0.0, 2),
            "alarm_id": e.alarm_id,
            "detail": e.detail,
        }
        if self.end is not None and self.end.value is not None:
            row["end_value"] = self.end.value
        return row


def replay(
    mv: np.ndarray,
    fs: float,
    alarms: AlarmSettings,
    quality: QualitySettings,
    rails_mv: tuple[float, float] | None,
    classify=None,
    window_n: int = 0,
    hop_n: int = 0,
    id_prefix: str = "",
    leads_off=None,
    qrs: QrsSettings | None = None,
    beat_settings: BeatSettings | None = None,
    labeller: BeatLabeller | None = None,
    verdict=None,
) -> Iterator[AlarmEvent]:
    """Every alarm event of a recording. ``classify(mv_window) -> (label, reason)`` gives the window
    verdicts, or None for a readable window whose verdict ``verdict(first, stop) -> (label, reason)``
    draws from the beat labels once they are in; ``leads_off(first, stop) -> reason | None`` plays
    the LO pins (tests).

    The beats come from the daemon's beat stage (``BeatTracker``), fed the same blocks and told about
    unreadable windows when their last sample is in, as the daemon's worker does; ``labeller`` (a
    beat-aware model's) labels them for the ventricular alarms, as in the daemon. The engine hears
    each window verdict when the daemon would have it."""
    qrs = qrs or QrsSettings()
    tracker = BeatTracker(fs, qrs, beat_settings, keep_s=30.0)
    engine = new_engine(
        fs, alarms, quality, rails_mv, 0, tracker.detector, qrs, id_prefix, labeller is not None
    )

    def judge(a: int, b: int) -> Classification | None:
        """``classify``'s (label, reason) as the driver's verdict: probabilities (empty) mark a window
        the beat stage may read, as a model's classification does."""
        said = classify(mv[a:b])
        if said is None:
            return None
        label, reason = said
        readable = label not in (UNREADABLE, UNCLASSIFIED, SKIPPED)
        return Classification(label, None, {} if readable else None, reason, 0, None)

    n = window_n if classify is not None else 0
    for ev in drive(mv, fs, n, hop_n, judge, tracker, None, labeller, finish=False):
        if isinstance(ev, Fed):
            off = leads_off(ev.first, ev.first + ev.x.size) if leads_off is not None else None
            yield from engine.feed(ev.first, ev.x, None, BeatArrays.of(ev.beats), off, labelled=ev.labelled)
        elif isinstance(ev, Screened):
            if ev.verdict is not None:  # a refusal (noise, missing samples) is heard at once, as live
                yield from engine.window(ev.first, ev.stop, ev.verdict.label, ev.verdict.reason)
        elif ev.verdict is None:  # a readable window, its beats now labelled
            yield from engine.window(ev.first, ev.stop, *verdict(ev.first, ev.stop))


def episodes(events: Iterator[AlarmEvent]) -> list[Episode]:
    """Pair onsets with their ends (by ``alarm_id``), in onset order."""
    out: dict[str, Episode] = {}
    for e in events:
        if e.state == "onset":
            out[e.alarm_id] = Episode(e)
        elif e.alarm_id in out:
            out[e.alarm_id].end = e
    return sorted(out.values(), key=lambda ep: (ep.onset.onset_seq, ep.onset.alarm))


def recording_events(rec, settings, frontend: AnalogFrontEnd | None, model=None) -> Iterator[AlarmEvent]:
    """``replay`` of a ``Recording`` with a config's alarm, quality and window settings."""
    fs = rec.fs
    if frontend is not None:
        mv = frontend.simulate_mv(rec.mv, fs)
        rails = adc_rails_mv(frontend)
    else:
        mv = np.asarray(rec.mv, dtype=np.float32)
        rails = None
    classify = verdict = None
    labeller = None
    window_n = hop_n = 0
    if model is not None:
        from ecgd.analysis.classifier import WindowClassifier

        classifier = WindowClassifier(
            model, fs, settings.quality, rails, max_missing_fraction=0.0, qrs=settings.beats.qrs
        )

        def classify(x: np.ndarray) -> tuple[str, str | None] | None:
            c = classifier.screen(x) if labeller is not None else classifier.classify(x)
            return None if c is None else (c.label, c.reason)

        if classifier.beat_aware:  # as the daemon: beats labelled as they come, windows judged from them
            labeller = BeatLabeller(model, fs, settings.relearn)

            def verdict(a: int, b: int) -> tuple[str, str | None]:
                c = classifier.verdict_from(labeller, a, b, 0)
                return c.label, c.reason

        window_n = round(model.metadata.window_seconds * fs)
        hop_n = max(1, round(settings.windows.hop_seconds * fs))
    return replay(
        mv,
        fs,
        settings.alarms,
        settings.quality,
        rails,
        classify,
        window_n,
        hop_n,
        f"{rec.name}-",
        qrs=settings.beats.qrs,
        beat_settings=settings.beats.tracker,
        labeller=labeller,
        verdict=verdict,
    )


def run_alarms(args: argparse.Namespace) -> int:
    from ecgd.commands import (
        EX_DATAERR,
        CommandError,
        load_settings,
        open_model,
        open_recording,
        print_json_lines,
    )

    settings = load_settings(args.config)
    model = None if args.no_model else open_model(settings.model_path, settings.metadata_path)
    rec = open_recording(args.record, args.channel, args.fs)
    if args.fs and rec.fs != args.fs:  # a WFDB record declared at another rate: played faster or slower
        rec = dataclasses.replace(rec, fs=float(args.fs))
    if rec.fs < 100:
        raise CommandError(
            f"{rec.name}: {rec.fs:g} Hz is too slow for QRS detection (need ≥ 100 Hz)", EX_DATAERR
        )
    frontend = settings.analog_frontend if args.frontend == "pcf8591" else None
    return print_json_lines(ep.row() for ep in episodes(recording_events(rec, settings, frontend, model)))
