"""Soak and load: does the daemon account for every sample and window, hours on end, through faults?

Accelerated soak (default, ``--hours 24`` of signal): the real ``Daemon`` in this process on the
emulated PCF8591 with a ``SimulatedClock``, so the sampler runs many times faster than real time
(the inference worker keeps real timeouts; when it falls behind, windows are coalesced and reported
as skipped, each still one result line). ``--speed N`` paces the simulated clock at most N times real
time, so that the worker keeps up and every window goes through the beat, classifier and alarm stages
(unpaced, with the beat stage and the beat labeller since 2026-12, most windows are skipped). Alarm
records are accounted too: one onset and one end per episode, or listed active at the stop.
Outputs: journald when one is live (reused, or started as a
child when root and none runs), and a log file with small rotation. A driver thread injects seeded
random bus faults (EREMOTEIO / EIO / ETIMEDOUT bursts of 0.01–5 s, the device gone for 1–10 s) every
few simulated minutes, on top of a random per-read error rate, samples RSS and open fds, follows the
log across rotations, and stops the daemon when the simulated time is up. The daemon's own ``run()``
loop drives everything from the main thread.

Real-time soak (``--realtime MINUTES``): ``ecgd run`` as a process on the demo configuration with the
real clock, the same accounting, plus the sampling figures of its 'stopped' record.

Counting, stated once: result lines in the log are counted *as they are written* by following the
file across renames (the follower keeps the old file open until it has read it to the end, so
rotation deleting old files loses nothing); journald entries are counted afterwards: every entry
after a cursor taken at the start, read with ``journalctl -o json``, whose _PID and MESSAGE_ID (the
result's) match; "windows expected" is computed from the final sequence number, the first window's
first_seq, the window and the hop. The accelerated soak's RSS and fds are those of this process, so
the driver keeps its own memory flat (no per-window lists).

    .venv/bin/python bench/soak.py [--hours 24] [--seed 1] [--speed 40]
    .venv/bin/python bench/soak.py --realtime 30
"""

from __future__ import annotations

import argparse
import errno as errnos
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import (  # bench/ is not a package: imported from the script directory
    cpu_model,
    demo_config,
    fd_count,
    fmt,
    journal_count,
    other_jobs,
    proc_status,
    quiet_environment,
    start_ecgd,
    table,
    uptime,
)

from ecgd.acquisition.clock import SimulatedClock
from ecgd.harness import Journald, journal_cursor

RESULT_ID = "e59f77e50dac475e9f4c642396c50f3a"
INCOMPLETE = re.compile(r"\((\d+) of (\d+) new samples\)")
INJECT_LEAD_S = 2.0  # simulated seconds between deciding on a fault and its start
FAULT_KINDS = (  # (name, weight, errno, gone)
    ("EREMOTEIO burst", 0.35, errnos.EREMOTEIO, False),
    ("EIO burst", 0.20, errnos.EIO, False),
    ("ETIMEDOUT burst", 0.15, errnos.ETIMEDOUT, False),
    ("device gone", 0.30, errnos.ENODEV, True),
)


# -- following the log -------------------------------------------------------------------------------
class LogFollower:
    """Reads every line written to a rotating log, as it is written.

    The writer closes the file before renaming it, so once the path names another inode the file we
    hold is final: read it to the end, then follow the new one. Holding it open means a rotation that
    deletes it cannot take unread lines with it.
    """

    def __init__(self, path: Path, handle) -> None:
        self.path = path
        self.handle = handle
        self.fd: int | None = None
        self.ino: int | None = None
        self.buf = b""
        self.files = 0
        self.torn = 0  # a file that ended without a newline (a split line)
        self.bad = 0  # lines that are not JSON

    def poll(self) -> None:
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return
            self.ino = os.fstat(self.fd).st_ino
            self.files += 1
        self._read()
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            ino = None
        if ino != self.ino:
            self._read()
            os.close(self.fd)
            self.fd = None
            if self.buf:
                self.torn += 1
                self.buf = b""
            if ino is not None:
                self.poll()

    def _read(self) -> None:
        assert self.fd is not None
        while chunk := os.read(self.fd, 1 << 16):
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                self.bad += 1
                continue
            self.handle(record)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass
