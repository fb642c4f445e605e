"""QRS detection accuracy, EC57 style, of ecgd's detector and of published detectors on the same samples.

Every detector sees the same electrode millivolts of channel 0 of each record: raw, through the
AD8232 + 8-bit PCF8591 model (``ecgd.io.frontend.AnalogFrontEnd``), and through the model with
NSTDB ``ma`` (muscle) or ``bw`` (baseline wander) noise added at 24, 12, 6 and 0 dB SNR the way the
NSTDB records were made: the noise is scaled to the record's QRS amplitude (S = mean of the squared
peak-to-peak QRS amplitudes / 8, N = the noise's mean square) and added in alternating 2-minute
stretches after the first 5 minutes. Records: MIT-BIH DS1 (22, 360 Hz) and all of SVDB (58, 128 Hz).

Scoring (ANSI/AAMI EC57, like PhysioNet's ``bxb``): a detection matches a reference beat (the
``.atr`` beat labels N L R B A a J S V r F e j n E / f Q ?) within 150 ms, one to one, nearest first;
the first 5 minutes are the detectors' learning period and are not scored (``--from-s``), nor are
ventricular flutter/fibrillation episodes (``[`` ... ``]``). Se = TP/(TP+FN), +P = TP/(TP+FP),
F1; timing error = detection - reference of the matched pairs (median and 95th percentile of |error|).
CPU = process time of the detection alone, per hour of signal (ecgd fed in 0.25-s blocks, as in the
daemon; the peers get the whole record at once, as their APIs require).

The peers (wfdb, neurokit2, py-ecg-detectors) live in the benchmark's own venv, never in ecgd's:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install wfdb neurokit2 py-ecg-detectors
    .venv-bench/bin/pip install --no-deps -e .
    nice -n 10 .venv-bench/bin/python bench/qrs_accuracy.py --quick
    nice -n 10 .venv-bench/bin/python bench/qrs_accuracy.py --conditions raw,pcf8591 --jobs 2

Results are cached per (detector, record, condition) in ``--cache`` (ecgd's entries are keyed by
the hash of its source and settings, so they are recomputed when the detector changes).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecgd.analysis import qrs  # noqa: E402
from ecgd.analysis.qrs import QrsDetector, QrsSettings  # noqa: E402
from ecgd.io.frontend import AnalogFrontEnd  # noqa: E402

# fmt: off
DS1 = [
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
]
# fmt: on
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
MATCH_S = 0.15
NOISE_SNRS = (24, 12, 6, 0)
CONDITIONS = ("raw", "pcf8591", *(f"{k}{snr}" for k in ("ma", "bw") for snr in NOISE_SNRS))
QUICK_RECORDS = ["mitdb/108", "mitdb/203", "mitdb/208", "mitdb/119", "svdb/800", "svdb/850"]


# ---------------------------------------------------------------- detectors


def detect_ecgd(mv: np.ndarray, fs: float, settings: QrsSettings | None = None) -> np.ndarray:
    """ecgd's detector as the daemon runs it: 0.25-s blocks, then a flush of its stated delay."""
    det = QrsDetector(fs, settings or QrsSettings())
    hop = round(0.25 * fs)
    out = [det.process(i, mv[i : i + hop]).seq for i in range(0, mv.size, hop)]
    out.append(det.process(mv.size, np.full(det.delay_samples + 1, mv[-1])).seq)
    return np.concatenate(out)


def detect_xqrs(mv: np.ndarray, fs: float) -> np.ndarray:
    from wfdb import processing

    return np.asarray(processing.xqrs_detect(mv, fs, verbose=False), np.int64)


def detect_gqrs(mv: np.ndarray, fs: float) -> np.ndarray:
    from wfdb import processing

    return np.asarray(processing.gqrs_detect(mv, fs, adc_gain=200.0, adc_zero=0), np.int64)


