"""Wiring: source → sampler → ring → windows → classifier → sinks, plus signals,
sd_notify, the watchdog and live reload. The only module that knows all others.

Threads: the sampler (owns the source and the grid), the inference worker
(owns the scheduler and the classifier), the sink dispatcher (owns the sinks);
the main thread handles signals, faults, status and the watchdog. Data moves
one way, through the ring and the dispatcher's bounded queue.
"""

from __future__ import annotations

import dataclasses
import queue
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgd import __version__
from ecgd import config as cfg
from ecgd.acquisition.clock import Clock, RealClock
from ecgd.acquisition.leadoff import GpiodLeadOffLines, LeadOffError, LeadOffLines, LeadOffMonitor
from ecgd.acquisition.ring import RingOverrun, SampleRing
from ecgd.acquisition.sampler import SampleGrid, Sampler, SamplerEvent
from ecgd.acquisition.sources.emulated import EmulatedI2c, EmulatedLeadOffLines, emulated_device
from ecgd.acquisition.sources.pcf8591 import Pcf8591
from ecgd.alarm_replay import new_engine
from ecgd.analysis.alarms import AlarmEngine, AlarmEvent
from ecgd.analysis.beat_labels import BeatLabeller, LabelledBeats
from ecgd.analysis.beats import BLOCK_S, Beat, BeatTracker, LiveRate, WindowBeats
from ecgd.analysis.classifier import UNCLASSIFIED, UNREADABLE, Classification, WindowClassifier
from ecgd.analysis.model import Model, ModelError, load_model
from ecgd.analysis.quality import adc_rails_mv
from ecgd.analysis.windows import Window, WindowScheduler
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import RecordError, read_recording
from ecgd.notify import Notifier
from ecgd.outputs.recording import Recorder
from ecgd.outputs.results import (
    ERR,
    INFO,
    NOTICE,
    WARNING,
    Record,
    alarm_record,
    event_record,
    result_record,
)
from ecgd.outputs.sinks import Sink, SinkDispatcher
from ecgd.outputs.sinks.console import ConsoleSink
from ecgd.outputs.sinks.journal import JournalSink
from ecgd.outputs.sinks.logfile import RotatingJsonLog

EX_OK, EX_UNAVAILABLE, EX_CONFIG = 0, 69, 78
LIVENESS_LIMIT_S = 5.0  # a thread silent this long is hung: stop feeding the watchdog
NOT_JUDGED = WindowBeats.none("window not classified")
BEAT_POLL_S = BLOCK_S  # the worker feeds the beat stage at least this often: beats known within delay + 0.2 s
ACQUISITION_SECTIONS = ("device", "emulated", "sampling", "frontend")
ELECTRODE = {"LO+": "+IN", "LO−": "−IN"}  # which electrode each AD8232 leads-off pin watches


class StartupError(Exception):
    """A problem that makes starting pointless (bad model, config, recording): exit 78."""


def load_checked_model(settings: cfg.Settings) -> Model:
    """The configured model, checked against the settings that feed it."""
    for p, what in ((settings.model_path, "model file"), (settings.metadata_path, "model metadata file")):
        try:
            cfg.check_file_not_world_writable(p, what)
        except cfg.ConfigError as exc:
            raise ModelError(str(exc)) from None
    model = load_model(settings.model_path, settings.metadata_path)
    w = settings.windows.window_seconds
    if abs(model.metadata.window_seconds - w) > 1e-9:
        raise ModelError(
            f"{settings.model_path}: model window is {model.metadata.window_seconds:g} s but "
            f"windows.window_seconds is {w:g} s in {settings.source}"
        )
    return model


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


@dataclass(frozen=True)
class _Beats:
    """The new beats' R-peak seqs and the beat stage's RR (NaN: not measured), for the alarm engine."""

    seq: np.ndarray
    rr_ms: np.ndarray


@dataclass
class _Held:
    """A judged window whose record waits until every beat in it has been detected."""

    window: Window
    c: Classification | None
    pipeline: Pipeline
    by_labels: bool = False  # readable; its verdict comes from the stream's beat labels when they are in