class Accounting:
    """What the log says, checked record by record (nothing kept per window: memory stays flat)."""

    hop: int
    window: int
    results: int = 0
    kinds: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    first0: int | None = None
    next_index: int = 0
    index_errors: int = 0
    seq_errors: int = 0
    faults: list[dict] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)
    stopped: dict | None = None
    last_result: dict | None = None
    # a uniform sample of inference times in a pre-filled array: the harness must not grow either
    inference_ms: np.ndarray = field(default_factory=lambda: np.full(4096, np.nan))
    inference_n: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    # electrode-off checks: detachments (the driver appends) and the window's span on the grid
    detachments: list = field(default_factory=list)
    span_of: object = None  # (first_seq, last_seq) -> (t0_ns, t1_ns), set once the grid exists
    leads_windows: int = 0  # windows that overlap a detachment and say "leads off" (as they must)
    leads_missed: int = 0  # windows that overlap one and do not
    leads_false: int = 0  # windows that say "leads off" without overlapping one
    # alarm episodes: one onset and one end each (or listed active at the stop), never one more
    alarm_onsets: Counter = field(default_factory=Counter)
    alarm_ends: int = 0
    alarms_open: set = field(default_factory=set)  # alarm_ids with an onset and no end yet
    alarm_errors: int = 0  # an end without its onset, or a second onset of an episode
    alarms_active_at_stop: set | None = None  # the ids the lifecycle's alarms_active record lists

    def __call__(self, r: dict) -> None:
        self.kinds[r.get("kind")] += 1
        if r.get("kind") == "result":
            self.results += 1
            self.labels[r["label"]] += 1
            i = r["window_index"]
            if i != self.next_index:
                self.index_errors += 1
            self.next_index = i + 1
            if self.first0 is None and i == 0:
                self.first0 = r["first_seq"]
            if self.first0 is not None and (
                r["first_seq"] != self.first0 + i * self.hop
                or r["last_seq"] - r["first_seq"] != self.window - 1
            ):
                self.seq_errors += 1
            self._check_leads(r)
            if r.get("inference_ms") is not None:
                n, size = self.inference_n, self.inference_ms.size
                j = n if n < size else self.rng.randrange(n + 1)
                if j < size:
                    self.inference_ms[j] = r["inference_ms"]
                self.inference_n += 1
            self.last_result = r
        elif r.get("kind") == "alarm":
            self._alarm(r)
        else:
            self.events[r.get("event")] += 1
            if r.get("event") == "alarms_active":
                self.alarms_active_at_stop = set(r.get("alarm_ids") or [])
            if r.get("kind") == "fault":  # only what the fault analysis needs
                self.faults.append({k: r.get(k) for k in ("event", "seq", "outage_s", "message")})
            if r.get("event") == "stopped":
                self.stopped = r

    def _alarm(self, r: dict) -> None:
        aid = r.get("alarm_id")
        if r.get("alarm_state") == "onset":
            self.alarm_onsets[r.get("alarm")] += 1
            self.alarm_errors += aid in self.alarms_open
            self.alarms_open.add(aid)
        else:
            self.alarm_ends += 1
            self.alarm_errors += aid not in self.alarms_open
            self.alarms_open.discard(aid)

    def alarm_row(self) -> list[str]:
        """Every alarm episode told once at onset and once at its end, or listed active at the stop."""
        kinds = ", ".join(f"{k} {n}" for k, n in self.alarm_onsets.most_common())
        listed = self.alarms_active_at_stop
        open_ok = self.alarms_open == (listed or set())
        return [
            "alarm records: onsets (by alarm) / ends / open at the stop (= listed active by it); "
            "end without onset or onset twice",
            f"{sum(self.alarm_onsets.values())} ({kinds or 'none'}) / {self.alarm_ends} / "
            f"{len(self.alarms_open)} (listed {len(listed or ())}); {self.alarm_errors}",
            "onsets = ends + open; 0",
            mark(open_ok and self.alarm_errors == 0),
        ]

    def _check_leads(self, r: dict) -> None:
        if self.span_of is None or r["label"] == "skipped" or "stopped before" in (r.get("reason") or ""):
            return  # skipped and in-flight windows are never looked at, by the pins or anyone
        t0, t1 = self.span_of(r["first_seq"], r["last_seq"])
        overlaps = any(d.start_ns < t1 and d.end_ns > t0 for d in self.detachments[-16:])
        says = r["label"] == "unreadable" and (r.get("reason") or "").startswith("leads off")
        if overlaps and says:
            self.leads_windows += 1
        elif overlaps:
            self.leads_missed += 1
        elif says:
            self.leads_false += 1

    def expected_windows(self, final_seq: int) -> tuple[int, int]:
        """(complete windows, 1 if a partly filled window was pending at the stop else 0)."""
        first0 = self.first0 or 0
        if final_seq < first0 + self.window:
            return 0, int(final_seq > first0)
        complete = (final_seq - first0 - self.window) // self.hop + 1
        last_stop = first0 + self.window + (complete - 1) * self.hop
        return complete, int(final_seq > last_stop)

    def final_seq_from_incomplete(self) -> int | None:
        """The sequence number at the stop, from the 'stopped before the window was complete' record."""
        r = self.last_result
        if not r or not r.get("reason"):
            return None
        m = INCOMPLETE.search(r["reason"])
        if not m:
            return None
        return r["last_seq"] + 1 - self.hop + int(m.group(1))