def _neurokit(method: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def detect(mv: np.ndarray, fs: float) -> np.ndarray:
        import neurokit2 as nk

        clean = nk.ecg_clean(mv, sampling_rate=round(fs), method=method)
        _, info = nk.ecg_peaks(clean, sampling_rate=round(fs), method=method)
        return np.asarray(info["ECG_R_Peaks"], np.int64)

    return detect


def _ecgdetectors(name: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def detect(mv: np.ndarray, fs: float) -> np.ndarray:
        from ecgdetectors import Detectors

        return np.asarray(getattr(Detectors(fs), name)(mv), np.int64)

    return detect


DETECTORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "ecgd": detect_ecgd,
    "wfdb-xqrs": detect_xqrs,
    "wfdb-gqrs": detect_gqrs,
    "nk-neurokit": _neurokit("neurokit"),
    "nk-hamilton2002": _neurokit("hamilton2002"),
    "nk-engzeemod2012": _neurokit("engzeemod2012"),
    "ecgdet-pan_tompkins": _ecgdetectors("pan_tompkins_detector"),
    "ecgdet-two_average": _ecgdetectors("two_average_detector"),
}


# ---------------------------------------------------------------- signals


@dataclasses.dataclass
class Record:
    mv: np.ndarray
    fs: float
    ref: np.ndarray  # reference beat samples
    excluded: list[tuple[int, int]]  # VF/flutter episodes, [lo, hi)


def load(data: Path, db: str, name: str) -> Record:
    import wfdb

    rec = wfdb.rdrecord(str(data / db / name), channels=[0])
    ann = wfdb.rdann(str(data / db / name), "atr")
    mv = np.nan_to_num(rec.p_signal[:, 0].astype(np.float64))
    ref = np.array([s for s, c in zip(ann.sample, ann.symbol, strict=True) if c in BEAT_SYMBOLS], np.int64)
    excluded, start = [], None
    for s, c in zip(ann.sample, ann.symbol, strict=True):
        if c == "[":
            start = int(s)
        elif c == "]" and start is not None:
            excluded.append((start, int(s)))
            start = None
    if start is not None:
        excluded.append((start, mv.size))
    return Record(mv, float(rec.fs), ref, excluded)


def noise_signal(data: Path, kind: str, fs: float, n: int) -> np.ndarray:
    """NSTDB noise (channel 0, 360 Hz), resampled to ``fs`` in the frequency domain, ``n`` samples."""
    import wfdb

    noise = wfdb.rdrecord(str(data / "nstdb" / kind), channels=[0]).p_signal[:, 0].astype(np.float64)
    if fs != 360.0:
        m = round(noise.size * fs / 360.0)
        spectrum = np.fft.rfft(noise)[: m // 2 + 1]
        noise = np.fft.irfft(spectrum, m) * (m / noise.size)
    reps = -(-n // noise.size)
    return np.tile(noise, reps)[:n]


def qrs_power(mv: np.ndarray, fs: float, ref: np.ndarray) -> float:
    """NSTDB's signal measure: mean squared peak-to-peak QRS amplitude / 8 (a sinusoid's power)."""
    half = round(0.05 * fs)
    peaks = ref[(ref >= half) & (ref < mv.size - half)]
    segs = mv[peaks[:, None] + np.arange(-half, half + 1)]
    ptp = segs.max(axis=1) - segs.min(axis=1)
    return float(np.mean(ptp**2) / 8.0)


def condition_signal(data: Path, rec: Record, condition: str) -> np.ndarray:
    fe = AnalogFrontEnd()
    if condition == "raw":
        return rec.mv
    if condition == "pcf8591":
        return fe.simulate_mv(rec.mv, rec.fs).astype(np.float64)
    kind, snr = condition[:2], float(condition[2:])
    return fe.simulate_mv(with_noise(data, rec.mv, rec.fs, rec.ref, kind, snr), rec.fs).astype(np.float64)


def with_noise(
    data: Path, mv: np.ndarray, fs: float, ref: np.ndarray, kind: str, snr_db: float
) -> np.ndarray:
    """Electrode millivolts with NSTDB ``kind`` noise added as NSTDB's records were made: scaled to
    ``snr_db`` against the QRS amplitude of the reference beats ``ref``, on in alternating 2-minute
    stretches after the first 5 minutes."""
    noise = noise_signal(data, kind, fs, mv.size)
    noise -= noise.mean()
    scale = math.sqrt(qrs_power(mv, fs, ref) / (np.mean(noise**2) * 10 ** (snr_db / 10)))
    t = np.arange(mv.size) / fs
    on = (t >= 300.0) & (((t - 300.0) // 120.0) % 2 == 0)  # 2 min on, 2 min off, after 5 min
    return mv + scale * noise * on


# ---------------------------------------------------------------- scoring


def match(ref: np.ndarray, det: np.ndarray, tol: int) -> tuple[int, np.ndarray]:
    """One-to-one matches within ``tol``, nearest pairs first: (TP, errors det-ref of the pairs)."""
    if ref.size == 0 or det.size == 0:
        return 0, np.zeros(0, np.int64)
    det = np.sort(det)
    k = np.searchsorted(det, ref)
    pairs = []
    for side in (k - 1, k):
        ok = (side >= 0) & (side < det.size)
        idx = np.flatnonzero(ok)
        dist = np.abs(det[side[idx]] - ref[idx])
        near = dist <= tol
        pairs += zip(dist[near], idx[near], side[idx][near], strict=True)
    pairs.sort()
    used_r, used_d, errs = set(), set(), []
    for _, i, j in pairs:
        if i in used_r or j in used_d:
            continue
        used_r.add(i)
        used_d.add(j)
        errs.append(int(det[j] - ref[i]))
    return len(errs), np.array(errs, np.int64)


def score(rec: Record, det: np.ndarray, from_s: float) -> dict:
    start = round(from_s * rec.fs)
    keep_r = rec.ref >= start
    keep_d = det >= start
    for lo, hi in rec.excluded:
        keep_r &= (rec.ref < lo) | (rec.ref >= hi)
        keep_d &= (det < lo) | (det >= hi)
    ref, det = rec.ref[keep_r], det[keep_d]
    tp, errs = match(ref, det, round(MATCH_S * rec.fs))
    return {
        "ref": int(ref.size),
        "det": int(det.size),
        "tp": tp,
        "err_ms": (errs * 1000.0 / rec.fs).round(2).tolist(),
    }


# ---------------------------------------------------------------- running


def ecgd_key() -> str:
    """The detector's version: its source and default settings, read once (as imported)."""
    return _ECGD_KEY


_ECGD_KEY = hashlib.sha256(Path(qrs.__file__).read_bytes() + repr(QrsSettings()).encode()).hexdigest()[:12]


def prepared(
    data: Path, db: str, name: str, condition: str, signals: Path | None
) -> tuple[Record, np.ndarray]:
    """The record and its conditioned signal, from ``signals`` (a scratch directory) when there."""
    if signals is None:
        rec = load(data, db, name)
        return rec, condition_signal(data, rec, condition)
    signals.mkdir(parents=True, exist_ok=True)
    rec_path = signals / f"{db}-{name}.npz"
    if rec_path.exists():
        z = np.load(rec_path)
        rec = Record(z["mv"], float(z["fs"]), z["ref"], [tuple(e) for e in z["excluded"].tolist()])
    else:
        rec = load(data, db, name)
        tmp = signals / f".{db}-{name}.{os.getpid()}.npz"
        np.savez(
            tmp, mv=rec.mv, fs=rec.fs, ref=rec.ref, excluded=np.array(rec.excluded, np.int64).reshape(-1, 2)
        )
        tmp.replace(rec_path)
    if condition == "raw":
        return rec, rec.mv
    path = signals / f"{db}-{name}-{condition}.npy"
    if path.exists():
        return rec, np.load(path)
    mv = condition_signal(data, rec, condition)
    tmp = signals / f".{db}-{name}-{condition}.{os.getpid()}.npy"
    np.save(tmp, mv)
    tmp.replace(path)
    return rec, mv


def task(args: tuple[str, str, str, str, str, float, str]) -> tuple[str, dict]:
    data, db, name, condition, detector, from_s, signals = args
    rec, mv = prepared(Path(data), db, name, condition, Path(signals) if signals else None)
    t0 = time.process_time()
    try:
        det = DETECTORS[detector](mv, rec.fs)
        error = None
    except Exception as exc:  # a peer that crashes on a record scores 0 there, and says why
        det, error = np.zeros(0, np.int64), f"{type(exc).__name__}: {exc}"
    cpu = time.process_time() - t0
    result = score(rec, det, from_s)
    result.update(cpu_s=cpu, hours=mv.size / rec.fs / 3600.0, error=error)
    return cache_key(db, name, condition, detector, from_s), result


def cache_key(db: str, name: str, condition: str, detector: str, from_s: float) -> str:
    version = ecgd_key() if detector == "ecgd" else "peer"
    return f"{detector}@{version}/{db}/{name}/{condition}/from{from_s:g}"


def records(data: Path, dbs: list[str], names: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for db in dbs:
        recs = DS1 if db == "mitdb" else sorted(p.stem for p in (data / db).glob("*.hea"))
        out += [(db, r) for r in recs if not names or r in names or f"{db}/{r}" in names]
    return out


def gross(results: list[dict]) -> dict:
    ref = sum(r["ref"] for r in results)
    det = sum(r["det"] for r in results)
    tp = sum(r["tp"] for r in results)
    errs = np.abs(np.concatenate([np.asarray(r["err_ms"]) for r in results] or [np.zeros(0)]))
    se = 100.0 * tp / ref if ref else math.nan
    pp = 100.0 * tp / det if det else math.nan
    f1 = 2 * se * pp / (se + pp) if se + pp > 0 else math.nan
    hours = sum(r["hours"] for r in results)
    return {
        "ref": ref,
        "fn": ref - tp,
        "fp": det - tp,
        "se": se,
        "pp": pp,
        "f1": f1,
        "med": float(np.median(errs)) if errs.size else math.nan,
        "p95": float(np.percentile(errs, 95)) if errs.size else math.nan,
        "cpu_s_per_h": sum(r["cpu_s"] for r in results) / hours if hours else math.nan,
        "errors": sum(1 for r in results if r.get("error")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    p.add_argument("--dbs", default="mitdb,svdb", help="comma-separated: mitdb (DS1), svdb")
    p.add_argument("--records", default="", help="comma-separated record names (default: all)")
    p.add_argument("--conditions", default="raw,pcf8591", help=f"comma-separated of {','.join(CONDITIONS)}")
    p.add_argument(
        "--detectors", default=",".join(DETECTORS), help=f"comma-separated of {','.join(DETECTORS)}"
    )
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--from-s", type=float, default=300.0, help="score from this time (EC57: 5-min learning)")
    p.add_argument("--per-record", default="ecgd", help="detector(s) whose per-record table is printed")
    p.add_argument("--cache", type=Path, default=REPO / "bench" / ".qrs_accuracy_cache.json")
    p.add_argument("--signals", type=Path, help="scratch directory caching the conditioned signals (.npy)")
    p.add_argument("--report-only", action="store_true", help="print the tables from the cache, run nothing")
    p.add_argument("--quick", action="store_true", help="6 records, ecgd + 2 peers, raw and 8-bit")
    a = p.parse_args()
    dbs = a.dbs.split(",")
    names = [r for r in a.records.split(",") if r]
    detectors = a.detectors.split(",")
    conditions = a.conditions.split(",")
    if a.quick:
        names = names or QUICK_RECORDS
        if a.detectors == p.get_default("detectors"):
            detectors = ["ecgd", "wfdb-xqrs", "nk-neurokit"]
    bad = [d for d in detectors if d not in DETECTORS] + [c for c in conditions if c not in CONDITIONS]
    if bad:
        p.error(f"unknown detector/condition: {', '.join(bad)}")
    recs = records(a.data, dbs, names)
    cache = json.loads(a.cache.read_text()) if a.cache.exists() else {}
    todo = [
        (str(a.data), db, name, cond, det, a.from_s, str(a.signals or ""))
        for cond in conditions
        for det in detectors
        for db, name in recs
        if cache_key(db, name, cond, det, a.from_s) not in cache and not a.report_only
    ]
    print(
        f"{len(todo)} runs to do (the rest is cached)",
        file=sys.stderr,
    )
    done = 0
    with multiprocessing.Pool(a.jobs) if a.jobs > 1 else _Serial() as pool:
        for key, result in pool.imap_unordered(task, todo):
            cache[key] = result
            done += 1
            if done % 10 == 0 or done == len(todo):
                a.cache.write_text(json.dumps(cache))
                print(f"  {done}/{len(todo)}", file=sys.stderr)
    a.cache.write_text(json.dumps(cache))
    report(cache, recs, conditions, detectors, a.from_s, a.per_record.split(","))


class _Serial:
    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, fn, items):
        return map(fn, items)


def report(cache: dict, recs, conditions, detectors, from_s: float, per_record: list[str]) -> None:
    import platform

    print(
        f"\nQRS detection, EC57 matching ±{MATCH_S * 1000:.0f} ms, scored from {from_s:g} s, "
        f"{platform.machine()} {platform.python_version()}, {os.cpu_count()} cores\n"
    )
    print(
        "| condition | db | detector | beats | Se % | +P % | F1 % | FN | FP | error med / p95 ms | CPU s/h |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cond in conditions:
        for db in sorted({db for db, _ in recs}):
            rows = []
            for det in detectors:
                keys = [cache_key(d, n, cond, det, from_s) for d, n in recs if d == db]
                res = [cache[k] for k in keys if k in cache]
                if res:
                    rows.append((det, gross(res), len(res), len(keys)))
            rows.sort(key=lambda r: -r[1]["f1"] if not math.isnan(r[1]["f1"]) else 0)
            for det, g, scored, wanted in rows:
                name = f"**{det}**" if det == "ecgd" else det
                if scored < wanted:
                    name += f" ({scored} of {wanted} records)"
                crashed = f" ({g['errors']} crashed)" if g["errors"] else ""
                print(
                    f"| {cond} | {db} | {name}{crashed} | {g['ref']} | {g['se']:.2f} | {g['pp']:.2f} | "
                    f"{g['f1']:.2f} | {g['fn']} | {g['fp']} | {g['med']:.1f} / {g['p95']:.1f} | "
                    f"{g['cpu_s_per_h']:.1f} |"
                )
    for det in per_record:
        if det not in detectors:
            continue
        print(f"\nPer record, {det} (FN/FP):\n")
        print("| record | " + " | ".join(conditions) + " |")
        print("|---|" + "---:|" * len(conditions))
        for db, name in recs:
            cells = []
            for cond in conditions:
                r = cache.get(cache_key(db, name, cond, det, from_s))
                cells.append(f"{r['ref'] - r['tp']}/{r['det'] - r['tp']}" if r else "-")
            print(f"| {db}/{name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