class Daemon:
    def __init__(
        self,
        settings: cfg.Settings,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        stdout=None,
        liveness_limit_s: float = LIVENESS_LIMIT_S,
    ) -> None:
        self.settings = settings
        self.clock = clock or RealClock()
        self.notifier = notifier or Notifier()
        self.stdout = stdout
        self.liveness_limit_s = liveness_limit_s
        self.events: queue.SimpleQueue[SamplerEvent] = queue.SimpleQueue()
        self.i2c: EmulatedI2c | None = None
        self.leads: LeadOffMonitor | None = None
        self.leads_problem: str | None = None
        self.results = 0
        self.last_label = "-"
        self.live = LiveRate(None, 0, None, "starting")  # published by the worker, read by _status()
        self._last_unreadable = False
        self.worker_heartbeat = time.monotonic()
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._relearn_requested = threading.Event()  # set by SIGUSR1 / reload, served by the worker
        self._pipeline: Pipeline | None = None
        self._generation = 0
        self._journal_said = False
        self._run_id = uuid.uuid4().hex[:8]  # alarm ids stay unique across restarts
        self._alarms: AlarmEngine | None = None
        self.alarm_status: str | None = None  # set by the worker, read by the status line
        self.recorder: Recorder | None = None
        self.recording_problem: str | None = None
        self._recorded_until: int | None = None
        self._recording_stall_said = False

    # -- building blocks ---------------------------------------------------------------------
    def _pipeline_for(self, settings: cfg.Settings, model: Model | None = None) -> Pipeline:
        model = model or load_checked_model(settings)
        rails = adc_rails_mv(settings.analog_frontend)
        classifier = WindowClassifier(
            model,
            settings.sampling.rate_hz,
            settings.quality,
            rails,
            settings.windows.max_missing_fraction,
            settings.windows.max_gap_seconds,
            settings.beats.qrs,
            relearn=settings.relearn,
        )
        self._generation += 1
        return Pipeline(settings, model, classifier, self._generation)

    def _sinks(self, settings: cfg.Settings) -> list[Sink]:
        out = settings.output
        sinks: list[Sink] = []
        if out.log_file:
            sinks.append(RotatingJsonLog(settings._resolve(out.log_file), out.log_max_bytes, out.log_backups))
        if out.journal:
            sinks.append(JournalSink())
        if out.console:
            sinks.append(ConsoleSink(self.stdout))
        return sinks

    def _source(self, settings: cfg.Settings) -> Pcf8591:
        d = settings.device
        if d.kind == "emulated":
            e = settings.emulated
            try:
                rec = read_recording(settings.demo_recording, e.recording_channel, e.recording_rate_hz)
            except (RecordError, OSError) as exc:
                raise StartupError(f"emulated.recording: {exc}") from None
            self.i2c = emulated_device(
                rec,
                settings.analog_frontend,
                self.clock,
                channel=d.channel,
                bus_number=d.i2c_bus,
                address=d.address,
                latency_ms=e.bus_latency_ms,
                error_rate=e.error_rate,
                seed=e.seed,
            )
            return Pcf8591(d.i2c_bus, d.address, d.channel, bus_factory=self.i2c)
        self.i2c = None
        return Pcf8591(d.i2c_bus, d.address, d.channel)

    def _open_leads(self, settings: cfg.Settings) -> tuple[LeadOffMonitor | None, str | None]:
        """The LO+/LO− monitor, if pins are configured. A pin that cannot be read is reported, not
        fatal: the signal-quality gate still judges every window (like a missing ADC, it must not
        make the unit exit)."""
        offsets = settings.leads.offsets
        if not offsets:
            return None, None
        lines: LeadOffLines
        try:
            if settings.device.kind == "emulated":
                assert self.i2c is not None and self.i2c.electrodes is not None
                lines = EmulatedLeadOffLines(self.i2c.electrodes, tuple(offsets))
            else:
                lines = GpiodLeadOffLines(settings.leads.gpio_chip, offsets)
        except LeadOffError as exc:
            return None, str(exc)
        return LeadOffMonitor(lines, self.clock.monotonic_ns()), None

    def _report_leads_problem(self) -> None:
        if self.leads_problem:
            message = (
                f"leads-off input unavailable: {self.leads_problem}; windows are judged from the signal alone"
            )
            wall = self.clock.wall_ns()
            self.dispatcher.submit(event_record("fault", message, ERR, wall, event="leads_input"))

    def _start_sampler(
        self, settings: cfg.Settings, source: Pcf8591, ring: SampleRing, grid: SampleGrid | None = None
    ) -> None:
        s, d = settings.sampling, settings.device
        self.sampler = Sampler(
            source,
            ring,
            self.clock,
            s.rate_hz,
            late_tolerance_ms=s.late_tolerance_periods * 1000.0 / s.rate_hz,
            retries=d.retries,
            fault_after_s=d.fault_after_seconds,
            max_backoff_s=d.max_backoff_seconds,
            events=self.events,
            realtime_priority=s.realtime_priority,
        )
        self._sampler_thread = threading.Thread(
            target=self.sampler.run, kwargs={"grid": grid}, name="ecgd-sampler", daemon=True
        )
        self._sampler_thread.start()
        self.sampler.wait_ready(5.0)

    @staticmethod
    def _new_ring(settings: cfg.Settings) -> SampleRing:
        return SampleRing(int(settings.sampling.ring_seconds * settings.sampling.rate_hz))

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Everything that can fail for a bad config or model fails here, before any thread runs."""
        settings = self.settings
        pipeline = self._pipeline_for(settings)
        source = self._source(settings)
        self.dispatcher = SinkDispatcher(self._sinks(settings), settings.output.queue_size)
        self.dispatcher.start()
        self._pipeline = pipeline
        self.leads, self.leads_problem = self._open_leads(settings)
        self._report_leads_problem()
        self.ring = self._new_ring(settings)
        sys.setswitchinterval(0.0005)  # let the sampler thread take the GIL promptly at its deadline
        self._start_sampler(settings, source, self.ring)
        self._start_recorder(settings)
        self._worker_thread = threading.Thread(target=self._work, name="ecgd-worker", daemon=True)
        self._worker_thread.start()
        m = pipeline.model
        self._lifecycle(
            f"ecgd started: {settings.device.kind} source, {settings.sampling.rate_hz:g} Hz, "
            f"model {m.metadata.ident} ({m.backend}, {m.input_dtype})",
            event="started",
            backend=m.backend,
            config=settings.source,
            sampler_policy=self.sampler.policy,
        )
        self._announce_alarms_off(settings)
        self.notifier.ready(self._status())

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def request_relearn(self) -> None:
        """SIGUSR1 (``ecgd relearn``): learn the patient's dominant beat again; the worker does it
        between two windows, because the worker owns the classifier's state."""
        self._relearn_requested.set()

    def run(self, duration_s: float | None = None) -> int:
        """Main loop: signals, sensor events, status and watchdog, until stopped."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        signal.signal(signal.SIGUSR1, lambda *_: self.request_relearn())
        end = None if duration_s is None else time.monotonic() + duration_s
        wd = self.notifier.watchdog_interval_s
        next_ping = next_status = 0.0
        while not self._stop.is_set():
            self._stop.wait(0.1)
            now = time.monotonic()
            self.notifier.flush()  # READY/WATCHDOG/… that a full notify socket refused earlier
            self._drain_events()
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.reload()
            if end is not None and now >= end:
                break
            if wd is not None and now >= next_ping and self.alive():
                self.notifier.watchdog()
                next_ping = now + wd
            if now >= next_status:
                self.notifier.status(self._status())
                next_status = now + 1.0
        self.shutdown()
        return EX_OK

    def alive(self) -> bool:
        """Both data threads made progress recently (a hung one stops the watchdog pings)."""
        sampler_age = (self.clock.monotonic_ns() - self.sampler.heartbeat_ns) / 1e9
        worker_age = time.monotonic() - self.worker_heartbeat
        return (
            self._sampler_thread.is_alive()
            and self._worker_thread.is_alive()
            and self.dispatcher.is_alive()
            and sampler_age < self.liveness_limit_s
            and worker_age < self.liveness_limit_s
        )

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.sampler.stop()
        self._stop.set()
        self._sampler_thread.join(1.0)
        self._worker_thread.join(1.0)
        if self._worker_thread.is_alive():  # stuck in a slow inference: say so rather than lose it silently
            message = (
                "stopped while the inference worker was still classifying: that window, and any after "
                "it, have no result line"
            )
            self.dispatcher.submit(
                event_record("fault", message, ERR, self.clock.wall_ns(), event="worker_busy")
            )
        self._drain_events()
        if self.leads is not None:
            self.leads.close()
        recorded = self._stop_recorder()
        st = self.sampler.stats()
        self._lifecycle(
            f"ecgd stopping: {self.results} windows reported, {st.taken} samples taken, {st.missing} missing"
            + self._notify_losses(),
            event="stopped",
            results=self.results,
            samples_taken=st.taken,
            samples_missing=st.missing,
            missing_late=st.missing_late,
            missing_errors=st.missing_errors,
            read_errors=st.read_errors,
            lateness_p50_ms=round(st.lateness_p50_ms, 4),
            lateness_p99_ms=round(st.lateness_p99_ms, 4),
            lateness_max_ms=round(st.lateness_max_ms, 4),
            sampler_policy=self.sampler.policy,
            records_dropped=self.dispatcher.dropped,
            notifications_dropped=self.notifier.dropped,
            notifications_deferred=self.notifier.deferred,
            **recorded,
        )
        self.notifier.flush()
        self.dispatcher.close(1.0)

    # -- the inference worker ------------------------------------------------------------------
    def _work(self) -> None:
        pipeline = self._pipeline
        assert pipeline is not None
        scheduler = self._scheduler(pipeline.settings, self.sampler.grid.first_seq)  # from the first slot
        stage = self._beat_stage(pipeline, self.sampler.grid.first_seq)
        held: deque[_Held] = deque()
        self._open_alarms(pipeline.settings, stage, self.sampler.grid.first_seq)
        while not self._stop.is_set():
            self.worker_heartbeat = time.monotonic()
            current = self._pipeline
            if current is not None and current.generation != pipeline.generation:
                if (
                    _windowing(current.settings) != _windowing(pipeline.settings)
                    or scheduler.ring is not self.ring
                ):
                    scheduler = self._scheduler(current.settings, self.ring.next_seq)
                if (
                    _beat_config(current.settings) != _beat_config(pipeline.settings)
                    or stage.ring is not self.ring
                    or (stage.labeller is not None) != current.classifier.beat_aware
                ):
                    new_time_base = stage.ring is not self.ring
                    self._release_held(stage, held, final=True)
                    stage = self._beat_stage(current, self.ring.next_seq)
                    if new_time_base:  # seqs restart: the engine cannot carry its alarms across
                        self._alarms_at_stop("the sampler restarted on a new sample grid")
                        self._open_alarms(current.settings, stage, self.ring.next_seq)
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
        return _BeatStage(tracker, self.ring, settings.analog_frontend, labeller, pipeline.model)

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
                    self._record_beats(labelled.seq.tolist(), labelled.labels.tolist())
                else:
                    self._record_beats([b.seq for b in new], ["Q"] * len(new))
                self._alarm_feed(start, mv, block.valid, new, labelled)
        leads_off = bool(self.leads.off_now()) if self.leads is not None else False
        self.live = beats.live(leads_off=leads_off, unreadable=self._last_unreadable)

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

        def ready(h: _Held) -> bool:
            stop = h.window.stop_seq
            if beats.final_until() < stop:
                return False
            return not h.by_labels or labeller is None or labeller.until >= stop

        if final and labeller is not None:  # this beat stage ends: its last beats, without a next one
            flushed = labeller.flush()
            self._record_beats(flushed.seq.tolist(), flushed.labels.tolist())
        while held and (final or ready(held[0])):
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
            self._submit(result_record(w, c, meta.ident, meta.abnormal_labels, self.clock.wall_ns(), figures))

    def _verdict_from_labels(self, h: _Held, stage: _BeatStage) -> Classification:
        """A readable window's verdict from its labelled beats; the alarm engine hears it now."""
        w = h.window
        assert w.block is not None and stage.labeller is not None
        try:
            c = h.pipeline.classifier.from_labels(
                *stage.labeller.window(w.first_seq, w.stop_seq), w.block.missing
            )
        except Exception as exc:  # as for a window the model fails on: reported, never fatal
            c = self._classify_failed(w, exc)
        if self._alarms is not None:
            self._submit_alarms(self._alarms.window(w.first_seq, w.stop_seq, c.label, c.reason))
        return c

    def _scheduler(self, settings: cfg.Settings, first_seq: int) -> WindowScheduler:
        rate = settings.sampling.rate_hz
        w = settings.windows
        sampler = self.sampler
        return WindowScheduler(
            self.ring,
            round(w.window_seconds * rate),
            max(1, round(w.hop_seconds * rate)),
            lambda seq: sampler.grid.wall_ns(seq),
            first_seq=first_seq,
        )

    def _serve_relearn(self, pipeline: Pipeline, stage: _BeatStage) -> None:
        if not self._relearn_requested.is_set():
            return
        self._relearn_requested.clear()
        if pipeline.classifier.beat_aware:
            pipeline.classifier.relearn()
            if stage.labeller is not None:
                stage.labeller.relearn()
            self._lifecycle("learning the patient's dominant beat again (relearn)", event="relearn")

    def _emit_window(self, window: Window, pipeline: Pipeline, stage: _BeatStage, held: deque[_Held]) -> None:
        c: Classification | None = None
        leads = self.leads
        if window.block is not None and leads is not None:
            grid = self.sampler.grid
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
        self.dispatcher.submit(
            event_record(
                "fault",
                f"window {window.index} not classified: {exc!r}",
                ERR,
                self.clock.wall_ns(),
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
                window, c, meta.ident, meta.abnormal_labels, self.clock.wall_ns(), NOT_JUDGED
            )
            record.fields["missing_samples"] = None
            self._submit(record)
        acquired = self.ring.next_seq - (scheduler.next_stop - scheduler.hop)
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
        record = result_record(window, c, meta.ident, meta.abnormal_labels, self.clock.wall_ns(), NOT_JUDGED)
        record.fields["missing_samples"] = None
        self._submit(record)

    def _submit(self, record: Record) -> None:
        if record.kind == "result":
            self._record_result(record)
        self.dispatcher.submit(record)
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
        self._alarm_frontend = settings.analog_frontend

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
        if self.leads is not None:
            grid = self.sampler.grid
            off = self.leads.off_between(
                grid.deadline_ns(first_seq), grid.deadline_ns(first_seq + mv.size - 1)
            )
        seqs = np.fromiter((b.seq for b in beats), dtype=np.int64, count=len(beats))
        widths = np.array([np.nan if b.width_ms is None else b.width_ms for b in beats], dtype=np.float64)
        try:
            events = engine.feed(
                first_seq,
                mv,
                valid,
                _Beats(
                    seqs, np.array([np.nan if b.rr_ms is None else b.rr_ms for b in beats], dtype=np.float64)
                ),
                off,
                widths_ms=widths,
                labelled=labelled,
            )
        except Exception as exc:  # never let the alarm layer kill the worker; say so loudly
            self._alarms = None
            self.alarm_status = "ALARMS DOWN"
            message = f"alarm layer stopped: {exc!r}; no alarms will sound until a restart"
            self.dispatcher.submit(
                event_record("fault", message, ERR, self.clock.wall_ns(), event="alarms_down")
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
        grid = self.sampler.grid
        for e in events:
            record = alarm_record(e, self.clock.wall_ns(), grid.wall_ns(e.onset_seq))
            record.fields.update(self.recording_location(e.onset_seq))  # journalctl line → its strip
            self._annotate(e.seq, '"', f"alarm {e.alarm} {e.state}: {e.describe()}"[:200])
            self.dispatcher.submit(record)
        if self._alarms is not None:
            self.alarm_status = self._alarms.status()  # the main loop's next STATUS= (≤ 1 s) leads with it

    def _alarms_at_stop(self, why: str) -> None:
        """A stop ends monitoring, not the alarms: say which were still active (no false ``end``)."""
        engine = self._alarms
        if engine is None or not engine.active:
            return
        ids = [a.alarm_id for a in engine.active.values()]
        message = f"{why} with alarms active: {engine.status()}; their end was not observed"
        self.dispatcher.submit(
            event_record(
                "lifecycle", message, WARNING, self.clock.wall_ns(), event="alarms_active", alarm_ids=ids
            )
        )

    def _reload_alarms(self, old: cfg.Settings, new: cfg.Settings) -> None:
        if self._alarms is not None and new.alarms != old.alarms:
            self._submit_alarms(self._alarms.apply_settings(new.alarms))
            if new.alarms.switched_off() != old.alarms.switched_off():
                self._announce_alarms_off(new)

    def _announce_alarms_off(self, settings: cfg.Settings) -> None:
        off = settings.alarms.switched_off()
        if off:
            what = "the alarm layer is off" if not settings.alarms.enabled else ", ".join(off)
            self._lifecycle(f"alarms switched off: {what}", event="alarms_off", alarms=off)

    # -- events, status, reload --------------------------------------------------------------
    def _drain_events(self) -> None:
        self._report_leads()
        while True:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            wall = self.clock.wall_ns()
            if ev.kind == "realtime_refused":
                self.dispatcher.submit(event_record("fault", ev.detail, WARNING, wall, event=ev.kind))
            elif ev.kind == "sensor_fault":
                d = self.settings.device
                msg = (
                    f"sensor fault: {ev.detail} from PCF8591 0x{d.address:02x} on i2c-{d.i2c_bus}; "
                    "retrying with back-off"
                )
                self.dispatcher.submit(event_record("fault", msg, ERR, wall, event=ev.kind, seq=ev.seq))
                self._annotate(ev.seq, '"', f"sensor fault: {ev.detail}")
            else:
                self._annotate(ev.seq, '"', f"sensor recovered after {ev.outage_s:.1f} s")
                self.dispatcher.submit(
                    event_record(
                        "fault",
                        f"sensor recovered: {ev.detail}",
                        NOTICE,
                        wall,
                        event=ev.kind,
                        seq=ev.seq,
                        outage_s=round(ev.outage_s, 3),
                    )
                )
            self.notifier.status(self._status())

    def _report_leads(self) -> None:
        """Electrode off / back on, as the LO pins tell it (WARNING / NOTICE in journald)."""
        leads = self.leads
        if leads is None:
            return
        transitions = leads.take_transitions()
        if leads.failed and not self.leads_problem:
            self.leads_problem = leads.failed
            self._report_leads_problem()
        for t in transitions:
            wall = t.t_ns + self.sampler.grid.wall_offset_ns
            where = f"AD8232 {t.line} (the {ELECTRODE[t.line]} electrode)"
            if t.kind == "leads_off":
                message, priority, extra = f"electrode off: {where} went high", WARNING, {}
            else:
                message = f"electrode back on: {where} low again after {t.off_s:.1f} s"
                priority, extra = NOTICE, {"off_s": round(t.off_s, 3)}
            record = event_record("fault", message, priority, wall, event=t.kind, line=t.line, **extra)
            self.dispatcher.submit(record)
            self._annotate(self.sampler.grid.first_slot_at_or_after(t.t_ns), '"', message)
        if transitions:
            self.notifier.status(self._status())

    def _status(self) -> str:
        st = self.sampler.stats() if hasattr(self, "sampler") else None
        if st is None:
            return "starting"
        state = "SENSOR FAULT" if st.in_fault else "running"
        off = self.leads.off_now() if self.leads is not None else []
        if off:
            state += f", LEADS OFF ({' '.join(off)})"
        if self.leads_problem:
            state += ", leads-off input unavailable"
        alarm = f"{self.alarm_status} · " if self.alarm_status else ""  # an active alarm leads: see it first
        return (
            f"{alarm}{self.live.text()} · {state}; last {self.last_label}; {self.results} windows; "
            f"{st.taken} samples, {st.missing} missing; lateness p99 {st.lateness_p99_ms:.2f} ms"
            + self._recording_status()
        )

    def _notify_losses(self) -> str:
        n = self.notifier
        if not (n.dropped or n.deferred):
            return ""
        return (
            f"; service manager not reading notifications: {n.dropped} STATUS= dropped, "
            f"{n.deferred} READY/WATCHDOG/RELOADING/STOPPING sent late"
        )

    def _lifecycle(self, message: str, **fields) -> None:
        self.dispatcher.submit(event_record("lifecycle", message, INFO, self.clock.wall_ns(), **fields))

    def reload(self) -> None:
        """SIGHUP: apply a valid new config without losing samples; keep the old one otherwise."""
        self.notifier.reloading()
        old = self.settings
        old_source = (self.ring, self.sampler.grid)
        try:
            new = cfg.load(old.source)
            changed = [n for n in cfg.SECTIONS if getattr(new, n) != getattr(old, n)]
            pipeline = self._pipeline_for(new) if changed else None
            restart = any(n in changed for n in ACQUISITION_SECTIONS)
            source = self._source(new) if restart else None
        except (cfg.ConfigError, ModelError, StartupError) as exc:
            message = f"reload rejected, old configuration kept: {exc}"
            wall = self.clock.wall_ns()
            self.dispatcher.submit(event_record("fault", message, ERR, wall, event="reload_rejected"))
            self.notifier.ready(self._status())
            return
        restarted = source is not None
        if source is not None:
            grid = self.sampler.grid
            self.sampler.stop()
            self._sampler_thread.join(2.0)
            same_rate = new.sampling.rate_hz == old.sampling.rate_hz
            if not same_rate or new.sampling.ring_seconds != old.sampling.ring_seconds:
                self.ring = self._new_ring(new)
                grid = None
            self._start_sampler(new, source, self.ring, grid)
        if "output" in changed:
            old_dispatcher = self.dispatcher
            self.dispatcher = SinkDispatcher(self._sinks(new), new.output.queue_size)
            self.dispatcher.start()
            old_dispatcher.close(1.0)
        if restarted or "leads" in changed:  # the emulated pins belong to the emulated board
            if self.leads is not None:
                self._report_leads()
                self.leads.close()  # first: a GPIO line can be requested by one holder at a time
            self.leads, self.leads_problem = self._open_leads(new)
            self._report_leads_problem()
        self._reload_recorder(new, changed, old_source)
        self.settings = new
        if pipeline is not None:
            self._pipeline = pipeline  # a new classifier: it learns the patient from scratch
        else:
            self.request_relearn()  # a reload starts the learning again either way
        what = ", ".join(changed) or "nothing changed"
        self._lifecycle(
            f"configuration reloaded ({what})" + ("; sampler restarted" if restarted else ""),
            event="reloaded",
            changed=changed,
            sampler_restarted=restarted,
        )
        self.notifier.ready(self._status())

    # -- full disclosure: the recorder -------------------------------------------------------------
    def _start_recorder(self, settings: cfg.Settings, from_seq: int | None = None) -> None:
        """Recording is never a reason not to monitor: a recorder that cannot start is reported."""
        self.recorder, self.recording_problem = None, None
        directory = settings.recording_directory
        if directory is None:
            return
        rec_settings = dataclasses.replace(settings.recording, directory=str(directory))
        recorder = Recorder(
            rec_settings,
            settings.analog_frontend,
            self._recorder_report,
            wall_now=self.clock.wall_ns,
            version=__version__,
        )
        try:
            recorder.start(self.ring, self.sampler.grid, from_seq)
        except OSError as exc:
            self.recording_problem = f"{directory}: {exc.strerror or exc}"
            message = f"recording unavailable: {self.recording_problem}; monitoring goes on without it"
            self.dispatcher.submit(
                event_record("fault", message, ERR, self.clock.wall_ns(), event="recording_failed")
            )
            return
        self.recorder = recorder

    def _recorder_report(self, kind: str, message: str, priority: int, fields: dict) -> None:
        """From the recorder's thread: only hand the record over (the main loop publishes STATUS=)."""
        self.dispatcher.submit(event_record(kind, message, priority, self.clock.wall_ns(), **fields))

    def _stop_recorder(self) -> dict:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return {}
        recorder.stop(1.0)
        self._recorded_until = recorder.next_seq
        return {
            "recorded_samples": recorder.samples_written,
            "recording_lost_samples": recorder.samples_lost,
            "annotations_written": recorder.annotations_written,
        }

    def _reload_recorder(self, new: cfg.Settings, changed: list[str], old_source: tuple) -> None:
        """New recording or front-end settings: a new recorder (a new segment, from where the old one
        stopped). A new ring or grid: the recorder writes what the old one holds, then a new segment."""
        same_source = old_source == (self.ring, self.sampler.grid)
        if "recording" in changed or "frontend" in changed:
            self._recorded_until = None
            self._stop_recorder()
            self._start_recorder(new, self._recorded_until if same_source else None)
        elif not same_source and self.recorder is not None:
            self.recorder.attach(self.ring, self.sampler.grid)

    def _record_beats(self, seqs: list[int], labels: list[str]) -> None:
        """Beats beside the signal: the labeller's N/S/V/Q (``Q``: a QRS not classified, or no
        beat-aware model); the recorder sorts them in among the other annotations."""
        if self.recorder is not None:
            for seq, label in zip(seqs, labels, strict=True):
                self.recorder.annotate(int(seq), label)

    def _annotate(self, seq: int, symbol: str, aux: str) -> None:
        if self.recorder is not None:
            self.recorder.annotate(seq, symbol, aux)

    def _record_result(self, record: Record) -> None:
        """A label change becomes a rhythm annotation at the window's first sample, and an abnormal
        result carries where its signal is on disk (``ecgd strip RECORD --at-sample N``)."""
        f = record.fields
        if self.recorder is None:
            return
        if f["label"] != self.last_label:
            label = f["label"]
            if f.get("probabilities") is not None:
                self._annotate(f["first_seq"], "+", "(" + RHYTHM_AUX.get(label, label))
            else:
                self._annotate(f["first_seq"], '"', f"{label}: {f.get('reason') or ''}"[:200])
        if f.get("abnormal"):
            f.update(self.recording_location(f["first_seq"]))

    def recording_location(self, seq: int) -> dict:
        """``recording`` (segment path without extension) and ``recording_sample`` of slot ``seq``, for
        any record that a person will want to see the signal of (abnormal results, alarms): then
        ``ecgd strip RECORDING --at-sample N`` draws it. Empty when nothing records that slot."""
        where = self.recorder.locate(seq) if self.recorder is not None else None
        return {} if where is None else {"recording": where[0], "recording_sample": where[1]}

    def _recording_status(self) -> str:
        """Called by the main loop every second: also says once when the recorder's disk hangs."""
        if self.recorder is not None:
            stalled = self.recorder.stalled_s()
            if bool(stalled) != self._recording_stall_said:
                self._recording_stall_said = bool(stalled)
                message = (
                    f"recording stalled: no write finished for {stalled:.0f} s (disk not answering); "
                    "monitoring goes on, samples wait in the ring"
                    if stalled
                    else "recording: writes finish again"
                )
                event = "recording_stalled" if stalled else "recording_resumed"
                self.dispatcher.submit(
                    event_record(
                        "fault", message, ERR if stalled else NOTICE, self.clock.wall_ns(), event=event
                    )
                )
            return "; " + self.recorder.status()
        return f"; recording unavailable ({self.recording_problem})" if self.recording_problem else ""


RHYTHM_AUX = {"AF": "AFIB"}  # MIT-BIH rhythm names where ours differ (aux "(AFIB", "(N")


def _windowing(settings: cfg.Settings) -> tuple:
    return (settings.sampling.rate_hz, dataclasses.astuple(settings.windows))


def _beat_config(settings: cfg.Settings) -> tuple:
    return (settings.sampling.rate_hz, settings.sampling.ring_seconds, settings.beats, settings.frontend)


def run_daemon(config_path: Path, duration_s: float | None = None) -> int:
    """``ecgd run``: load, start, serve. Returns a sysexits code."""
    try:
        settings = cfg.load(config_path)
        daemon = Daemon(settings)
        daemon.start()
    except cfg.ConfigError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    except (ModelError, StartupError) as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    return daemon.run(duration_s)