def log_rows(acct: Accounting, follower: LogFollower, complete: int, partial: int) -> list[list[str]]:
    """Both soaks' central check: one line in the log for every window the sequence numbers call for,
    in order and on the hop grid."""
    expected = complete + partial
    return [
        [
            "windows expected (complete + the one pending at stop)",
            f"{complete} + {partial} = {expected}",
            "",
            "",
        ],
        [
            "result lines in the log files (followed across rotations)",
            f"{acct.results} ({follower.files} files, {follower.torn} torn, {follower.bad} bad lines)",
            f"{expected}",
            mark(acct.results == expected and not follower.torn and not follower.bad),
        ],
        [
            "window_index continuity / first_seq on the hop grid",
            f"{acct.index_errors} breaks / {acct.seq_errors} misaligned",
            "0 / 0",
            mark(acct.index_errors == 0 and acct.seq_errors == 0),
        ],
        ["labels", ", ".join(f"{k} {v}" for k, v in acct.labels.most_common()), "", ""],
    ]


def fresh_dir(parent: Path, name: str) -> Path:
    """A new directory per run, so that a kept directory never mixes two runs' logs."""
    d = parent / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    d.mkdir(parents=True)
    return d


def log_files(log: Path) -> list[Path]:
    return sorted(p for p in log.parent.glob(log.name + "*") if p.is_file())


def log_bound_row(log: Path, max_bytes: int, backups: int) -> list[str]:
    files = log_files(log)
    sizes = [p.stat().st_size for p in files]
    bound = (backups + 1) * max_bytes
    ok = len(files) <= backups + 1 and all(s <= max_bytes for s in sizes) and sum(sizes) <= bound
    return [
        "log files: count / total size (largest)",
        f"{len(files)} / {sum(sizes) / 1024:.0f} KiB ({max(sizes, default=0) / 1024:.0f} KiB)",
        f"≤ {backups + 1} files of ≤ {max_bytes / 1024:.0f} KiB",
        "ok" if ok else "OVER BOUND",
    ]


def settle_journal(cursor: str, *matches: str, expect: int, timeout: float = 15.0) -> int:
    """journald writes asynchronously: read until the count stops growing (or reaches ``expect``)."""
    end = time.monotonic() + timeout
    last = -1
    while True:
        n = journal_count(cursor, *matches)
        if n >= expect or n == last or time.monotonic() > end:
            return n
        last = n
        time.sleep(1.0)


def mark(ok: bool) -> str:
    return "ok" if ok else "MISMATCH"


# -- accelerated soak --------------------------------------------------------------------------------
class PacedClock(SimulatedClock):
    """A ``SimulatedClock`` that runs at most ``speed`` times faster than real time. Why: unpaced, the
    sampler outruns the worker, which then coalesces most windows into ``skipped`` and the soak no
    longer exercises the beat, classifier and alarm stages it is meant to soak. Real sleeps are taken
    only when more than a millisecond ahead (a sleep per sample would cost more than the sample)."""

    def __init__(self, speed: float) -> None:
        super().__init__()
        self._speed = speed
        self._sim0 = self.monotonic_ns()
        self._real0 = time.monotonic_ns()

    def sleep_until(self, deadline_ns: int) -> None:
        super().sleep_until(deadline_ns)
        ahead_ns = self._real0 + (deadline_ns - self._sim0) / self._speed - time.monotonic_ns()
        if ahead_ns > 1_000_000:
            time.sleep(ahead_ns / 1e9)


