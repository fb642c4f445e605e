"""Helpers for tests that run the daemon in-process: config files, the result log, the main loop."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ecgd.acquisition.clock import SimulatedClock
from ecgd.daemon import Daemon


class PacedClock(SimulatedClock):
    """Simulated time that runs at most ``speed`` times real time: the sampler's sleeps take a
    little real time, so the worker (20 ms a window for the beat-aware model) keeps up with the
    windows as it does on the real clock, while the test still runs 90 s of signal in seconds."""

    def __init__(self, speed: float = 20.0) -> None:
        super().__init__()
        self.speed = speed

    def sleep_until(self, deadline_ns: int) -> None:
        ahead = deadline_ns - self.monotonic_ns()
        if ahead > 0:
            time.sleep(ahead / 1e9 / self.speed)
        super().sleep_until(deadline_ns)


def write_config(path: Path, log: Path, **sections: dict) -> None:
    body = {
        "device": {"kind": "emulated", "fault_after_seconds": 1.0, "max_backoff_seconds": 0.2},
        "output": {"journal": False, "log_file": str(log)},
        "recording": {"directory": None},  # tests that record name their own directory
    }
    for name, values in sections.items():
        body.setdefault(name, {}).update(values)
    path.write_text(json.dumps(body))  # JSON is YAML


def log_records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for_record(log: Path, wanted, limit_s: float) -> bool:
    """Poll the JSON log until a record satisfies ``wanted`` (a line still being written is skipped):
    a test that needs a later window's result waits for it, not for a guess of how long it takes."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines:
            try:
                if wanted(json.loads(line)):
                    return True
            except json.JSONDecodeError:
                continue
        time.sleep(0.2)
    return False


def run_in_main_thread(daemon: Daemon, actions, limit_s: float = 60.0) -> float:
    """Run the daemon's main loop here (signals need the main thread) while ``actions`` runs beside."""
    worker = threading.Thread(target=actions, daemon=True)
    worker.start()
    t = time.monotonic()
    assert daemon.run(duration_s=limit_s) == 0
    worker.join(5)
    return time.monotonic() - t


def wrap_window_judging(daemon: Daemon, wrapper) -> None:
    """Wrap what the worker calls for each new window: ``classify``, or for a beat-aware model
    ``screen`` (the quality gate; its verdict comes later, from the window's labelled beats)."""
    classifier = daemon._pipeline.classifier
    for name in ("classify", "screen"):
        setattr(classifier, name, wrapper(getattr(classifier, name)))


def slow_down_inference(daemon: Daemon, seconds: float) -> None:
    """Every window's classification takes ``seconds`` longer (a model too slow for the hop)."""

    def slowed(real):
        def slow(*a, **kw):
            time.sleep(seconds)
            return real(*a, **kw)

        return slow

    wrap_window_judging(daemon, slowed)
