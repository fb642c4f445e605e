"""Beat and window feature tables for the 2.x (beat-aware) model, from 80 patients and 84 RR series.

    .venv/bin/python -m training.beat_data --data /work/shared/data --out runs/f60

Signals: MIT-BIH DS1 (22 records, MLII, 360 Hz) and the MIT-BIH Supraventricular Arrhythmia Database
(58 records, ECG1, 128 Hz, linearly resampled to 360 Hz first: the AD8232's 40 Hz low-pass follows, so
nothing above 64 Hz is needed), each passed through the simulated AD8232 + 8-bit PCF8591 chain (and once
clean), then through :class:`ecgd.analysis.beat_features.BeatAnalyzer` window by window (10 s,
non-overlapping, from sample 0): the daemon's own code and order, with the reference beat positions;
each window keeps its label and start (its AF features are made by ``train_beats.window_rr`` from the
beat rows, over the span the run asks for). RR series: the Long-Term AF Database's 84 beat-annotation
files (128 Hz), cut into 10-s windows, the RR of the ``--af-context`` seconds ending with each through
:func:`ecgd.analysis.rhythm.rr_features`. Deterministic (no randomness).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgd import config as cfg
from ecgd.analysis.beat_features import BEAT_FEATURES, BeatAnalyzer, BeatFeatures, RelearnSettings
from ecgd.analysis.rhythm import RR_FEATURES, rr_between_kept, rr_features
from ecgd.io.frontend import AnalogFrontEnd
from ecgd.io.records import read_recording
from training.data import DS1, mlii_channel
from training.labels import (
    AF_RHYTHMS,
    BEAT_SYMBOLS,
    LABELS,
    N_BEATS,
    S_BEATS,
    V_BEATS,
    Annotations,
    from_lists,
    label_for_window,
    read_annotations,
)

FS = 360
WINDOW_S = 10.0
BEAT_CLASSES: tuple[str, ...] = ("N", "S", "V")
AF_CONTEXT_S = 60.0  # the default span of RR series per AF decision (training.train_beats --af-context)
TABLES_INFO = "tables.json"  # beside the tables: the settings they were made with


def svdb_records(data_dir: str | Path) -> tuple[str, ...]:
    return tuple((Path(data_dir) / "svdb" / "RECORDS").read_text().split())


def signal_records(data_dir: str | Path) -> tuple[str, ...]:
    """The 80 patients with signals: ``mitdb/NNN`` (DS1) and ``svdb/NNN``."""
    return tuple(f"mitdb/{n}" for n in DS1) + tuple(f"svdb/{n}" for n in svdb_records(data_dir))


def beat_class(symbols: np.ndarray) -> np.ndarray:
    """0 N, 1 S, 2 V, -1 for beats no class covers (F, Q, paced, ...): excluded from training and scoring."""
    out = np.full(len(symbols), -1, dtype=np.int8)
    for k, group in enumerate((N_BEATS, S_BEATS, V_BEATS)):
        out[np.isin(symbols, list(group))] = k
    return out


@dataclass(frozen=True)
class SignalRecord:
    rid: str  # "mitdb/101"
    mv: np.ndarray  # at 360 Hz
    ann: Annotations  # samples at 360 Hz


def load_signal_record(data_dir: str | Path, rid: str) -> SignalRecord:
    db, name = rid.split("/")
    path = Path(data_dir) / db / name
    if db == "mitdb":
        rec = read_recording(path, channel=mlii_channel(path))
        return SignalRecord(rid, rec.mv.astype(np.float64), read_annotations(path))
    rec = read_recording(path, channel=0)
    import wfdb

    a = wfdb.rdann(str(path), "atr")
    mv, samples = resample(rec.mv, rec.fs, np.asarray(a.sample), FS)
    return SignalRecord(rid, mv, from_lists(samples, a.symbol, a.aux_note))


def resample(mv: np.ndarray, fs: float, samples: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """A signal linearly resampled to ``rate_hz`` and annotation sample indices moved with it (SVDB's
    128 Hz to the device's 360 Hz: the AD8232's 40 Hz low-pass follows, so nothing above 64 Hz is
    needed). One place, so the alarm benchmark replays SVDB as these tables were made."""
    ratio = rate_hz / fs
    n_out = int(np.floor((mv.size - 1) * ratio)) + 1
    out = np.interp(np.arange(n_out) / rate_hz, np.arange(mv.size) / fs, mv)
    return out, np.round(np.asarray(samples) * ratio).astype(np.int64)


def analysed_windows(
    rec: SignalRecord, frontend: bool, relearn: RelearnSettings | None = None, waveforms: bool = False
) -> Iterator[tuple[int, BeatFeatures, np.ndarray]]:
    """The record through the daemon's ``BeatAnalyzer`` window by window (10 s, non-overlapping, from
    sample 0) with the reference beat positions: each window's start, its features and, per row, the
    index of the reference beat it is (the analyser moves a position by ≤ REFINE_S)."""
    mv = AnalogFrontEnd().simulate_mv(rec.mv, FS).astype(np.float64) if frontend else rec.mv
    n = round(WINDOW_S * FS)
    analyzer = BeatAnalyzer(FS, relearn, waveforms)
    ref = rec.ann.beat_samples
    for start in range(0, mv.size - n + 1, n):
        lo, hi = np.searchsorted(ref, [start, start + n])
        f = analyzer.analyse(start, mv[start : start + n], ref[lo:hi])
        j = np.clip(np.searchsorted(ref, f.seq), 1, ref.size - 1)
        yield start, f, np.where(np.abs(ref[j - 1] - f.seq) <= np.abs(ref[j] - f.seq), j - 1, j)


def record_features(
    rec: SignalRecord, frontend: bool, relearn: RelearnSettings | None = None, waveforms: bool = False
) -> dict[str, np.ndarray]:
    """Beat rows (features, class, position, window, P-wave stretch; with ``waveforms`` also
    ``beat_wave``, :attr:`BeatFeatures.waveform`) and window rows (label, start) of one record through
    the daemon's beat stage (with the daemon's default ``relearn`` settings unless given)."""
    n = round(WINDOW_S * FS)
    bx, by, bseq, bwin, blearn, bp, bw = [], [], [], [], [], [], []
    wy, wstart = [], []
    ann = rec.ann
    for k, (start, f, near) in enumerate(analysed_windows(rec, frontend, relearn, waveforms)):
        bx.append(f.x)
        by.append(beat_class(ann.beat_symbols[near]))
        bseq.append(ann.beat_samples[near])
        bwin.append(np.full(f.seq.size, k, dtype=np.int32))
        blearn.append(np.full(f.seq.size, f.learning))
        bp.append(f.p_wave)
        if f.waveform is not None:
            bw.append(f.waveform)
        lab = label_for_window(ann, start, start + n)
        wy.append(-1 if lab is None else LABELS.index(lab))
        wstart.append(start)
    waves = {"beat_wave": np.concatenate(bw).astype(np.float32)} if waveforms else {}
    return {
        **waves,
        "beat_x": np.concatenate(bx).astype(np.float32),
        "beat_y": np.concatenate(by),
        "beat_seq": np.concatenate(bseq).astype(np.int64),
        "beat_win": np.concatenate(bwin),
        "beat_learning": np.concatenate(blearn),
        "beat_p_wave": np.concatenate(bp).astype(np.float32),
        "win_y": np.array(wy, dtype=np.int8),
        "win_start": np.array(wstart, dtype=np.int64),
    }


def ltafdb_rr_windows(
    data_dir: str | Path, name: str, max_windows: int = 1500, context_s: float = AF_CONTEXT_S
) -> dict[str, np.ndarray]:
    """10-s windows of one LTAFDB record's annotated beat times: RR features of the ``context_s`` ending
    with each window (as the daemon decides AF) and AF (the rhythm at the window's centre).

    Windows are every 10 s; when there are more than ``max_windows`` an evenly spaced subset is kept
    (deterministic), so each patient weighs about the same.
    """
    import wfdb

    path = Path(data_dir) / "ltafdb" / name
    hdr = wfdb.rdheader(str(path))
    a = wfdb.rdann(str(path), "atr")
    keep = np.asarray(a.sample) < hdr.sig_len  # record 30: a comment past the end
    ann = from_lists(np.asarray(a.sample)[keep], np.asarray(a.symbol)[keep], np.asarray(a.aux_note)[keep])
    fs = float(a.fs or hdr.fs)
    n = round(WINDOW_S * fs)
    is_beat = np.isin(ann.beat_symbols, list(BEAT_SYMBOLS))
    beats = ann.beat_samples[is_beat]
    is_v = np.isin(ann.beat_symbols[is_beat], list(V_BEATS))
    starts = np.arange(0, hdr.sig_len - n + 1, n)
    if starts.size > max_windows:
        starts = starts[np.linspace(0, starts.size - 1, max_windows).round().astype(int)]
    xs, ys, oks, xv, okv = [], [], [], [], []
    zero = np.zeros(len(RR_FEATURES), dtype=np.float32)
    for s in starts:
        lo, hi = np.searchsorted(beats, [s + n - round(context_s * fs), s + n])
        b = beats[max(lo - 1, 0) : hi]  # the beat before the span gives the first interval
        r = rr_features(np.diff(b) / fs)
        xs.append(r if r is not None else zero)
        oks.append(r is not None)
        rv = rr_features(rr_between_kept(b, is_v[max(lo - 1, 0) : hi], fs))  # V beats left out
        xv.append(rv if rv is not None else zero)
        okv.append(rv is not None)
        ys.append(int(ann.rhythm_at(int(s + n // 2)) in AF_RHYTHMS))
    return {
        "x": np.array(xs, dtype=np.float32),
        "ok": np.array(oks),
        "x_nov": np.array(xv, dtype=np.float32),
        "ok_nov": np.array(okv),
        "af": np.array(ys, dtype=np.int8),
        "context_s": np.float64(context_s),
    }


def write_tables_info(out: Path, relearn: RelearnSettings, argv: list[str]) -> None:
    """``tables.json``: the relearn settings the beat rows were made with, so the model trained on them
    records those (not the daemon's defaults) in its metadata."""
    info = {"relearn": dataclasses.asdict(relearn), "command": ["python", "-m", "training.beat_data", *argv]}
    (out / TABLES_INFO).write_text(json.dumps(info, indent=1) + "\n")


def tables_relearn(features: Path) -> dict:
    """The relearn settings the tables in ``features`` were made with (from ``tables.json``)."""
    path = Path(features) / TABLES_INFO
    try:
        return dict(json.loads(path.read_text())["relearn"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"{path}: cannot read the tables' relearn settings ({exc}); the tables were made by an older "
            "training.beat_data: make them again"
        ) from None


def relearn_settings(pairs: list[str]) -> RelearnSettings:
    """``RelearnSettings`` with ``KEY=VALUE`` overrides, read by the daemon's config loader (the same
    types, ranges and messages as a ``relearn:`` section of the YAML)."""
    lines = ["relearn:"]
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--relearn {pair!r}: expected KEY=VALUE")
        lines.append(f"  {key}: {value}")
    try:
        return cfg.parse("\n".join(lines) + "\n", "--relearn").relearn
    except cfg.ConfigError as exc:
        raise SystemExit(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.beat_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--out", default="runs/features")
    p.add_argument("--records", help="comma-separated ids (default: all 80, e.g. mitdb/101,svdb/800)")
    p.add_argument("--no-ltafdb", action="store_true")
    p.add_argument("--no-signals", action="store_true", help="only the LTAFDB RR tables")
    p.add_argument("--ltafdb", help="comma-separated LTAFDB records (default: all 84)")
    p.add_argument("--ltafdb-windows", type=int, default=1500, help="at most this many windows per record")
    p.add_argument("--af-context", type=float, default=AF_CONTEXT_S, help="seconds of RR per AF decision")
    p.add_argument("--frontends", default="pcf8591", help="pcf8591 and/or clean, comma-separated")
    p.add_argument(
        "--waveforms",
        action="store_true",
        help="also each beat's waveform and its difference from the template (training.screen --waveforms)",
    )
    p.add_argument(
        "--relearn",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a relearn setting other than the daemon's default, e.g. former_templates=0 (repeatable)",
    )
    args = p.parse_args(argv)
    relearn = relearn_settings(args.relearn)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_tables_info(out, relearn, sys.argv[1:] if argv is None else argv)
    rids = args.records.split(",") if args.records else signal_records(args.data)
    if args.no_signals:
        rids = []
    t0 = time.monotonic()
    for rid in rids:
        rec = load_signal_record(args.data, rid)
        for tag in args.frontends.split(","):
            f = record_features(rec, tag == "pcf8591", relearn, args.waveforms)
            np.savez_compressed(out / f"{rid.replace('/', '_')}_{tag}.npz", **f)
        print(f"[{time.monotonic() - t0:6.0f} s] {rid}: {f['beat_y'].size} beats", flush=True)
    if not args.no_ltafdb:
        names = (
            args.ltafdb.split(",")
            if args.ltafdb
            else (Path(args.data) / "ltafdb" / "RECORDS").read_text().split()
        )
        for name in names:
            f = ltafdb_rr_windows(args.data, name, args.ltafdb_windows, args.af_context)
            np.savez_compressed(out / f"ltafdb_{name}.npz", **f)
        print(f"[{time.monotonic() - t0:6.0f} s] ltafdb: {len(names)} records", flush=True)
    (out / "features.txt").write_text(
        "beat: " + " ".join(BEAT_FEATURES) + "\nwindow: " + " ".join(RR_FEATURES) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
