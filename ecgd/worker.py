"""The inference worker: the beat stage, the beat labeller, the alarm engine and the windows.

One thread runs :meth:`Worker.run`. Every ~0.2 s it reads the ring's new samples into the beat stage
(QRS detector, RR), labels the beats that became final (a beat-aware model's ``BeatLabeller``) and
feeds both to the alarm engine; every hop it judges the new window (LO pins, quality gate) and holds
its record until the window's beats are final and labelled, then draws the verdict from them. It owns
that state; what the main thread replaces on a reload (the pipeline, ring, sample grid, LO pins,
recorder) it reads through its ``host`` (the :class:`~ecgd.daemon.Daemon`) at each turn, and it
publishes ``live``, ``alarm_status``, ``results`` and ``last_label`` for the status line.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ecgd import config as cfg
from ecgd.acquisition.ring import RingOverrun, SampleRing
from ecgd.alarm_replay import new_engine
from ecgd.analysis.alarms import AlarmEngine, AlarmEvent
from ecgd.analysis.beat_labels import BeatLabeller, LabelledBeats, beats_known
from ecgd.analysis.beats import BLOCK_S, Beat, BeatArrays, BeatTracker, LiveRate, WindowBeats
from ecgd.analysis.classifier import UNCLASSIFIED, UNREADABLE, Classification, WindowClassifier
from ecgd.analysis.model import Model
from ecgd.analysis.quality import adc_rails_mv
from ecgd.analysis.windows import Window, WindowScheduler
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.outputs.results import ERR, WARNING, Record, alarm_record, event_record, result_record

if TYPE_CHECKING:
    from ecgd.daemon import Daemon

NOT_JUDGED = WindowBeats.none("window not classified")
BEAT_POLL_S = BLOCK_S  # the worker feeds the beat stage at least this often: beats known within delay + 0.2 s


@dataclass
class Pipeline:
    """What the worker needs for one configuration generation."""

    settings: cfg.Settings
    model: Model
    classifier: WindowClassifier
    generation: int


@dataclass
class _BeatStage:
    """The worker's beat tracker and what it reads: the ring (replaced on some reloads) and the front end."""

    tracker: BeatTracker
    ring: SampleRing
    frontend: AnalogFrontEnd
    labeller: BeatLabeller | None  # a beat-aware model's: N/S/V/Q per beat, for the ventricular alarms
    model: Model
    template_changes: int = 0  # how many of the labeller's template changes were reported


@dataclass
class _Held:
    """A judged window whose record waits until every beat in it has been detected."""

    window: Window
    c: Classification | None
    pipeline: Pipeline
    by_labels: bool = False  # readable; its verdict comes from the stream's beat labels when they are in


