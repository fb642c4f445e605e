"""How often the quality gate calls real ECG unreadable, and how often it catches what it should.

False alarms hide rhythms from the monitor; misses let the model classify garbage. This runs the gate
(``ecgd.analysis.quality.assess_window``, default settings) over every non-overlapping 10-s window of the
MIT-BIH DS1 records, through the AD8232 + 8-bit PCF8591 front end and without it, then over noise-only
windows (NSTDB ``bw`` and ``ma``), simulated lead faults, and DS1 with NSTDB noise added at a few
signal-to-noise ratios (for information: where "gross" starts). Prints markdown tables.

    .venv/bin/python bench/quality_false_alarms.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ecgd.analysis.quality import (
    FAULT_KINDS,
    QualitySettings,
    adc_rails_mv,
    assess_window,
    simulate_lead_fault,
)
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording

# fmt: off
DS1 = [
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
]
# fmt: on
WINDOW_S = 10.0
FAULT_EVERY = 10  # one simulated fault window per 10 windows of each record (18 per record and kind)
MIX_EVERY = 3  # ECG + noise mixtures on every third window, to keep the run short
MIX_SNR_DB = (6.0, 0.0, -6.0)


class Tally:
    """Windows assessed, windows flagged, reasons by kind, and time per assessment."""

    def __init__(self) -> None:
        self.windows = 0
        self.flagged = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.seconds: list[float] = []

    def add(self, reason: str | None, seconds: float) -> None:
        self.windows += 1
        self.seconds.append(seconds)
        if reason:
            self.flagged += 1
            self.kinds[reason.split(":")[0]] += 1

    def merge(self, other: Tally) -> None:
        self.windows += other.windows
        self.flagged += other.flagged
        self.kinds.update(other.kinds)
        self.seconds += other.seconds

    @property
    def rate(self) -> str:
        return f"{100.0 * self.flagged / self.windows:.2f} %" if self.windows else "-"

    @property
    def reasons(self) -> str:
        return ", ".join(f"{kind} {n}" for kind, n in self.kinds.most_common()) or "-"


def windows(mv: np.ndarray, n: int, every: int = 1) -> Iterable[np.ndarray]:
    """Non-overlapping windows of ``n`` samples (a trailing partial window is dropped)."""
    for i in range(0, mv.size // n, every):
        yield mv[i * n : (i + 1) * n]


def assess_all(
    mvs: Iterable[np.ndarray], fs: float, rails: tuple[float, float] | None, settings: QualitySettings
) -> Tally:
    tally = Tally()
    for w in mvs:
        x = np.asarray(w, dtype=np.float32)
        t0 = time.perf_counter()
        reason = assess_window(x, fs, rails, settings)
        tally.add(reason, time.perf_counter() - t0)
    return tally


def main(argv: list[str] | None = None) -> None:
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = repo / ".." / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default_data, help="folder with mitdb/ and nstdb/")
    parser.add_argument("--channel", type=int, default=0, help="MIT-BIH channel (0: mostly MLII)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated lead faults")
    args = parser.parse_args(argv)

    fe = AnalogFrontEnd()
    rails = adc_rails_mv(fe)
    settings = QualitySettings()
    rng = np.random.default_rng(args.seed)
    mitdb, nstdb = args.data / "mitdb", args.data / "nstdb"

    noise = {name: [read_recording(nstdb / name, ch) for ch in (0, 1)] for name in ("bw", "ma")}
    fs = noise["ma"][0].fs
    n = round(WINDOW_S * fs)

    ds1_fe, ds1_raw = Tally(), Tally()
    faults = {kind: Tally() for kind in FAULT_KINDS}
    mixes = {(name, snr): Tally() for name in noise for snr in MIX_SNR_DB}
    print(f"## DS1 false alarms (channel {args.channel}, {WINDOW_S:g}-s windows, default settings)\n")
    print("| record | lead | windows | flagged: front end | flagged: none | reasons: front end / none |")
    print("|---|---|---:|---:|---:|---|")
    for name in DS1:
        rec = read_recording(mitdb / name, args.channel)
        assert rec.fs == fs, f"{name}: {rec.fs} Hz, expected {fs} Hz"
        device = fe.simulate_mv(rec.mv, rec.fs)
        t_fe = assess_all(windows(device, n), fs, rails, settings)
        t_raw = assess_all(windows(rec.mv, n), fs, None, settings)
        ds1_fe.merge(t_fe)
        ds1_raw.merge(t_raw)
        print(
            f"| {name} | {rec.channel_name} | {t_fe.windows} | {t_fe.flagged} ({t_fe.rate}) "
            f"| {t_raw.flagged} ({t_raw.rate}) | {t_fe.reasons} / {t_raw.reasons} |"
        )
        for kind in FAULT_KINDS:
            faulty = (simulate_lead_fault(w, fs, kind, fe, rng) for w in windows(rec.mv, n, FAULT_EVERY))
            faults[kind].merge(assess_all(faulty, fs, rails, settings))
        ecg = rec.mv - rec.mv.mean()
        for (noise_name, snr), tally in mixes.items():
            nz = noise[noise_name][0].mv[: ecg.size]
            nz = nz - nz.mean()
            gain = np.sqrt(ecg.var() / nz.var() / 10 ** (snr / 10))
            mixed = fe.simulate_mv(ecg + gain * nz, fs)
            tally.merge(assess_all(windows(mixed, n, MIX_EVERY), fs, rails, settings))
    print(
        f"| **all** | | {ds1_fe.windows} | **{ds1_fe.flagged} ({ds1_fe.rate})** "
        f"| **{ds1_raw.flagged} ({ds1_raw.rate})** | {ds1_fe.reasons} / {ds1_raw.reasons} |"
    )

    print("\n## Detection of unreadable windows\n")
    print("| input | path | windows | flagged | reasons |")
    print("|---|---|---:|---:|---|")
    for name, recs in noise.items():
        for ch, rec in enumerate(recs):
            for path, mv, r in (("front end", fe.simulate_mv(rec.mv, fs), rails), ("none", rec.mv, None)):
                t = assess_all(windows(mv, n), fs, r, settings)
                label = f"NSTDB `{name}` noise only, ch {ch}"
                print(f"| {label} | {path} | {t.windows} | {t.rate} | {t.reasons} |")
    for kind, t in faults.items():
        print(f"| simulated lead fault `{kind}` on DS1 | front end | {t.windows} | {t.rate} | {t.reasons} |")

    print("\n## DS1 + NSTDB noise (ch 0) through the front end, for information\n")
    print("SNR = variance of the record / variance of the added noise, whole record.\n")
    print("| noise | SNR dB | windows | flagged | reasons |")
    print("|---|---:|---:|---:|---|")
    for (noise_name, snr), t in mixes.items():
        print(f"| `{noise_name}` | {snr:g} | {t.windows} | {t.rate} | {t.reasons} |")

    seconds = np.array(ds1_fe.seconds + ds1_raw.seconds) * 1e3
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"\nTime per {n}-sample window over the DS1 runs: median {np.median(seconds):.2f} ms, "
        f"p99 {np.percentile(seconds, 99):.2f} ms ({platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load}; CPython {platform.python_version()}, numpy {np.__version__})."
    )


if __name__ == "__main__":
    main()