@dataclass
class Episode:
    kind: str
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class Driver:
    """Side thread: fault injection on the simulated clock, RSS/fd samples, the log follower, the stop."""

    def __init__(self, daemon, clock, follower: LogFollower, args, stop_after_ns: int) -> None:
        self.daemon = daemon
        self.clock = clock
        self.follower = follower
        self.rng = random.Random(args.seed)
        self.mean_gap_ns = int(args.fault_every_min * 60e9)
        self.start_ns = clock.monotonic_ns()
        self.stop_at_ns = self.start_ns + stop_after_ns
        self.episodes: list[Episode] = []
        self.samples: list[tuple[float, float, int]] = []  # (simulated h, RSS KiB, fds not ours)
        self.sample_every_s = args.sample_every
        self.real_start = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="soak-driver", daemon=True)
        self.error: BaseException | None = None
        self.late_registrations = 0
        self.mean_leads_gap_ns = int(args.leads_off_every_min * 60e9)
        self.detachments: list = []  # the accounting reads them (the same list)

    def _detach(self) -> None:
        """An electrode off for 1-60 s (either pin), starting a little ahead like the bus faults."""
        line = self.rng.choice(("LO+", "LO−"))
        d = self.daemon.i2c.electrodes.detach(line, self.rng.uniform(1.0, 60.0), after_s=INJECT_LEAD_S)
        if self.clock.monotonic_ns() > d.start_ns:
            self.late_registrations += 1
        self.detachments.append(d)

    def _next_gap(self) -> int:
        return int(self.rng.expovariate(1.0) * self.mean_gap_ns) + 1_000_000_000

    def _inject(self, now: int) -> Episode:
        kinds = list(FAULT_KINDS)
        name, _, err, gone = self.rng.choices(kinds, weights=[k[1] for k in kinds])[0]
        if gone:
            seconds = self.rng.uniform(1.0, 10.0)
        else:
            seconds = math.exp(self.rng.uniform(math.log(0.01), math.log(5.0)))
        # The sampler runs on while this thread injects: a fault starting "now" could begin before it
        # is in the emulator's list and miss its first reads. Start it a little ahead (simulated time),
        # and if the sampler still got there first, count the episode from when it was registered.
        fault = self.daemon.i2c.inject(seconds, err, gone=gone, after_s=INJECT_LEAD_S)
        registered = self.clock.monotonic_ns()
        if registered > fault.start_ns:
            self.late_registrations += 1
            return Episode(name, min(registered, fault.end_ns), fault.end_ns)
        return Episode(name, fault.start_ns, fault.end_ns)

    def _sample(self, now: int) -> None:
        rss = proc_status()["VmRSS"]
        self.samples.append(
            ((now - self.start_ns) / 3.6e12, rss, fd_count(outside=self.follower.path.parent))
        )

    def _run(self) -> None:
        try:
            next_fault = self.start_ns + self._next_gap()
            next_leads = self.start_ns + int(self.rng.expovariate(1.0) * self.mean_leads_gap_ns)
            next_sample = next_follow = 0.0
            while True:
                now = self.clock.monotonic_ns()
                real = time.monotonic()
                if now >= self.stop_at_ns:
                    self._sample(now)
                    self.daemon.request_stop()
                    return
                if now >= next_fault:
                    ep = self._inject(now)
                    self.episodes.append(ep)
                    next_fault = ep.end_ns + self._next_gap()  # never two at once: each one is attributable
                if now >= next_leads:
                    self._detach()
                    gap = int(self.rng.expovariate(1.0) * self.mean_leads_gap_ns)
                    next_leads = self.detachments[-1].end_ns + 1_000_000_000 + gap
                i2c = self.daemon.i2c
                if len(i2c.faults) > 1:  # the emulator scans every fault ever injected on each transfer
                    i2c.faults = [f for f in i2c.faults if f.end_ns > now]
                if real >= next_follow:
                    self.follower.poll()
                    next_follow = real + 0.1
                if real >= next_sample:
                    self._sample(now)
                    next_sample = real + self.sample_every_s
                time.sleep(0.005)
        except BaseException as exc:  # report, and stop the soak rather than run on unattended
            self.error = exc
            self.daemon.request_stop()


def analyse_faults(
    episodes: list[Episode], faults: list[dict], grid, fault_after_s: float, backoff_s: float, start_ns: int
) -> tuple[list[list[str]], list[str]]:
    """Match sensor_fault / sensor_recovered records to the injected episodes by the slot they name.

    Returns table rows and one line per episode or record that does not fit, for a closer look.
    """
    margin_ns = int((backoff_s + 0.5) * 1e9)
    faults = [f for f in faults if f.get("seq") is not None]  # the sampler's; leads, sinks name no slot
    raised = [f for f in faults if f.get("event") == "sensor_fault"]
    recovered = [f for f in faults if f.get("event") == "sensor_recovered"]

    def t(rec: dict) -> int:
        return grid.deadline_ns(rec["seq"])

    def episode_of(rec: dict) -> Episode | None:
        ts = t(rec)
        for ep in episodes:
            if ep.start_ns <= ts <= ep.end_ns + margin_ns:
                return ep
        return None

    # A burst shorter than fault_after must stay silent. While the device is gone the sampler backs off
    # between reopen attempts (up to max_backoff), which can stretch a shorter absence past fault_after.
    long_eps = [e for e in episodes if e.seconds >= fault_after_s + 0.05]
    short_eps = [
        e
        for e in episodes
        if e.seconds < fault_after_s - 0.05 - (backoff_s if e.kind == "device gone" else 0.0)
    ]
    either = [e for e in episodes if e not in long_eps and e not in short_eps]
    fault_eps = Counter(id(episode_of(f)) for f in raised)
    unmatched_faults = sum(1 for f in raised if episode_of(f) is None)
    long_reported = sum(1 for e in long_eps if fault_eps.get(id(e)))
    short_reported = sum(1 for e in short_eps if fault_eps.get(id(e)))
    either_reported = sum(1 for e in either if fault_eps.get(id(e)))
    excess = []
    notes = []

    def at(ns: int) -> str:
        return f"{(ns - start_ns) / 3.6e12:.4f} h"

    def near(ep: Episode) -> str:
        recs = [f for f in faults if abs(t(f) - ep.start_ns) < 60e9]
        return "; ".join(
            f"{f['event']} at {(t(f) - ep.start_ns) / 1e9:+.3f} s (outage_s {f.get('outage_s')})"
            for f in recs
        )

    for r in recovered:
        ep = episode_of(r)
        if ep is not None:
            x = r.get("outage_s", 0.0) - ep.seconds
            excess.append(x)
            if x < -0.05 or x > backoff_s + 0.1:
                notes.append(
                    f"recovery outage {r.get('outage_s')} s for {ep.kind} of {ep.seconds:.3f} s "
                    f"at {at(ep.start_ns)}: " + near(ep)
                )
    for e in long_eps:
        if not fault_eps.get(id(e)):
            notes.append(
                f"no fault for {e.kind} of {e.seconds:.3f} s at {at(e.start_ns)}: "
                + (near(e) or "no records")
            )
    for e in short_eps:
        if fault_eps.get(id(e)):
            notes.append(f"fault for {e.kind} of {e.seconds:.3f} s at {at(e.start_ns)}: " + near(e))
    # every fault is followed by its recovery (the last one may still be open at the stop)
    order = sorted(
        [(f["seq"], "fault") for f in raised] + [(f["seq"], "rec") for f in recovered], key=lambda x: x[0]
    )
    alternates = all(order[i][1] == ("fault" if i % 2 == 0 else "rec") for i in range(len(order)))
    by_kind = Counter(e.kind for e in episodes)
    kinds = ", ".join(f"{k} {by_kind[k]}" for k, *_ in FAULT_KINDS)
    injected_s = sum(e.seconds for e in episodes)
    rows = [
        ["fault episodes injected (by kind)", f"{len(episodes)}: {kinds}", f"{injected_s:.0f} s in all", ""],
        [
            f"episodes ≥ {fault_after_s:g} s (must raise a fault) → reported",
            f"{long_reported} of {len(long_eps)}",
            f"{len(long_eps)}",
            mark(long_reported == len(long_eps)),
        ],
        [
            f"bursts < {fault_after_s:g} s (must stay silent) → reported",
            f"{short_reported} of {len(short_eps)}",
            "0",
            mark(short_reported == 0),
        ],
        [
            "near the threshold, or gone < 2 s stretched by reopen back-off → reported",
            f"{either_reported} of {len(either)}",
            "either",
            "",
        ],
        [
            "sensor_fault / sensor_recovered records; unmatched faults",
            f"{len(raised)} / {len(recovered)}; {unmatched_faults}",
            "equal, 0 unmatched",
            mark(len(raised) - len(recovered) in (0, 1) and unmatched_faults == 0 and alternates),
        ],
        [
            "reported outage − injected duration (min / median / max)",
            f"{fmt(min(excess) if excess else None, '.3f')} / "
            f"{fmt(float(np.median(excess)) if excess else None, '.3f')} / "
            f"{fmt(max(excess) if excess else None, '.3f')} s",
            f"0 … back-off ({backoff_s:g} s) + a slot",
            mark(not excess or (min(excess) > -0.05 and max(excess) <= backoff_s + 0.1)),
        ],
    ]
    return rows, notes


