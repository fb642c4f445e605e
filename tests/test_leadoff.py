"""Leads off on the AD8232's LO+/LO− pins: the emulated board, the monitor, libgpiod, the daemon."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import gpiod  # the [test] extra installs it: the adapter is tested against the real library
import numpy as np
import pytest
from daemon_support import log_records, run_in_main_thread, wait_for_record, write_config

from ecgd import config as cfg
from ecgd.acquisition.leadoff import GpiodLeadOffLines, LeadOffError, LeadOffMonitor, edge_from_gpiod
from ecgd.acquisition.sources.emulated import EmulatedLeadOffLines
from ecgd.acquisition.sources.pcf8591 import Pcf8591
from ecgd.analysis.quality import QualitySettings, adc_rails_mv, assess_window
from ecgd.daemon import Daemon
from ecgd.notify import Notifier

S = 1_000_000_000


def sample(emulated, sim_clock, seconds: float, rate: float = 360.0) -> np.ndarray:
    """Codes from the emulated chip on a plain grid (conversions of the previous read discarded)."""
    adc = Pcf8591(1, 0x48, 2, bus_factory=emulated)
    adc.open()
    adc.read()  # the stale power-on byte
    out = np.empty(int(seconds * rate), dtype=np.int16)
    t0 = sim_clock.monotonic_ns()
    for i in range(out.size):
        sim_clock.sleep_until(t0 + int((i + 1) * S / rate))
        out[i] = adc.read()
    adc.close()
    return out


def test_a_detached_electrode_rails_the_output_and_raises_its_pin(emulated, sim_clock, frontend):
    electrodes = emulated.electrodes
    lines = EmulatedLeadOffLines(electrodes, ("LO+", "LO−"))
    electrodes.detach("LO+", 3.0, after_s=4.0)
    electrodes.detach("LO−", 2.0, after_s=8.0)
    t0 = sim_clock.monotonic_ns()
    codes = sample(emulated, sim_clock, 11.0)
    t = np.arange(codes.size) / 360.0
    plus_off = (t > 4.01) & (t < 6.99)
    minus_off = (t > 8.01) & (t < 9.99)
    assert (codes[plus_off] >= 250).all() and (codes[minus_off] <= 5).all()
    assert 20 < np.median(codes[t < 3.9]) < 235  # ECG around mid-scale before
    edges = lines.read_edges()
    assert [(e.line, e.off, round((e.t_ns - t0) / S, 3)) for e in edges] == [
        ("LO+", True, 4.0),
        ("LO+", False, 7.0),
        ("LO−", True, 8.0),
        ("LO−", False, 10.0),
    ]
    assert [e.seqno for e in edges] == [1, 2, 3, 4] and lines.read_edges() == []
    # The signal-quality gate sees the same window as unreadable from the samples alone.
    mv = frontend.counts_to_mv(codes[: 10 * 360])
    reason = assess_window(mv, 360.0, adc_rails_mv(frontend), QualitySettings())
    assert reason is not None and "rail" in reason


def test_monitor_knows_which_window_an_electrode_was_off_in(emulated, sim_clock):
    electrodes = emulated.electrodes
    monitor = LeadOffMonitor(EmulatedLeadOffLines(electrodes, ("LO+", "LO−")), sim_clock.monotonic_ns())
    t0 = sim_clock.monotonic_ns()
    electrodes.detach("LO−", 1.5, after_s=5.0)
    sim_clock.advance(4 * S)
    assert monitor.off_between(t0, t0 + 4 * S) is None and monitor.take_transitions() == []
    sim_clock.advance(2 * S)  # now 6 s: off since 5 s
    assert monitor.off_now() == ["LO−"]
    assert monitor.off_between(t0, t0 + 6 * S) == "leads off: AD8232 LO− high for 1.00 s of this window"
    sim_clock.advance(4 * S)
    assert monitor.off_between(t0 + 4 * S, t0 + 10 * S) == (
        "leads off: AD8232 LO− high for 1.50 s of this window"
    )
    assert monitor.off_between(t0 + 6 * S + 600_000_000, t0 + 10 * S) is None
    kinds = [(tr.kind, tr.line, round(tr.off_s, 3)) for tr in monitor.take_transitions()]
    assert kinds == [("leads_off", "LO−", 0.0), ("leads_on", "LO−", 1.5)]
    assert monitor.off_now() == []


def test_an_electrode_off_at_start_is_reported_and_blocks_windows(emulated, sim_clock):
    emulated.electrodes.detach("LO+", 60.0)
    sim_clock.advance(1)
    now = sim_clock.monotonic_ns()
    monitor = LeadOffMonitor(EmulatedLeadOffLines(emulated.electrodes, ("LO+",)), now)
    assert [tr.kind for tr in monitor.take_transitions()] == ["leads_off"]
    sim_clock.advance(10 * S)
    assert "LO+ high for 10.00 s" in monitor.off_between(now, now + 10 * S)


def test_lost_edge_events_make_the_unknown_stretch_unreadable(emulated, sim_clock):
    """The kernel's edge buffer drops the oldest edges when it overflows: the gap in sequence
    numbers shows it, and the time in between cannot be vouched for."""
    electrodes = emulated.electrodes
    lines = EmulatedLeadOffLines(electrodes, ("LO+", "LO−"), buffer_size=4)
    t0 = sim_clock.monotonic_ns()
    monitor = LeadOffMonitor(lines, t0)
    for k in range(5):  # a chattering electrode: 10 edges between 1 s and 1.9 s
        electrodes.detach("LO+", 0.05, after_s=1.0 + 0.2 * k)
    electrodes.detach("LO−", 0.5, after_s=1.5)
    sim_clock.advance(3 * S)
    reason = monitor.off_between(t0 + 2 * S, t0 + 3 * S)
    assert reason is None  # the newest edges (kept) say both pins are low again
    reason = monitor.off_between(t0, t0 + 3 * S)
    assert "pin state unknown" in reason and "edge events lost" in reason
    assert monitor.off_now() == []


def test_pins_that_fail_mid_run_are_reported_never_raised(emulated, sim_clock):
    lines = EmulatedLeadOffLines(emulated.electrodes, ("LO+",))
    monitor = LeadOffMonitor(lines, sim_clock.monotonic_ns())
    lines.close()  # the request's fd is gone: the next read fails with EBADF
    assert monitor.off_between(0, sim_clock.monotonic_ns()) is None
    assert monitor.failed == "reading the LO pins failed: Bad file descriptor"
    assert monitor.take_transitions() == [] and monitor.off_now() == []


def test_gpiod_lines_refuse_a_path_that_is_not_a_gpio_chip(tmp_path: Path):
    wanted = r"/dev/gpiochip99 is not a GPIO chip device \(wanted LO\+ on line 17, LO− on line 27\)"
    with pytest.raises(LeadOffError, match=wanted):
        GpiodLeadOffLines("/dev/gpiochip99", {"LO+": 17, "LO−": 27})
    plain = tmp_path / "gpiochip0"
    plain.write_text("")
    with pytest.raises(LeadOffError, match="is not a GPIO chip device"):
        GpiodLeadOffLines(str(plain), {"LO−": 27})


def test_gpiod_edge_events_map_to_pins_rising_is_off():
    rising = gpiod.EdgeEvent.Type.RISING_EDGE
    names = {17: "LO+", 27: "LO−"}
    up = gpiod.EdgeEvent(rising.value, 5_000, 27, 3, 1)
    down = gpiod.EdgeEvent(gpiod.EdgeEvent.Type.FALLING_EDGE.value, 9_000, 17, 4, 2)
    a, b = (edge_from_gpiod(e, names, rising) for e in (up, down))
    assert (a.line, a.off, a.t_ns, a.seqno) == ("LO−", True, 5_000, 3)
    assert (b.line, b.off, b.t_ns, b.seqno) == ("LO+", False, 9_000, 4)


def test_config_names_the_leads_keys():
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse("leads: {lo_plus_line: 17, lo_minus_line: 17}")
    assert "leads.lo_minus_line: 17 is also leads.lo_plus_line" in str(e.value)
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse("leads: {lo_plus_line: -1, lo_minsu_line: 2}")
    text = str(e.value)
    assert "leads.lo_plus_line: -1 is out of range" in text
    assert "did you mean leads.lo_minus_line?" in text
    assert cfg.parse("leads: {lo_minus_line: 27}").leads.offsets == {"LO−": 27}
    assert cfg.parse("").leads.offsets == {}


def test_unreadable_gpio_is_reported_and_the_monitor_runs_on(tmp_path):
    """A leads-off input that cannot be opened must not stop the monitor (the unit would loop)."""
    settings = cfg.parse(
        json.dumps({"leads": {"gpio_chip": str(tmp_path / "nochip"), "lo_plus_line": 17}}), "<test>"
    )
    leads, problem = Daemon(settings)._open_leads(settings)
    assert leads is None
    assert problem == f"{tmp_path / 'nochip'} is not a GPIO chip device (wanted LO+ on line 17)"


def test_daemon_marks_windows_with_an_electrode_off_unreadable_and_reports_the_episode(daemon_env):
    tmp, listener = daemon_env
    conf, log = tmp / "c.yaml", tmp / "r.jsonl"
    write_config(conf, log, windows={"hop_seconds": 1.0}, leads={"lo_plus_line": 17, "lo_minus_line": 27})
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    daemon.i2c.electrodes.detach("LO−", 2.0, after_s=3.0)

    def actions():
        time.sleep(16)  # window 6 ends at 16 s; its record waits for its beats to be final and labelled
        seen.append(wait_for_record(log, judged_after_the_episode, 30))
        os.kill(os.getpid(), signal.SIGTERM)

    def judged_after_the_episode(r: dict) -> bool:
        """A window clear of the off stretch that the model judged (any record of window ≥ 6 would also
        take a refused one, and end the wait before the windows the test is about)."""
        return r.get("kind") == "result" and r.get("window_index", -1) >= 6 and bool(r.get("probabilities"))

    seen: list[bool] = []

    run_in_main_thread(daemon, actions)
    records = log_records(log)
    results = [r for r in records if r["kind"] == "result" and r["label"] != "unclassified"]
    # Windows k cover [k, k + 10) s: those of k = 0..4 include the 3-5 s off stretch.
    by_index = {r["window_index"]: r for r in results}
    for k in range(5):
        assert by_index[k]["label"] == "unreadable", by_index[k]
        assert by_index[k]["reason"].startswith("leads off: AD8232 LO− high for ")
        assert by_index[k]["probabilities"] is None
    assert by_index[0]["reason"] == "leads off: AD8232 LO− high for 2.00 s of this window"
    for k in range(5):  # an unreadable window has no beats and no heart rate
        assert by_index[k]["heart_rate_bpm"] is None and by_index[k]["beat_count"] is None
        assert by_index[k]["heart_rate_reason"] == "window unreadable"
    after = [r for k, r in by_index.items() if k >= 6]
    said = [(r["window_index"], r["label"], r["reason"]) for r in records if r["kind"] == "result"]
    assert seen == [True] and after, (said, [r for r in records if r["kind"] != "result"])
    assert all(not (r["reason"] or "").startswith("leads off") for r in after)
    rated = [r for r in after if r["probabilities"]]
    assert rated and all(30 < r["heart_rate_bpm"] < 200 for r in rated if r["heart_rate_bpm"] is not None)
    events = [(r["event"], r["message"]) for r in records if r.get("event", "").startswith("leads_")]
    assert events[0] == ("leads_off", "electrode off: AD8232 LO− (the −IN electrode) went high")
    assert events[1][0] == "leads_on" and "low again after 2.0 s" in events[1][1]
    assert any("LEADS OFF (LO−)" in s for s in listener.states("STATUS="))
    assert any(
        "HR --- (leads off) · running, LEADS OFF (LO−)" in s  # leads off has its place (not an alarm's)
        for s in listener.states("STATUS=")
    )