class Worker:
    """The inference worker's state and loop (see the module docstring)."""

    def __init__(self, host: Daemon, stop: threading.Event, run_id: str) -> None:
        self.host = host
        self._stop = stop
        self._run_id = run_id  # alarm ids stay unique across restarts
        self.relearn_requested = threading.Event()  # set by SIGUSR1 / reload, served between windows
        self.heartbeat = time.monotonic()
        self.results = 0
        self.last_label = "-"
        self.live = LiveRate(None, 0, None, "starting")  # read by the status line
        self.alarm_status: str | None = None  # read by the status line
        self._alarms: AlarmEngine | None = None
        self._last_unreadable = False

    def run(self) -> None:
        """The thread's loop, until the daemon stops."""
        pipeline = self.host.pipeline
        assert pipeline is not None
        scheduler = self._scheduler(
            pipeline.settings, self.host.sampler.grid.first_seq
        )  # from the first slot
        stage = self._beat_stage(pipeline, self.host.sampler.grid.first_seq)
        held: deque[_Held] = deque()
        self._open_alarms(pipeline.settings, stage, self.host.sampler.grid.first_seq)
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            current = self.host.pipeline
            if current is not None and current.generation != pipeline.generation:
                if (
                    _windowing(current.settings) != _windowing(pipeline.settings)
                    or scheduler.ring is not self.host.ring
                ):
                    scheduler = self._scheduler(current.settings, self.host.ring.next_seq)
                if (
                    _beat_config(current.settings) != _beat_config(pipeline.settings)
                    or stage.ring is not self.host.ring
                    or (stage.labeller is not None) != current.classifier.beat_aware
                ):
                    new_time_base = stage.ring is not self.host.ring
                    self._release_held(stage, held, final=True)
                    stage = self._beat_stage(current, self.host.ring.next_seq)
                    if new_time_base:  # seqs restart: the engine cannot carry its alarms across
                        self._alarms_at_stop("the sampler restarted on a new sample grid")
                        self._open_alarms(current.settings, stage, self.host.ring.next_seq)
                    elif self._alarms is not None:  # another kind of model: labels come, or stop coming
                        self._alarms.labelled_beats = stage.labeller is not None
                elif stage.labeller is not None:  # a reload learns the patient's beat again (as before)
                    stage.labeller.relearn(current.model, current.settings.relearn)
                    stage.model = current.model
                self._reload_alarms(pipeline.settings, current.settings)
                pipeline = current
            self._serve_relearn(pipeline, stage)
            self._feed_beats(stage)
            for window in scheduler.next(timeout=BEAT_POLL_S):
                self._emit_window(window, pipeline, stage, held)
            self._release_held(stage, held)
        self._feed_beats(stage)
        self._release_held(stage, held, final=True)
        self._emit_incomplete(scheduler, pipeline)
        self._alarms_at_stop("stopping")

    # -- the beat stage (heart rate, RR) -------------------------------------------------------
    def _beat_stage(self, pipeline: Pipeline, first_seq: int) -> _BeatStage:
        settings = pipeline.settings
        b, rate = settings.beats, settings.sampling.rate_hz
        keep = settings.sampling.ring_seconds
        tracker = BeatTracker(rate, b.qrs, b.tracker, first_seq=first_seq, keep_s=keep)
        labeller = None
        if pipeline.classifier.beat_aware:
            labeller = BeatLabeller(pipeline.model, rate, settings.relearn, first_seq=first_seq)
        return _BeatStage(tracker, self.host.ring, settings.analog_frontend, labeller, pipeline.model)

    def _feed_beats(self, stage: _BeatStage) -> None:
        """The ring's new samples into the beat stage; samples already overwritten are a break."""
        beats, ring = stage.tracker, stage.ring
        start, stop = beats.fed_until, ring.next_seq
        if stop > start:
            oldest = stop - ring.capacity // 2  # leave the writer room: never read where it may be writing
            if start < oldest:
                beats.lost(start, oldest)
                self._alarm_lost(start, oldest)
                start = oldest
            try:
                block = ring.read(start, stop)
            except RingOverrun:
                beats.lost(start, stop)
                self._alarm_lost(start, stop)
            else:
                mv = stage.frontend.counts_to_mv(block.counts)
                new = beats.feed(start, mv, block.valid)
                labelled = None
                if stage.labeller is not None:
                    seqs = [b.seq for b in new]
                    labelled = stage.labeller.feed(start, mv, block.valid, seqs, beats.confirmed_until())
                    self.host.record_beats(labelled.seq.tolist(), labelled.labels.tolist())
                    self._report_template_changes(stage)
                else:
                    self.host.record_beats([b.seq for b in new], ["Q"] * len(new))
                self._alarm_feed(start, mv, block.valid, new, labelled)
        leads_off = bool(self.host.leads.off_now()) if self.host.leads is not None else False
        self.live = beats.live(leads_off=leads_off, unreadable=self._last_unreadable)

    def _report_template_changes(self, stage: _BeatStage) -> None:
        """One lifecycle record each time the patient's dominant beat changed for good and became the
        template (``PatientTemplate._changed``): from then on beats are judged against a new shape, which
        a clinician should know of (a new bundle branch block looks exactly like this)."""
        assert stage.labeller is not None
        changes = stage.labeller.template_changes
        for number, change in enumerate(changes[stage.template_changes :], start=stage.template_changes + 1):
            self.host.lifecycle(
                f"{change.describe()}; beats are judged against it from here",
                event="template_changed",
                template_changes=number,
                qrs_width_ms=round(change.qrs_width_ms, 1),
                previous_qrs_width_ms=round(change.previous_qrs_width_ms, 1),
                seq=change.seq,
            )
        stage.template_changes = len(changes)

    def _hold(
        self,
        window: Window,
        c: Classification | None,
        pipeline: Pipeline,
        stage: _BeatStage,
        held: deque[_Held],
        by_labels: bool = False,
    ) -> None:
        """Judged: the beat stage learns where the signal was unreadable (and restarts its detector at
        the first readable window after); the record waits for the window's last beats (and, with
        ``by_labels``, their labels: then the verdict is drawn from them)."""
        beats = stage.tracker
        if window.block is not None and (c is not None or by_labels):
            if self._alarms is not None and c is not None:
                self._submit_alarms(self._alarms.window(window.first_seq, window.stop_seq, c.label, c.reason))
            if c is not None and c.label == UNREADABLE:
                beats.unreadable(window.first_seq, window.stop_seq)
                self._last_unreadable = True
            elif by_labels or (c is not None and c.probabilities is not None):
                redone = beats.readable(window.first_seq, window.stop_seq)  # restarts after a bad stretch
                if redone is not None and stage.labeller is not None:
                    stage.labeller.replace_from(redone[0], [b.seq for b in redone[1]])
                self._last_unreadable = False
        held.append(_Held(window, c, pipeline, by_labels))

    def _release_held(self, stage: _BeatStage, held: deque[_Held], final: bool = False) -> None:
        """Submit the held records whose beats are all known (all of them when ``final``)."""
        beats, labeller = stage.tracker, stage.labeller
        if final and labeller is not None:  # this beat stage ends: its last beats, without a next one
            flushed = labeller.flush()
            self.host.record_beats(flushed.seq.tolist(), flushed.labels.tolist())
            self._report_template_changes(stage)
        while held and (final or beats_known(beats, labeller, held[0].window.stop_seq, held[0].by_labels)):
            h = held.popleft()
            w, c = h.window, h.c
            if h.by_labels and w.block is not None:
                c = self._verdict_from_labels(h, stage)
            if c is None or w.block is None:
                figures = WindowBeats.none("window skipped: not judged")
            elif c.label == UNREADABLE:
                figures = WindowBeats.none("window unreadable")
            elif c.probabilities is None:
                figures = WindowBeats.none("window not classified")
            elif beats.final_until() < w.stop_seq:
                figures = WindowBeats.none("stopped before the beats at the window's end were detected")
            else:
                figures = beats.window(w.first_seq, w.stop_seq)
            meta = h.pipeline.model.metadata
            self._submit(
                result_record(w, c, meta.ident, meta.abnormal_labels, self.host.clock.wall_ns(), figures)
            )

    def _verdict_from_labels(self, h: _Held, stage: _BeatStage) -> Classification:
        """A readable window's verdict from its labelled beats; the alarm engine hears it now."""
        w = h.window
        assert w.block is not None and stage.labeller is not None
        try:
            c = h.pipeline.classifier.verdict_from(stage.labeller, w.first_seq, w.stop_seq, w.block.missing)
        except Exception as exc:  # as for a window the model fails on: reported, never fatal
            c = self._classify_failed(w, exc)
        if self._alarms is not None:
            self._submit_alarms(self._alarms.window(w.first_seq, w.stop_seq, c.label, c.reason))
        return c

    def _scheduler(self, settings: cfg.Settings, first_seq: int) -> WindowScheduler:
        rate = settings.sampling.rate_hz
        w = settings.windows
        sampler = self.host.sampler
        return WindowScheduler(
            self.host.ring,
            round(w.window_seconds * rate),
            max(1, round(w.hop_seconds * rate)),
            lambda seq: sampler.grid.wall_ns(seq),
            first_seq=first_seq,
        )

    def _serve_relearn(self, pipeline: Pipeline, stage: _BeatStage) -> None:
        if not self.relearn_requested.is_set():
            return
        self.relearn_requested.clear()
        what = []
        if pipeline.classifier.beat_aware:
            pipeline.classifier.relearn()
            if stage.labeller is not None:
                stage.labeller.relearn()
            what.append("the patient's dominant beat")
        if self._alarms is not None:
            self._alarms.relearn()  # the QRS size the alarms compare beats with (alarms.qrs_fraction)
            what.append("the patient's usual QRS size for the alarms")
        if what:
            self.host.lifecycle(f"learning {' and '.join(what)} again (relearn)", event="relearn")

    def _emit_window(self, window: Window, pipeline: Pipeline, stage: _BeatStage, held: deque[_Held]) -> None:
        c: Classification | None = None
        leads = self.host.leads
        if window.block is not None and leads is not None:
            grid = self.host.sampler.grid
            off = leads.off_between(grid.deadline_ns(window.first_seq), grid.deadline_ns(window.stop_seq - 1))
            if off is not None:  # the second witness: never pass such a window to the model
                c = Classification(UNREADABLE, None, None, off, window.block.missing, None)
        by_labels = False
        if window.block is not None and c is None:
            mv = pipeline.settings.analog_frontend.counts_to_mv(window.block.counts)
            try:
                if stage.labeller is not None and stage.model is pipeline.model:
                    c = pipeline.classifier.screen(mv, window.block.valid)  # the verdict: from the labels
                    by_labels = c is None
                else:
                    c = pipeline.classifier.classify(mv, window.block.valid, window.first_seq)
            except Exception as exc:  # the monitor reports a broken window and goes on; it never dies on one
                c = self._classify_failed(window, exc)
        self._hold(window, c, pipeline, stage, held, by_labels)

    def _classify_failed(self, window: Window, exc: Exception) -> Classification:
        assert window.block is not None
        self.host.dispatcher.submit(
            event_record(
                "fault",
                f"window {window.index} not classified: {exc!r}",
                ERR,
                self.host.clock.wall_ns(),
                event="classify_error",
            )
        )
        return Classification(
            UNCLASSIFIED, None, None, f"internal error: {exc!r}", window.block.missing, None
        )

    def _emit_incomplete(self, scheduler: WindowScheduler, pipeline: Pipeline) -> None:
        """At shutdown, windows not yet classified and the one being filled get a record each saying so:
        a stop must not lose a window's line (the worker may be behind, or the stop come between a
        window's last sample and its turn)."""
        meta = pipeline.model.metadata
        for window in scheduler.drain("stopped before the window was classified; not classified"):
            c = Classification(UNCLASSIFIED, None, None, window.skip_reason, 0, None)
            record = result_record(
                window, c, meta.ident, meta.abnormal_labels, self.host.clock.wall_ns(), NOT_JUDGED
            )
            record.fields["missing_samples"] = None
            self._submit(record)
        acquired = self.host.ring.next_seq - (scheduler.next_stop - scheduler.hop)
        if acquired <= 0:
            return
        first = scheduler.next_stop - scheduler.window
        window = Window(
            scheduler.next_index,
            first,
            scheduler.next_stop,
            None,
            scheduler.wall_ns(first),
            scheduler.wall_ns(scheduler.next_stop),
        )
        reason = (
            f"stopped before the window was complete ({acquired} of {scheduler.hop} new samples); "
            "not classified"
        )
        c = Classification(UNCLASSIFIED, None, None, reason, 0, None)
        record = result_record(
            window, c, meta.ident, meta.abnormal_labels, self.host.clock.wall_ns(), NOT_JUDGED
        )
        record.fields["missing_samples"] = None
        self._submit(record)

    def _submit(self, record: Record) -> None:
        if record.kind == "result":
            self.host.record_result(record, self.last_label)
        self.host.dispatcher.submit(record)
        if record.kind == "result":
            self.results += 1
            self.last_label = record.fields["label"]

    # -- alarms (issue 9): fed by the worker every ~0.2 s from the ring, then by each window's verdict ---
    def _open_alarms(self, settings: cfg.Settings, stage: _BeatStage, first_seq: int) -> None:
        """A fresh engine from ``first_seq`` beside a fresh beat stage (start, or a reload that
        rebuilt it): the engine is fed the same blocks and the beats they confirmed."""
        rails = adc_rails_mv(settings.analog_frontend)
        self._alarms = new_engine(
            settings.sampling.rate_hz,
            settings.alarms,
            settings.quality,
            rails,
            first_seq,
            stage.tracker.detector,
            settings.beats.qrs,
            f"{self._run_id}-",
            labelled_beats=stage.labeller is not None,
        )

    def _alarm_feed(
        self,
        first_seq: int,
        mv: np.ndarray,
        valid: np.ndarray,
        beats: list[Beat],
        labelled: LabelledBeats | None = None,
    ) -> None:
        """The beat stage's block, the beats it confirmed and those the labeller labelled, into the
        alarm engine."""
        engine = self._alarms
        if engine is None:
            return
        if engine.now < first_seq:  # samples the beat stage never got: missing for the alarms too
            self._alarm_lost(engine.now, first_seq)
        off = None
        if self.host.leads is not None:
            grid = self.host.sampler.grid
            off = self.host.leads.off_between(
                grid.deadline_ns(first_seq), grid.deadline_ns(first_seq + mv.size - 1)
            )
        try:
            events = engine.feed(first_seq, mv, valid, BeatArrays.of(beats), off, labelled=labelled)
        except Exception as exc:  # never let the alarm layer kill the worker; say so loudly
            self._alarms = None
            self.alarm_status = "ALARMS DOWN"
            message = f"alarm layer stopped: {exc!r}; no alarms will sound until a restart"
            self.host.dispatcher.submit(
                event_record("fault", message, ERR, self.host.clock.wall_ns(), event="alarms_down")
            )
            return
        self._submit_alarms(events)

    def _alarm_lost(self, lo: int, hi: int) -> None:
        """Samples ``[lo, hi)`` that were never read: the engine sees them as missing, never as signal."""
        engine = self._alarms
        if engine is None or hi <= engine.now:
            return
        n = hi - engine.now  # from where the engine got to: its blocks are contiguous
        self._submit_alarms(engine.feed(engine.now, np.zeros(n, np.float32), np.zeros(n, bool), None))

    def _submit_alarms(self, events: list[AlarmEvent]) -> None:
        grid = self.host.sampler.grid
        for e in events:
            record = alarm_record(e, self.host.clock.wall_ns(), grid.wall_ns(e.onset_seq))
            record.fields.update(self.host.recording_location(e.onset_seq))  # journalctl line → its strip
            self.host.annotate(e.seq, '"', f"alarm {e.alarm} {e.state}: {e.describe()}"[:200])
            self.host.dispatcher.submit(record)
        if self._alarms is not None:
            self.alarm_status = self._alarms.status()  # the main loop's next STATUS= (≤ 1 s) leads with it

    def _alarms_at_stop(self, why: str) -> None:
        """A stop ends monitoring, not the alarms: say which were still active (no false ``end``)."""
        engine = self._alarms
        if engine is None or not engine.active:
            return
        ids = [a.alarm_id for a in engine.active.values()]
        message = f"{why} with alarms active: {engine.status()}; their end was not observed"
        self.host.dispatcher.submit(
            event_record(
                "lifecycle", message, WARNING, self.host.clock.wall_ns(), event="alarms_active", alarm_ids=ids
            )
        )

    def _reload_alarms(self, old: cfg.Settings, new: cfg.Settings) -> None:
        if self._alarms is not None and new.alarms != old.alarms:
            self._submit_alarms(self._alarms.apply_settings(new.alarms))
            if new.alarms.switched_off() != old.alarms.switched_off():
                self.announce_alarms_off(new)

    def announce_alarms_off(self, settings: cfg.Settings) -> None:
        """Say once which alarms will never sound (at start, and on a reload that changes it)."""
        off = settings.alarms.switched_off()
        if off:
            what = "the alarm layer is off" if not settings.alarms.enabled else ", ".join(off)
            self.host.lifecycle(f"alarms switched off: {what}", event="alarms_off", alarms=off)


def _windowing(settings: cfg.Settings) -> tuple:
    return (settings.sampling.rate_hz, dataclasses.astuple(settings.windows))


def _beat_config(settings: cfg.Settings) -> tuple:
    return (settings.sampling.rate_hz, settings.sampling.ring_seconds, settings.beats, settings.frontend)
