"""Wiring: source → sampler → ring → worker (beats, labels, alarms, windows) → sinks and recorder, plus
signals, sd_notify, the watchdog and live reload. The only module that knows all others.

Threads: the sampler (owns the source and the grid), the inference worker (``ecgd.worker``: owns the
beat stage, the labeller, the alarm engine, the scheduler and the classifier's state), the recorder,
one per sink; the main thread handles signals, faults, status and the watchdog. Data moves one way,
through the ring and bounded queues.
"""

from __future__ import annotations

import dataclasses
import queue
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from ecgd import __version__
from ecgd import config as cfg
from ecgd.acquisition.clock import Clock, RealClock
from ecgd.acquisition.leadoff import GpiodLeadOffLines, LeadOffError, LeadOffLines, LeadOffMonitor
from ecgd.acquisition.ring import SampleRing
from ecgd.acquisition.sampler import SampleGrid, Sampler, SamplerEvent
from ecgd.acquisition.sources.emulated import EmulatedI2c, EmulatedLeadOffLines, emulated_device
from ecgd.acquisition.sources.pcf8591 import Pcf8591
from ecgd.analysis.beat_model import BeatRhythmMetadata
from ecgd.analysis.classifier import WindowClassifier
from ecgd.analysis.model import Model, ModelError, load_model
from ecgd.analysis.quality import adc_rails_mv
from ecgd.io.records import RecordError, read_recording
from ecgd.notify import Notifier
from ecgd.outputs.recording import Recorder
from ecgd.outputs.results import (
    ERR,
    INFO,
    NOTICE,
    WARNING,
    Record,
    event_record,
)
from ecgd.outputs.sinks import Sink, SinkDispatcher
from ecgd.outputs.sinks.console import ConsoleSink
from ecgd.outputs.sinks.journal import JournalSink
from ecgd.outputs.sinks.logfile import RotatingJsonLog
from ecgd.worker import Pipeline, Worker

EX_OK, EX_UNAVAILABLE, EX_CONFIG = 0, 69, 78
LIVENESS_LIMIT_S = 5.0  # a thread silent this long is hung: stop feeding the watchdog
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
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._pipeline: Pipeline | None = None
        self._generation = 0
        self._journal_said = False
        self.worker = Worker(self, self._stop, uuid.uuid4().hex[:8])
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
        self._worker_thread = threading.Thread(target=self.worker.run, name="ecgd-worker", daemon=True)
        self._worker_thread.start()
        m = pipeline.model
        self.lifecycle(
            f"ecgd started: {settings.device.kind} source, {settings.sampling.rate_hz:g} Hz, "
            f"model {m.metadata.ident} ({m.backend}, {m.input_dtype})",
            event="started",
            backend=m.backend,
            config=settings.source,
            sampler_policy=self.sampler.policy,
        )
        self.worker.announce_alarms_off(settings)
        self._say_relearn_differences(settings, m)
        self.notifier.ready(self._status())

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def request_relearn(self) -> None:
        """SIGUSR1 (``ecgd relearn``): learn the patient's dominant beat again; the worker does it
        between two windows, because the worker owns the classifier's state."""
        self.worker.relearn_requested.set()

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
        worker_age = time.monotonic() - self.worker.heartbeat
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
        self.lifecycle(
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
                self.annotate(ev.seq, '"', f"sensor fault: {ev.detail}")
            else:
                self.annotate(ev.seq, '"', f"sensor recovered after {ev.outage_s:.1f} s")
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
            self.annotate(self.sampler.grid.first_slot_at_or_after(t.t_ns), '"', message)
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
        w = self.worker
        alarm = f"{w.alarm_status} · " if w.alarm_status else ""  # an active alarm leads: see it first
        return (
            f"{alarm}{w.live.text()} · {state}; last {w.last_label}; {w.results} windows; "
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

    @property
    def pipeline(self) -> Pipeline | None:
        """The current configuration generation (replaced by a reload; the worker picks it up)."""
        return self._pipeline

    @property
    def results(self) -> int:
        return self.worker.results

    def lifecycle(self, message: str, **fields) -> None:
        self.dispatcher.submit(event_record("lifecycle", message, INFO, self.clock.wall_ns(), **fields))

    def _say_relearn_differences(self, settings: cfg.Settings, model: Model) -> None:
        """Once at start (and on a reload of the model or the relearn settings): a warning when the
        configured relearn settings are not those the beat model was trained with."""
        meta = model.metadata
        found = meta.relearn_differences(settings.relearn) if isinstance(meta, BeatRhythmMetadata) else []
        if found:
            message = (
                f"relearn settings differ from those model {meta.ident} was trained with: "
                + ", ".join(found)
                + "; its beat labels were not validated with them"
            )
            wall, event = self.clock.wall_ns(), "relearn_untrained"
            self.dispatcher.submit(event_record("lifecycle", message, WARNING, wall, event=event))

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
        if pipeline is not None and ("relearn" in changed or "model" in changed):
            self._say_relearn_differences(new, pipeline.model)
        what = ", ".join(changed) or "nothing changed"
        self.lifecycle(
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

    def record_beats(self, seqs: list[int], labels: list[str]) -> None:
        """Beats beside the signal: the labeller's N/S/V/Q (``Q``: a QRS not classified, or no
        beat-aware model); the recorder sorts them in among the other annotations."""
        if self.recorder is not None:
            for seq, label in zip(seqs, labels, strict=True):
                self.recorder.annotate(int(seq), label)

    def annotate(self, seq: int, symbol: str, aux: str) -> None:
        if self.recorder is not None:
            self.recorder.annotate(seq, symbol, aux)

    def record_result(self, record: Record, last_label: str) -> None:
        """A label change (from ``last_label``) becomes a rhythm annotation at the window's first
        sample, and an abnormal result carries where its signal is on disk (``ecgd strip RECORD
        --at-sample N``)."""
        f = record.fields
        if self.recorder is None:
            return
        if f["label"] != last_label:
            label = f["label"]
            if f.get("probabilities") is not None:
                self.annotate(f["first_seq"], "+", "(" + RHYTHM_AUX.get(label, label))
            else:
                self.annotate(f["first_seq"], '"', f"{label}: {f.get('reason') or ''}"[:200])
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
