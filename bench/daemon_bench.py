"""Benchmarks of the daemon: sampling accuracy under inference, footprint, offline speed.

Everything runs on the emulated PCF8591 (0.2 ms per I2C read) so any machine can repeat it:

1. Sampling, side by side for ``--duration`` s at 360 Hz with a classification every 2 s in the same
   process: (a) the real ``ecgd.daemon.Daemon`` on the demo settings (absolute grid), (b) the naive
   ``read(); sleep(1/fs)`` loop with a thread classifying the last 10 s every 2 s.
2. Footprint: ``ecgd run`` as a process with a ``NOTIFY_SOCKET`` (exec → READY=1, RSS and CPU over
   ``--duration`` s, clean SIGTERM), against importing a TFLite interpreter (the daemon's backend, and
   full TensorFlow with ``--tf-python``) and invoking the bundled model once.
3. Offline: ``ecgd classify`` over a 30-min MIT-BIH record, hop 10 s and 2 s, with and without the
   PCF8591 front-end model.

These are measurements, not tests: nothing is asserted; markdown tables are printed with the machine
and its load. Timing figures only mean something on an otherwise idle machine.

    .venv/bin/python bench/daemon_bench.py [--duration 60] [--tf-python .venv-train/bin/python]
        [--record ../shared/data/mitdb/208] [--skip sampling,footprint,offline]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from ecgd.harness import Journald, NotifyListener, ecgd_command, spawn_ecgd

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "demo.yaml"
DEFAULT_RECORD = REPO.parent / "shared" / "data" / "mitdb" / "208"
DEFAULT_TF_PYTHON = REPO / ".venv-train" / "bin" / "python"
RATE_HZ = 360.0

TARGETS = {
    "rate_ppm": 10.0,
    "p99_ms": 0.5,
    "rss_mib": 60.0,
    "ready_s": 1.5,
    "cpu_pct": 3.0,
    "offline_x": 500.0,
}


# -- helpers shared with bench/soak.py ------------------------------------------------------------
def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def other_jobs() -> str:
    """Processes that would disturb timing (another engineer's training, a test run)."""
    found = []
    for pattern in ("training.train", "pytest"):
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout
        pids = [p for p in out.split() if int(p) != os.getpid()]
        if pids:
            found.append(f"{pattern} ×{len(pids)}")
    return ", ".join(found) or "none"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM, … in KiB from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            out[key] = int(value.split()[0])
    return out


def proc_cpu_s(pid: int | str = "self") -> float:
    """utime + stime of a process in seconds (fields 14 and 15 of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int | str = "self", outside: Path | None = None) -> int:
    """Open fds; with ``outside``, only those not on files below it (the rotating log's fds come and
    go within one write: counting them would make a rotation look like a leak or a loss)."""
    names = os.listdir(f"/proc/{pid}/fd")
    if outside is None:
        return len(names)
    n = 0
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed since the listing
            continue
        n += not target.startswith(str(outside) + os.sep)
    return n


def journal_count(cursor: str, *matches: str) -> int:
    """Entries after ``cursor`` matching every ``FIELD=value``.

    The matches are applied here, not by journalctl: journalctl 252 given ``--after-cursor`` together
    with field matches skips the first matching entry.
    """
    want = dict(m.split("=", 1) for m in matches)
    fields = ",".join(want) or "MESSAGE_ID"
    cmd = ["journalctl", "--no-pager", "-q", "-o", "json", f"--output-fields={fields}"]
    if cursor:
        cmd.insert(1, f"--after-cursor={cursor}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    n = 0
    for line in out.splitlines():
        if line.strip():
            entry = json.loads(line)
            n += all(entry.get(k) == v for k, v in want.items())
    return n


def demo_config(path: Path, *, output: dict, **sections: dict | None) -> Path:
    """config/demo.yaml with the given keys of each section replaced, written to ``path``."""
    data = yaml.safe_load(DEMO_CONFIG.read_text()) or {}
    data["recording"] = {"directory": None}  # benchmarks record only where they say so
    for section, values in (("output", output), *sections.items()):
        if values:
            data.setdefault(section, {})
            data[section] = {**(data[section] or {}), **values}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o644)
    return path


def start_ecgd(conf: Path, notify_dir: Path) -> tuple[subprocess.Popen, NotifyListener, float]:
    """``ecgd run`` as the unit starts it (NOTIFY_SOCKET, a 10-s watchdog): process, listener, exec time."""
    listener = NotifyListener(notify_dir / "notify.sock")
    t0 = time.monotonic()
    return spawn_ecgd(conf, listener.path, 10_000_000), listener, t0


def quiet_environment() -> None:
    """The in-process daemon must not talk to a service manager this script may run under."""
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(key, None)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section_load(name: str) -> str:
    return f"load during {name}: {uptime()}; other jobs: {other_jobs()}"


# -- 1. sampling -------------------------------------------------------------------------------------
@dataclasses.dataclass
class SamplingResult:
    method: str
    samples: int
    achieved_hz: float
    fit_hz: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int
    windows: int
    inference_ms: float | None
    cpu_pct: float | None = None

    @property
    def ppm(self) -> float:
        return (self.achieved_hz / RATE_HZ - 1.0) * 1e6

    def row(self) -> list[str]:
        return [
            self.method,
            str(self.samples),
            f"{self.achieved_hz:.4f}",
            f"{self.ppm:+.1f}",
            f"{self.p50_ms:.3f} / {self.p99_ms:.3f} / {self.max_ms:.3f}",
            str(self.missing),
            fmt(self.cpu_pct, ".1f"),
        ]


def rates(seqs: np.ndarray, stamps_ns: np.ndarray) -> tuple[float, float]:
    """(seq span)/(stamp span), and the least-squares slope (less sensitive to the end points' jitter)."""
    span = float(seqs[-1] - seqs[0])
    achieved = span / ((stamps_ns[-1] - stamps_ns[0]) / 1e9)
    t = (stamps_ns - stamps_ns[0]) / 1e9
    s = (seqs - seqs[0]).astype(np.float64)
    slope_s_per_sample = np.polyfit(s, t, 1)[0]
    return achieved, 1.0 / slope_s_per_sample


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_daemon_sampling(duration: float, tmp: Path, realtime_priority: int) -> SamplingResult:
    from ecgd import config as cfg
    from ecgd.acquisition.clock import RealClock
    from ecgd.daemon import Daemon

    log = tmp / f"sampling-results-{realtime_priority}.jsonl"
    conf = demo_config(
        tmp / "sampling.yaml",
        output={"console": False, "journal": False, "log_file": str(log)},
        emulated={"bus_latency_ms": 0.2},
        sampling={"realtime_priority": realtime_priority},
    )
    settings = cfg.load(conf)
    daemon = Daemon(settings, clock=RealClock())
    daemon.start()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    daemon.run(duration_s=duration)  # the real main loop (status, events), then a clean shutdown
    cpu_pct = (cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100
    st = daemon.sampler.stats()
    ring = daemon.ring
    stop = ring.next_seq
    first = max(daemon.sampler.grid.first_seq, stop - ring.capacity)
    block = ring.read(first, stop)
    seqs = first + np.flatnonzero(block.valid)
    stamps = block.stamps_ns[block.valid]
    achieved, fit = rates(seqs, stamps)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    inference = [r["inference_ms"] for r in records if r["kind"] == "result" and r.get("inference_ms")]
    return SamplingResult(
        f"ecgd Daemon (absolute grid), sampler {daemon.sampler.policy}",
        st.taken,
        achieved,
        fit,
        st.lateness_p50_ms,
        st.lateness_p99_ms,
        st.lateness_max_ms,
        st.missing,
        daemon.results,
        float(np.median(inference)) if inference else None,
        cpu_pct,
    )


def bench_bare_loop(duration: float) -> SamplingResult:
    """The floor of this machine: one thread sleeping to each deadline of the grid, no I/O, no other
    threads. Its lateness is the kernel's (and hypervisor's) wake-up latency alone."""
    n = int(duration * RATE_HZ)
    lateness = np.empty(n, dtype=np.int64)
    period = 1e9 / RATE_HZ
    cpu0 = cpu_seconds()
    t0 = time.monotonic_ns()
    for k in range(n):
        deadline = t0 + int(k * period)
        remaining = deadline - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
        lateness[k] = time.monotonic_ns() - deadline
    wall = (time.monotonic_ns() - t0) / 1e9
    ms = lateness / 1e6
    late = int(np.count_nonzero(ms > 0.5 * 1000 / RATE_HZ))
    return SamplingResult(
        "floor: bare Python loop, sleep to each deadline, no I/O",
        n,
        RATE_HZ,
        RATE_HZ,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(ms.max()),
        late,
        0,
        None,
        (cpu_seconds() - cpu0) / wall * 100,
    )


def bench_naive_sampling(duration: float) -> SamplingResult:
    """``v = bus.read_byte(addr); stamp; time.sleep(1/fs)`` with a classifier thread every 2 s."""
    from ecgd import config as cfg
    from ecgd.acquisition.clock import RealClock
    from ecgd.acquisition.sources.emulated import emulated_device
    from ecgd.acquisition.sources.pcf8591 import Pcf8591
    from ecgd.analysis.classifier import WindowClassifier
    from ecgd.analysis.quality import adc_rails_mv
    from ecgd.daemon import load_checked_model
    from ecgd.io.records import read_recording

    settings = cfg.load(DEMO_CONFIG)
    d, fe = settings.device, settings.analog_frontend
    rec = read_recording(settings.demo_recording)
    i2c = emulated_device(rec, fe, RealClock(), channel=d.channel, address=d.address, latency_ms=0.2)
    source = Pcf8591(d.i2c_bus, d.address, d.channel, bus_factory=i2c)
    source.open()
    model = load_checked_model(settings)
    classifier = WindowClassifier(
        model, RATE_HZ, settings.quality, adc_rails_mv(fe), settings.windows.max_missing_fraction
    )
    window = round(settings.windows.window_seconds * RATE_HZ)
    hop_s = settings.windows.hop_seconds
    cap = int(duration * RATE_HZ * 1.1) + 10
    values = np.zeros(cap, dtype=np.int16)
    stamps = np.zeros(cap, dtype=np.int64)
    count = [0]
    done = threading.Event()
    inference_ms: list[float] = []

    def infer() -> None:
        next_t = time.monotonic() + hop_s
        while not done.wait(max(0.0, next_t - time.monotonic())):
            next_t += hop_s
            n = count[0]
            if n < window:
                continue
            c = classifier.classify(fe.counts_to_mv(values[n - window : n].copy()))
            if c.inference_ms is not None:
                inference_ms.append(c.inference_ms)

    worker = threading.Thread(target=infer, daemon=True)
    worker.start()
    read = source.read
    period = 1.0 / RATE_HZ
    i = 0
    cpu0 = cpu_seconds()
    t_first = time.monotonic_ns()
    end_ns = t_first + int(duration * 1e9)
    while True:
        v = read()
        t = time.monotonic_ns()
        if t >= end_ns or i >= cap:
            break
        values[i] = v
        stamps[i] = t
        i += 1
        count[0] = i
        time.sleep(period)
    cpu_pct = (cpu_seconds() - cpu0) / ((time.monotonic_ns() - t_first) / 1e9) * 100
    done.set()
    worker.join(5)
    source.close()
    stamps = stamps[:i]
    seqs = np.arange(i)
    achieved, fit = rates(seqs, stamps)
    lateness_ms = (stamps - (stamps[0] + seqs * (1e9 / RATE_HZ))) / 1e6
    expected = int(duration * RATE_HZ)
    return SamplingResult(
        "naive read(); sleep(1/fs)",
        i,
        achieved,
        fit,
        float(np.percentile(lateness_ms, 50)),
        float(np.percentile(lateness_ms, 99)),
        float(lateness_ms.max()),
        expected - i,
        len(inference_ms),
        float(np.median(inference_ms)) if inference_ms else None,
        cpu_pct,
    )


def section_sampling(duration: float, tmp: Path) -> None:
    print(f"\n## Sampling: {duration:g} s at {RATE_HZ:g} Hz, emulated bus 0.2 ms/read, inference every 2 s\n")
    print(f"load before: {uptime()}; other jobs: {other_jobs()}")
    floor = bench_bare_loop(duration)
    load_floor = section_load("the floor")
    a = bench_daemon_sampling(duration, tmp, 0)
    load_a = section_load("(a)")
    fifo = bench_daemon_sampling(duration, tmp, 20)
    load_fifo = section_load("(a, FIFO)")
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # what a naive program gets (the daemon set 0.5 ms for itself)
    try:
        b = bench_naive_sampling(duration)
    finally:
        sys.setswitchinterval(switch)
    load_b = section_load("(b)")
    header = [
        "method",
        "samples",
        "achieved Hz",
        "rate error ppm",
        "lateness p50/p99/max ms",
        "missing",
        "CPU % of a core",
    ]
    rows = [
        a.row(),
        fifo.row(),
        b.row(),
        floor.row(),
        ["target (idle machine)", "", "360", "≤ 10", "p99 ≤ 0.5", "0", "≤ 3"],
    ]
    print()
    print(table(header, rows))
    print()
    for r in (a, fifo, b):
        print(
            f"- {r.method}: {r.windows} windows classified during the run "
            f"(median inference {fmt(r.inference_ms, '.2f')} ms); least-squares rate {r.fit_hz:.4f} Hz "
            f"({(r.fit_hz / RATE_HZ - 1) * 1e6:+.1f} ppm)"
        )
    print(
        "- lateness: (a) read start − slot deadline on the absolute grid (sampler statistics); "
        "(b) stamp − (t0 + k/fs), the ideal grid from the first sample; floor: wake-up − deadline, "
        "'missing' = wake-ups later than half a period"
    )
    print("- CPU: the whole process (getrusage) over the run, i.e. sampler, worker, emulated chip and bus")
    print(f"- {load_floor}\n- {load_a}\n- {load_fifo}\n- {load_b}")


# -- 2. footprint ------------------------------------------------------------------------------------
LOAD_ONE_INVOKE = r"""
import json, sys
import numpy as np
backend, path = sys.argv[1], sys.argv[2]
if backend == "tensorflow":
    import tensorflow as tf
    Interpreter = tf.lite.Interpreter
elif backend == "ai_edge_litert":
    from ai_edge_litert.interpreter import Interpreter
else:
    from tflite_runtime.interpreter import Interpreter
it = Interpreter(model_path=path)
it.allocate_tensors()
d = it.get_input_details()[0]
x = (np.sin(np.arange(int(np.prod(d["shape"]))) * 0.05)).reshape(d["shape"]).astype(d["dtype"])
it.set_tensor(d["index"], x)
it.invoke()
y = it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1).tolist()
status = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    if v.strip().endswith("kB"):
        status[k] = int(v.split()[0])
print(json.dumps({"ready": True, "VmHWM": status["VmHWM"], "VmRSS": status["VmRSS"], "out": y}), flush=True)
"""


def load_one_invoke(python: str, backend: str, model: Path) -> dict | None:
    """exec → model loaded and invoked once: seconds, peak RSS (VmHWM) and the outputs."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [python, "-c", LOAD_ONE_INVOKE, backend, str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    line = proc.stdout.readline() if proc.stdout else ""
    ready = time.monotonic() - t0
    _, err = proc.communicate(timeout=300)
    try:
        out = json.loads(line)
    except json.JSONDecodeError:
        print(f"  ({backend} failed: {err.strip()[-500:]})")
        return None
    out["seconds"] = ready
    return out


def section_footprint(duration: float, tmp: Path, tf_python: str | None, journald_mode: str) -> None:
    from ecgd.analysis.model import load_model
    from ecgd.config import BUNDLED_MODEL

    print(f"\n## Footprint: `ecgd run` on the demo configuration for {duration:g} s\n")
    print(f"load before: {uptime()}; other jobs: {other_jobs()}")
    journald = Journald(journald_mode)
    try:
        log = tmp / "footprint" / "results.jsonl"
        conf = demo_config(
            tmp / "footprint.yaml",
            output={"console": False, "journal": journald.live, "log_file": str(log)},
        )
        proc, listener, t0 = start_ecgd(conf, tmp)
        rss_mib = hwm_mib = cpu_pct = ready_s = stop_s = None
        fds = None
        rc = None
        err = ""
        try:
            t_ready = listener.wait_for("READY=1", 60)
            if t_ready is None:
                raise RuntimeError("no READY=1 within 60 s")
            ready_s = t_ready - t0
            cpu0, w0 = proc_cpu_s(proc.pid), time.monotonic()
            time.sleep(duration)
            cpu1, w1 = proc_cpu_s(proc.pid), time.monotonic()
            st = proc_status(proc.pid)
            fds = fd_count(proc.pid)
            rss_mib, hwm_mib = st["VmRSS"] / 1024, st["VmHWM"] / 1024
            cpu_pct = 100.0 * (cpu1 - cpu0) / (w1 - w0)
            t_term = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
            stop_s = time.monotonic() - t_term
            rc = proc.returncode
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"  ecgd run failed: {exc}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            listener.close()
        results = 0
        if log.exists():
            results = sum(1 for line in log.read_text().splitlines() if '"kind":"result"' in line)
    finally:
        journald.stop()
    load_run = section_load("ecgd run")

    backend = load_model(BUNDLED_MODEL).backend
    lite = load_one_invoke(sys.executable, backend, BUNDLED_MODEL)
    tf = None
    if tf_python and Path(tf_python).exists():
        tf = load_one_invoke(tf_python, "tensorflow", BUNDLED_MODEL)
    load_tf = section_load("interpreter loads")

    rows = [
        [
            f"`ecgd run` demo (emulated, journald {'on' if journald.live else 'off'}), after {duration:g} s",
            fmt(ready_s, ".3f"),
            f"{fmt(rss_mib, '.1f')} (peak {fmt(hwm_mib, '.1f')})",
            fmt(cpu_pct, ".2f"),
        ],
        [
            f"{backend}: import + load + 1 invoke",
            fmt(lite and lite["seconds"], ".3f"),
            f"peak {fmt(lite and lite['VmHWM'] / 1024, '.1f')}",
            "n/a",
        ],
        [
            "full TensorFlow (tf.lite.Interpreter): import + load + 1 invoke",
            fmt(tf and tf["seconds"], ".3f"),
            f"peak {fmt(tf and tf['VmHWM'] / 1024, '.1f')}",
            "n/a",
        ],
        ["target (`ecgd run`)", "≤ 1.5", "≤ 60", "≤ 3"],
    ]
    print()
    print(table(["what", "start→ready s", "RSS MiB", "CPU % of one core"], rows))
    print()
    print(
        f"- `ecgd run`: start→ready = exec → READY=1 on NOTIFY_SOCKET (WATCHDOG_USEC=10 s as in the unit); "
        f"CPU = (utime+stime) delta / wall from READY=1 to +{duration:g} s; "
        f"{results} result lines; {fmt(fds, 'd')} open fds; SIGTERM → exit {rc} in {fmt(stop_s, '.2f')} s"
        + (f"; stderr: {err.strip()[-300:]!r}" if err and err.strip() else "")
    )
    print(f"- journald: {journald.how}")
    if lite and tf:
        same = np.allclose(lite["out"], tf["out"], atol=1e-5)
        print(f"- {backend} and TensorFlow outputs for the same input: {'identical' if same else 'DIFFER'}")
    elif not tf:
        print(f"- full TensorFlow: n/a (no --tf-python interpreter at {tf_python})")
    print(f"- {load_run}\n- {load_tf}")


# -- 3. offline --------------------------------------------------------------------------------------
def section_offline(record: Path) -> None:
    from ecgd.io.records import read_recording

    print(f"\n## Offline: `ecgd classify {record}`\n")
    if not Path(str(record) + ".hea").exists() and not record.exists():
        print(f"record {record} not found: skipped")
        return
    print(f"load before: {uptime()}; other jobs: {other_jobs()}")
    rec = read_recording(record)
    seconds = rec.mv.size / rec.fs
    rows = []
    for frontend in (False, True):
        for hop in (10, 2):
            cmd = [*ecgd_command(), "classify", str(record), "--hop", str(hop)]
            if frontend:
                cmd += ["--frontend", "pcf8591"]
            t0 = time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wall = time.monotonic() - t0
            windows = sum(1 for line in out.stdout.splitlines() if line.strip())
            shown = "ecgd classify " + " ".join(cmd[cmd.index("classify") + 1 :])
            if out.returncode:
                shown += f" (exit {out.returncode})"
            rows.append([f"`{shown}`", str(windows), f"{wall:.2f}", f"{seconds / wall:.0f}×"])
    rows.append(["target", "", "", "≥ 500×"])
    print(f"\nrecord {rec.name}: {rec.mv.size} samples at {rec.fs:g} Hz = {seconds:.1f} s\n")
    print(table(["command", "windows", "wall s (incl. start-up)", "× real time"], rows))
    print(f"\n- {section_load('offline')}")


# -- main --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds per timed run (default 60)")
    p.add_argument("--record", type=Path, default=DEFAULT_RECORD, help="30-min WFDB record for offline")
    p.add_argument(
        "--tf-python",
        default=str(DEFAULT_TF_PYTHON),
        help="a Python with TensorFlow for the full-TF comparison (n/a when absent)",
    )
    p.add_argument(
        "--journald",
        choices=("auto", "reuse", "off"),
        default="auto",
        help="journald for `ecgd run`: reuse a running one, else start one as a child (root); "
        "reuse: only a running one; off: journal output off",
    )
    p.add_argument("--skip", default="", help="comma-separated sections to skip: sampling,footprint,offline")
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    quiet_environment()

    from ecgd.analysis.model import load_model
    from ecgd.config import BUNDLED_MODEL

    backend = load_model(BUNDLED_MODEL).backend
    print("# ecgd daemon benchmarks\n")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {cpu_model()}; "
        f"Python {platform.python_version()}; TFLite backend {backend}; numpy {np.__version__}"
    )
    print(f"load at start: {uptime()}; other jobs: {other_jobs()}")
    with tempfile.TemporaryDirectory(prefix="ecgd-bench-") as d:
        tmp = Path(d)
        if "sampling" not in skip:
            section_sampling(args.duration, tmp)
        if "footprint" not in skip:
            section_footprint(args.duration, tmp, args.tf_python, args.journald)
        if "offline" not in skip:
            section_offline(args.record)
    print(f"\nload at end: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