def set_up(args, tmp: Path, name: str, default_max_bytes: int, **sections: dict):
    """journald, the log rotation size, the log path and the config file of one soak."""
    print(f"load before: {uptime()}; other jobs: {other_jobs()}")
    journald = Journald(args.journald)
    max_bytes = args.log_max_bytes or default_max_bytes
    tmp = fresh_dir(tmp, name)
    log = tmp / "results.jsonl"
    output = {
        "console": False,
        "journal": journald.live,
        "log_file": str(log),
        "log_max_bytes": max_bytes,
        "log_backups": args.log_backups,
    }
    return journald, max_bytes, log, demo_config(tmp / "ecgd.yaml", output=output, **sections)


def accelerated(args, tmp: Path) -> None:
    from ecgd import config as cfg
    from ecgd.daemon import Daemon

    print(
        f"\n## Accelerated soak: {args.hours:g} h of signal, SimulatedClock"
        f"{'' if args.speed is None else f' paced at ≤ {args.speed:g}× real time'}, "
        f"seeded faults (seed {args.seed})\n"
    )
    journald, max_bytes, log, conf = set_up(
        args,
        tmp,
        "accel",
        1024 * 1024,
        emulated={"error_rate": args.error_rate, "seed": args.seed},
        leads={"lo_plus_line": 17, "lo_minus_line": 27},  # the emulated board's LO pins
        sampling={"realtime_priority": 0},  # on the simulated clock the sampler never sleeps: no FIFO
    )
    settings = cfg.load(conf)
    rate = settings.sampling.rate_hz
    hop = max(1, round(settings.windows.hop_seconds * rate))
    window = round(settings.windows.window_seconds * rate)
    acct = Accounting(hop, window)
    follower = LogFollower(log, acct)
    cursor = journal_cursor() if journald.live else ""
    clock = SimulatedClock() if args.speed is None else PacedClock(args.speed)
    daemon = Daemon(settings, clock=clock)
    t0 = time.monotonic()
    try:
        daemon.start()
        grid = daemon.sampler.grid
        acct.span_of = lambda first, last: (grid.deadline_ns(first), grid.deadline_ns(last))
        driver = Driver(daemon, clock, follower, args, int(args.hours * 3.6e12))
        acct.detachments = driver.detachments
        driver.thread.start()
        daemon.run()  # the daemon's own main loop, in the main thread; the driver stops it
        wall = time.monotonic() - t0
        driver.thread.join(5)
        follower.poll()
        follower.close()
        st = daemon.sampler.stats()
        results_journal = (
            settle_journal(cursor, f"_PID={os.getpid()}", f"MESSAGE_ID={RESULT_ID}", expect=acct.results)
            if journald.live
            else None
        )
        files_row = log_bound_row(log, max_bytes, args.log_backups)
    finally:
        journald.stop()
    load_run = f"load at end: {uptime()}; other jobs: {other_jobs()}"
    if driver.error:
        print(f"driver thread failed: {driver.error!r}")

    final = st.next_seq
    sim_h = (clock.monotonic_ns() - driver.start_ns) / 3.6e12
    complete, partial = acct.expected_windows(final)
    expected = complete + partial
    warm_h = min(1.0, 0.1 * args.hours)
    warm = next((s for s in driver.samples if s[0] >= warm_h), driver.samples[0])
    end = driver.samples[-1]
    rss_max = max(s[1] for s in driver.samples)
    fds = [s[2] for s in driver.samples]
    fds_warm = [s[2] for s in driver.samples if s[0] >= warm_h] or fds
    stopped = acct.stopped or {}
    unreported = complete - (acct.results - partial)
    d = settings.device
    fault_rows, fault_notes = analyse_faults(
        driver.episodes,
        acct.faults,
        daemon.sampler.grid,
        d.fault_after_seconds,
        d.max_backoff_seconds,
        driver.start_ns,
    )
    rows = [
        [
            "simulated signal / wall time",
            f"{sim_h:.2f} h in {wall / 60:.1f} min ({sim_h * 3600 / wall:.0f}×)",
            "",
            "",
        ],
        [
            "samples: taken + missing = final sequence number",
            f"{st.taken} + {st.missing} = {st.taken + st.missing} (final {final})",
            f"{final}",
            mark(st.taken + st.missing == final),
        ],
        [
            "missing: late / read errors; read errors, bursts, retried ok",
            f"{st.missing_late} / {st.missing_errors}; {st.read_errors}, {st.error_bursts}, {st.retries_ok}",
            "",
            "",
        ],
        *log_rows(acct, follower, complete, partial),
        [
            "results submitted by the daemon (daemon.results)",
            f"{daemon.results}",
            f"{expected}",
            mark(daemon.results == expected),
        ],
        [
            "result entries in journald (_PID, MESSAGE_ID)",
            fmt(results_journal, "d"),
            f"{acct.results} (the log's)",
            "n/a" if results_journal is None else mark(results_journal == acct.results),
        ],
        [
            "complete windows never reported (lost at shutdown)",
            f"{unreported}",
            "0",
            mark(unreported == 0),
        ],
        [
            "'stopped' record: results / taken / missing",
            f"{stopped.get('results')} / {stopped.get('samples_taken')} / {stopped.get('samples_missing')}",
            f"{daemon.results} / {st.taken} / {st.missing}",
            mark(
                stopped.get("results") == daemon.results
                and stopped.get("samples_taken") == st.taken
                and stopped.get("samples_missing") == st.missing
            ),
        ],
        [
            "records dropped (queue full); sink down events",
            f"{daemon.dispatcher.dropped}; {acct.events.get('sink_down', 0)}",
            "0; 0",
            mark(daemon.dispatcher.dropped == 0 and not acct.events.get("sink_down")),
        ],
        acct.alarm_row(),
        *fault_rows,
        [
            "electrode-off episodes (LO+ / LO−, 1-60 s) → leads_off / leads_on records",
            f"{len(driver.detachments)} → {acct.events.get('leads_off', 0)} / "
            f"{acct.events.get('leads_on', 0)}",
            f"{len(driver.detachments)} each (the last may be open)",
            mark(
                len(driver.detachments) - acct.events.get("leads_on", 0) in (0, 1)
                and acct.events.get("leads_off", 0) == len(driver.detachments)
            ),
        ],
        [
            "windows overlapping one: 'leads off' / not; 'leads off' without one",
            f"{acct.leads_windows} / {acct.leads_missed}; {acct.leads_false}",
            "all / 0; 0",
            mark(
                (acct.leads_windows > 0 or not driver.detachments)
                and acct.leads_missed == 0
                and acct.leads_false == 0
            ),
        ],
        [
            f"RSS at warm-up ({warm[0]:.2f} h) → end ({end[0]:.2f} h); max",
            f"{warm[1] / 1024:.1f} → {end[1] / 1024:.1f} MiB ({(end[1] - warm[1]) / 1024:+.1f}); "
            f"{rss_max / 1024:.1f}",
            "no growth",
            "",
        ],
        [
            "open fds other than the log files after warm-up: min / max (whole run)",
            f"{min(fds_warm)} / {max(fds_warm)} ({min(fds)} / {max(fds)})",
            "constant",
            mark(min(fds_warm) == max(fds_warm)),
        ],
        files_row,
    ]
    print()
    print(table(["what", "figure", "expected / bound", "check"], rows))
    print()
    print(
        "- daemon: demo configuration, emulated PCF8591 (0.2 ms/read), "
        f"per-read error rate {args.error_rate:g}, "
        f"fault every ~{args.fault_every_min:g} simulated min (exponential gaps, never overlapping), "
        f"an electrode off every ~{args.leads_off_every_min:g} simulated min (LO pins on), "
        f"log rotation at {max_bytes / 1024:.0f} KiB × {args.log_backups} backups"
    )
    print(
        f"- journald: {journald.how}; RSS and fds are this whole process (daemon + soak driver); the "
        "log files' fds (writer and follower) are left out: they are reopened within a write at each "
        "rotation, and the file count and sizes are checked instead"
    )
    if acct.inference_n:
        sample = acct.inference_ms[~np.isnan(acct.inference_ms)]
        print(
            f"- inference: median {np.median(sample):.2f} ms, p99 {np.percentile(sample, 99):.2f} ms "
            f"per window ({acct.inference_n} windows classified by the model)"
        )
    print(f"- {load_run}")
    if driver.late_registrations:
        print(
            f"- {driver.late_registrations} faults were registered after their planned start "
            "(counted from registration)"
        )
    for note in fault_notes:
        print(f"- fault analysis: {note}")
    if args.series:
        print("\nRSS / fds over the run (simulated h, RSS MiB, fds):")
        step = max(1, len(driver.samples) // 24)
        for h, rss, n in driver.samples[::step]:
            print(f"  {h:7.2f} h  {rss / 1024:7.1f} MiB  {n} fds")


# -- real-time soak ----------------------------------------------------------------------------------
def realtime(args, tmp: Path) -> None:
    minutes = args.realtime
    print(f"\n## Real-time soak: `ecgd run` on the demo configuration for {minutes:g} min\n")
    # As the unit runs it: the sampler thread on SCHED_FIFO 20 (refused without root: said so).
    journald, max_bytes, log, conf = set_up(
        args, tmp, "realtime", 64 * 1024, sampling={"realtime_priority": 20}
    )
    from ecgd import config as cfg

    settings = cfg.load(conf)
    rate = settings.sampling.rate_hz
    hop = max(1, round(settings.windows.hop_seconds * rate))
    window = round(settings.windows.window_seconds * rate)
    acct = Accounting(hop, window)
    follower = LogFollower(log, acct)
    cursor = journal_cursor() if journald.live else ""
    samples: list[tuple[float, int, int]] = []
    max_load = 0.0
    jobs_seen: set[str] = set()
    proc, listener, t0 = start_ecgd(conf, log.parent)

    def sample(t: float) -> tuple[float, int, int]:
        return t, proc_status(proc.pid)["VmRSS"], fd_count(proc.pid, log.parent)

    err = ""
    rc = stop_s = ready_s = None
    results_journal = None
    try:
        t_ready = listener.wait_for("READY=1", 60)
        if t_ready is None:
            raise RuntimeError("no READY=1 within 60 s")
        ready_s = t_ready - t0
        end = t_ready + minutes * 60
        next_sample = next_load = 0.0
        while (now := time.monotonic()) < end and proc.poll() is None:
            if now >= next_sample:
                samples.append(sample(now - t_ready))
                next_sample = now + args.sample_every
                if now >= next_load:  # the lateness figures only mean something with the load beside them
                    max_load = max(max_load, os.getloadavg()[0])
                    jobs = other_jobs()
                    if jobs != "none":
                        jobs_seen.add(jobs)
                    next_load = now + 30.0
            follower.poll()
            time.sleep(0.2)
        samples.append(sample(time.monotonic() - t_ready))
        t_term = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        stop_s = time.monotonic() - t_term
        rc = proc.returncode
        follower.poll()
        follower.close()
        if journald.live:
            results_journal = settle_journal(
                cursor, f"_PID={proc.pid}", f"MESSAGE_ID={RESULT_ID}", expect=acct.results
            )
        files_row = log_bound_row(log, max_bytes, args.log_backups)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        listener.close()
        journald.stop()
    load_run = f"load at end: {uptime()}; other jobs: {other_jobs()}"

    pings = [t for t, s in listener.messages if s == "WATCHDOG=1"]
    gaps = np.diff(pings) if len(pings) > 1 else np.array([])
    stopped = acct.stopped or {}
    taken, missing = stopped.get("samples_taken"), stopped.get("samples_missing")
    final = acct.final_seq_from_incomplete()
    if final is None and taken is not None:
        final = taken + missing
    complete, partial = acct.expected_windows(final or 0)
    rss0, rss1 = samples[0][1], samples[-1][1]
    warm = next((s for s in samples if s[0] >= 60), samples[0])
    fds = [s[2] for s in samples]
    rows = [
        [
            "run: exec → READY=1; SIGTERM → exit",
            f"{fmt(ready_s, '.2f')} s; exit {rc} in {fmt(stop_s, '.2f')} s",
            "≤ 1.5 s; 0 in < 2 s",
            mark(rc == 0 and stop_s is not None and stop_s < 2.0),
        ],
        [
            "samples: taken + missing = final sequence number",
            f"{taken} + {missing} = {fmt(taken + missing if taken is not None else None, 'd')} "
            f"(final {final})",
            f"{final}",
            mark(taken is not None and taken + missing == final),
        ],
        [
            "missing: late / read errors",
            f"{stopped.get('missing_late')} / {stopped.get('missing_errors')}",
            "0 / 0 (idle machine)",
            mark(missing == 0),
        ],
        [
            "lateness p50 / p99 / max ms (the 'stopped' record)",
            " / ".join(str(stopped.get(f"lateness_{q}_ms")) for q in ("p50", "p99", "max")),
            "p99 ≤ 0.5",
            mark(stopped.get("lateness_p99_ms") is not None and stopped["lateness_p99_ms"] <= 0.5),
        ],
        *log_rows(acct, follower, complete, partial),
        [
            "'stopped' record: results",
            f"{stopped.get('results')}",
            f"{acct.results}",
            mark(stopped.get("results") == acct.results),
        ],
        [
            "result entries in journald (_PID, MESSAGE_ID)",
            fmt(results_journal, "d"),
            f"{acct.results} (the log's)",
            "n/a" if results_journal is None else mark(results_journal == acct.results),
        ],
        [
            "records dropped; faults; sink down events",
            f"{stopped.get('records_dropped')}; {len(acct.faults)}; {acct.events.get('sink_down', 0)}",
            "0; 0; 0",
            mark(stopped.get("records_dropped") == 0 and not acct.faults),
        ],
        [
            f"RSS at READY → +{warm[0]:.0f} s → end ({samples[-1][0] / 60:.1f} min)",
            f"{rss0 / 1024:.1f} → {warm[1] / 1024:.1f} → {rss1 / 1024:.1f} MiB",
            "≤ 60, no growth",
            "",
        ],
        [
            "open fds other than the log files: min / max",
            f"{min(fds)} / {max(fds)}",
            "constant",
            mark(min(fds) == max(fds)),
        ],
        [
            "WATCHDOG=1 pings: count, max gap",
            f"{len(pings)}, {fmt(float(gaps.max()) if gaps.size else None, '.2f')} s",
            "every 5 s (WATCHDOG_USEC 10 s)",
            mark(gaps.size > 0 and gaps.max() < 10.0),
        ],
        files_row,
    ]
    print()
    print(table(["what", "figure", "expected / bound", "check"], rows))
    print()
    print(
        f"- journald: {journald.how}; log rotation at {max_bytes / 1024:.0f} KiB × {args.log_backups} backups"
    )
    print(
        "- lateness p50/p99/max come from the sampler's statistics, which keep the last 65536 reads "
        f"(~{65536 / rate:.0f} s at {rate:g} Hz), not the whole run; missing counts are the whole run"
    )
    print(
        f"- load during the run (every 30 s): highest 1-min load average {max_load:.2f}; other jobs seen: "
        + (", ".join(sorted(jobs_seen)) or "none")
    )
    if err.strip():
        print(f"- stderr: {err.strip()[-400:]!r}")
    print(f"- {load_run}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, help="simulated hours of the accelerated soak (default 24)")
    p.add_argument("--realtime", type=float, metavar="MINUTES", help="run the real-time soak instead")
    p.add_argument(
        "--speed",
        type=float,
        help="accelerated soak: simulated time at most this many times real time (default: unpaced, "
        "as fast as the sampler runs; the worker then skips most windows)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault-every-min", type=float, default=3.0, help="mean simulated minutes between faults")
    p.add_argument(
        "--leads-off-every-min",
        type=float,
        default=10.0,
        help="mean simulated minutes between electrode-off episodes (1-60 s, LO+ or LO−)",
    )
    p.add_argument("--error-rate", type=float, default=1e-4, help="random per-read EREMOTEIO probability")
    p.add_argument(
        "--log-max-bytes", type=int, help="rotation size (default 1 MiB accelerated, 64 KiB real time)"
    )
    p.add_argument("--log-backups", type=int, default=3)
    p.add_argument("--sample-every", type=float, default=2.0, help="real seconds between RSS/fd samples")
    p.add_argument(
        "--journald",
        choices=("auto", "reuse", "off"),
        default="auto",
        help="reuse a running journald, else start one as a child (root); reuse: only a running one; off",
    )
    p.add_argument("--series", action="store_true", help="also print the RSS/fd series")
    p.add_argument("--keep", type=Path, help="keep the logs in this directory instead of a temporary one")
    args = p.parse_args(argv)
    if args.hours is None and args.realtime is None:
        args.hours = 24.0
    quiet_environment()
    import platform

    from ecgd.analysis.model import load_model
    from ecgd.config import BUNDLED_MODEL

    print("# ecgd soak\n")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu_model()}; "
        f"Python {platform.python_version()}; "
        f"TFLite backend {load_model(BUNDLED_MODEL).backend}"
    )
    print(f"load at start: {uptime()}; other jobs: {other_jobs()}")
    with tempfile.TemporaryDirectory(prefix="ecgd-soak-") as d:
        tmp = args.keep or Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        if args.hours:
            accelerated(args, tmp)
        if args.realtime:
            realtime(args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
