"""Benchmark of full disclosure: what recording costs the monitor, and what it costs the disk.

1. The real daemon (emulated PCF8591, demo settings, beats and classification running) for
   ``--duration`` s with recording off, then on (flush 1 s, fsync): process CPU, the recorder
   thread's own CPU, and the sampler's lateness and missing slots. Runs alternate off/on ``--rounds``
   times so that a change of load on this shared machine hits both alike.
2. Bytes per day, extrapolated from what the runs with recording on wrote (signal, headers,
   annotations), beside the format's exact figure (360 Hz x 1 byte x 86400 s).
3. Time to render a 10-s strip from the recordings (``ecgd strip`` without the process start-up),
   and to export one hour as WFDB, EDF+ and CSV (from a synthetic hour written by the recorder).

Measurements, not tests: a markdown table is printed with the machine's load.

    nice -n 10 .venv/bin/python bench/recording.py [--duration 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_bench import cpu_seconds, demo_config, other_jobs, uptime

RATE = 360.0


def count_thread_cpu(recorder) -> list[float]:
    """Wrap the recorder's flush so that it adds its own thread's CPU seconds to the returned cell."""
    cell = [0.0]
    step = recorder._step

    def timed(**kw):
        c0 = time.thread_time()
        try:
            step(**kw)
        finally:
            cell[0] += time.thread_time() - c0

    recorder._step = timed
    return cell


def run_daemon(tmp: Path, duration: float, record: bool, i: int) -> dict:
    from ecgd import config as cfg
    from ecgd.acquisition.clock import RealClock
    from ecgd.daemon import Daemon

    rec_dir = tmp / f"rec-{i}"
    conf = demo_config(
        tmp / f"c-{i}.yaml",
        output={"console": False, "journal": False, "log_file": str(tmp / f"r-{i}.jsonl")},
        recording={"directory": str(rec_dir) if record else None},
    )
    daemon = Daemon(cfg.load(conf), clock=RealClock())
    daemon.start()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    rec_cpu = count_thread_cpu(daemon.recorder) if daemon.recorder is not None else [0.0]
    daemon.run(duration_s=duration)
    wall = time.monotonic() - t0
    st = daemon.sampler.stats()
    files = {}
    if record:
        for p in rec_dir.rglob("*"):
            if p.is_file():
                kind = p.suffix.lstrip(".")
                files[kind] = files.get(kind, 0) + p.stat().st_size
    return {
        "record": record,
        "cpu_pct": (cpu_seconds() - cpu0) / wall * 100,
        "recorder_cpu_pct": rec_cpu[0] / wall * 100,
        "p50": st.lateness_p50_ms,
        "p99": st.lateness_p99_ms,
        "max": st.lateness_max_ms,
        "missing": st.missing,
        "slots": st.taken + st.missing,
        "seconds": wall,
        "files": files,
    }


def bench_tools(tmp: Path) -> dict:
    """One synthetic hour through the recorder, then a strip and the three exports of it."""
    import argparse as ap

    from ecgd.acquisition.ring import SampleRing
    from ecgd.acquisition.sampler import SampleGrid
    from ecgd.io.export import write_csv, write_edf, write_wfdb
    from ecgd.io.frontend import AnalogFrontEnd
    from ecgd.io.recordings import iso, read_span
    from ecgd.io.strip import run_strip
    from ecgd.outputs.recording import Recorder, RecordingSettings

    n = int(3600 * RATE)
    t = np.arange(n) / RATE
    codes = (128 + 60 * np.exp(-(((t % 0.8) - 0.4) ** 2) / 0.0005)).astype(np.int16)  # 75/min spikes
    ring = SampleRing(n + 10)
    ring._counts[:n], ring._valid[:n] = codes, True  # a filled ring: the recorder's input, no sampler
    ring.next_seq = ring.taken = n
    wall0 = 1_767_258_000 * 10**9
    out = {}
    rec = Recorder(
        RecordingSettings(directory=str(tmp / "hour"), flush_seconds=0.1, fsync=True),
        AnalogFrontEnd(),
        lambda *a: None,
        wall_now=lambda: wall0,
    )
    for k in range(int(0.4 * RATE), n, int(0.8 * RATE)):
        rec.annotate(k, "Q")
    c0 = time.process_time()
    t0 = time.perf_counter()
    rec.start(ring, SampleGrid(0, RATE, wall0))
    while rec.next_seq < n:
        time.sleep(0.01)
    rec.stop()
    out["write_hour_s"] = time.perf_counter() - t0
    out["write_hour_cpu_s"] = time.process_time() - c0
    args = ap.Namespace(
        record=None,
        at=iso(wall0 + 1800 * 10**9),
        at_sample=None,
        window_index=None,
        seconds=10.0,
        recordings=tmp / "hour",
        log=None,
        annotator=None,
        config=None,
        output=tmp / "strip.png",
    )
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert run_strip(args) == 0
        times.append(time.perf_counter() - t0)
    out["strip_s"] = float(np.median(times))
    out["strip_bytes"] = (tmp / "strip.png").stat().st_size
    span_t0 = time.perf_counter()
    span = read_span(tmp / "hour", wall0, wall0 + 3600 * 10**9)
    out["read_hour_s"] = time.perf_counter() - span_t0
    for name, fn, path in (
        ("wfdb", write_wfdb, tmp / "xw"),
        ("edf", write_edf, tmp / "xe.edf"),
        ("csv", write_csv, tmp / "xc.csv"),
    ):
        t0 = time.perf_counter()
        written = fn(span, path)
        out[f"export_{name}_s"] = time.perf_counter() - t0
        out[f"export_{name}_bytes"] = sum(p.stat().st_size for p in tmp.glob(Path(written).stem + ".*"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(f"# Recording benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(f"load before: {uptime()}; other jobs: {other_jobs()}\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        runs = []
        for r in range(args.rounds):
            for record in (False, True):
                runs.append(run_daemon(tmp, args.duration, record, len(runs)))
                print(f"round {r + 1}: recording {'on' if record else 'off'} done", file=sys.stderr)
        print(f"## The daemon, {args.duration:g} s per run, {args.rounds} runs each, alternating\n")
        print(
            "| recording | CPU % (process) | recorder thread CPU % | lateness p50 / p99 / max ms | missing |"
        )
        print("|---|---|---|---|---|")
        for record in (False, True):
            rs = [x for x in runs if x["record"] == record]
            cpu = " / ".join(f"{x['cpu_pct']:.1f}" for x in rs)
            rcpu = " / ".join(f"{x['recorder_cpu_pct']:.2f}" for x in rs) if record else "-"
            lat = " ; ".join(f"{x['p50']:.3f} / {x['p99']:.3f} / {x['max']:.1f}" for x in rs)
            miss = " / ".join(f"{x['missing']} of {x['slots']}" for x in rs)
            print(f"| {'on' if record else 'off'} | {cpu} | {rcpu} | {lat} | {miss} |")
        on = [x for x in runs if x["record"]]
        secs = sum(x["slots"] for x in on) / RATE
        per_day = {k: sum(x["files"].get(k, 0) for x in on) / secs * 86400 for k in ("dat", "ecgd")}
        hea = [x["files"].get("hea", 0) / 3 for x in on]  # segment + day + layout header, ~constant size
        per_day["hea"] = 26 * float(np.mean(hea))  # 24 hourly segments + a day and a layout header
        print("\n## Bytes per day (extrapolated from the runs above)\n")
        print("| file | MB/day | note |")
        print("|---|---|---|")
        print(f"| .dat (signal) | {per_day['dat'] / 1e6:.2f} | format 80: exactly 360 x 86400 = 31.10 MB |")
        print(f"| .ecgd (annotations) | {per_day['ecgd'] / 1e6:.3f} | beats, gaps, label changes, events |")
        print(f"| .hea (headers) | {per_day['hea'] / 1e6:.4f} | 26 a day, rewritten in place each flush |")
        tools = bench_tools(tmp)
        print("\n## Tools on one recorded hour (synthetic signal, 75 beats/min annotated)\n")
        print("| step | time | size |")
        print("|---|---|---|")
        print(f"| recorder writes 1 h already in the ring (fsync per 0.1 s) | {tools['write_hour_s']:.2f} s "
              f"({tools['write_hour_cpu_s']:.2f} s CPU) | |")  # fmt: skip
        print(f"| read the hour back (read_span) | {tools['read_hour_s']:.3f} s | |")
        print(f"| `ecgd strip` 10 s (median of 5, in-process) | {tools['strip_s']:.2f} s | "
              f"{tools['strip_bytes'] / 1024:.0f} KiB PNG |")  # fmt: skip
        for k in ("wfdb", "edf", "csv"):
            size = tools[f"export_{k}_bytes"] / 1e6
            print(f"| export 1 h as {k} | {tools[f'export_{k}_s']:.2f} s | {size:.2f} MB |")
    print(f"\nload after: {uptime()}")


if __name__ == "__main__":
    main()
