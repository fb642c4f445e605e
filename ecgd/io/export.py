"""``ecgd export``: a continuous stretch of the recordings as one WFDB record, EDF+ or CSV.

WFDB keeps the ADC's codes and the invalid value where no sample was taken, plus the annotations
(``PATH.ecgd``). EDF+ (pyedflib, the ``[edf]`` extra) stores the 8-bit codes one to one as digital
values 0..255 with the physical range of the front end, so no value is rescaled; EDF has no
"missing" value, so a slot without a sample is the digital value -1 (just below the ADC's range,
outside anything it can produce) and each gap is also an EDF+ annotation, as are ecgd's own
annotations. CSV: ``time`` (UTC), ``mv`` (empty where no sample) and ``valid`` (1/0).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ecgd.io.recordings import ANNOTATOR, Span, iso, parse_time, read_span
from ecgd.io.wfdb_write import checksum, single_header

EX_OK, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE = 0, 65, 66, 69
EDF_GAP = -1  # digital value of a slot without a sample in EDF (the ADC's codes are 0..255)
EDF_GAP_NOTE_S = 0.05  # gaps at least this long are also EDF+ annotations (as in the recordings)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", required=True, help="UTC start: 2026-12-01T20:46:05 or @EPOCH")
    p.add_argument("--to", dest="stop", required=True, help="UTC end (exclusive)")
    p.add_argument("--format", choices=("wfdb", "edf", "csv"), default="wfdb")
    p.add_argument("--recordings", type=Path, help="recordings directory (default: recording.directory)")
    p.add_argument("--config", type=Path, help="config to take the recordings directory from")
    p.add_argument("-o", "--output", type=Path, required=True, help="record path (wfdb) or file (edf, csv)")


def run_export(args: argparse.Namespace) -> int:
    from ecgd import config as cfg
    from ecgd.io.records import RecordError, RecordNotFound

    try:
        start, stop = parse_time(args.start), parse_time(args.stop)
        if stop <= start:
            raise ValueError("--to must be after --from")
        recordings = args.recordings
        if recordings is None:
            path = args.config or cfg.DEFAULT_CONFIG_PATH
            recordings = cfg.load(path).recording_directory
        if recordings is None:
            raise ValueError("no recordings directory: give --recordings DIR")
        span = read_span(recordings, start, stop)
        if args.format == "edf":
            try:
                import pyedflib  # noqa: F401
            except ImportError:
                print("ecgd: EDF export needs pyedflib: pip install 'ecgd[edf]'", file=sys.stderr)
                return EX_UNAVAILABLE
        written = {"wfdb": write_wfdb, "edf": write_edf, "csv": write_csv}[args.format](span, args.output)
    except cfg.ConfigError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return 78
    except RecordNotFound as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_NOINPUT
    except (RecordError, ValueError, OSError) as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_DATAERR
    missing = span.n - int(span.valid.sum())
    print(
        f"{written}: {span.n} samples from {iso(span.start_ns)} ({span.n / span.fs:.1f} s, "
        f"{missing} without a sample), {len(span.notes)} annotations"
    )
    return EX_OK


def write_wfdb(span: Span, out: Path) -> Path:
    from ecgd.io.annotations import Annotation, write_annotations

    out.parent.mkdir(parents=True, exist_ok=True)
    name = out.name.removesuffix(".hea")
    base = out.with_name(name)
    d = span.digital
    base.with_suffix(".dat").write_bytes(span.spec.encode(d))
    stats = (span.n, int(d[0]) if span.n else 0, checksum(d))
    comments = [f"ecgd export from {', '.join(p.name for p in span.sources)}"]
    base.with_suffix(".hea").write_text(
        single_header(name, span.spec, span.fs, span.start_ns, stats, comments)
    )
    if span.notes:
        write_annotations(
            base.with_suffix("." + ANNOTATOR), [Annotation(n.sample, n.symbol, n.aux) for n in span.notes]
        )
    return base.with_suffix(".hea")


def write_edf(span: Span, out: Path) -> Path:
    import pyedflib

    spec = span.spec
    fs = span.fs
    if abs(fs - round(fs)) > 1e-9:
        raise ValueError(f"EDF export needs a whole-number rate (with 1-s data records), not {fs:g} Hz")
    codes = span.digital + (128 if spec.fmt == 80 else 0)  # back to the ADC's codes 0..255
    codes = np.where(span.valid, codes, EDF_GAP).astype(np.int32)
    per_record = round(fs)
    pad = (-span.n) % per_record  # EDF holds whole data records: the tail is marked as no sample
    codes = np.concatenate([codes, np.full(pad, EDF_GAP, np.int32)])
    # physical value of a digital code: the WFDB mapping (code - shift - baseline) / gain
    shift = 128 if spec.fmt == 80 else 0

    def phys(code: int) -> float:
        return (code - shift - spec.baseline) / spec.adc_gain

    gaps = [(a, b) for a, b in _runs(~span.valid) if b - a >= EDF_GAP_NOTE_S * fs]
    n_notes = len(gaps) + len(span.notes)
    n_records = codes.size // per_record
    warnings.filterwarnings("ignore", message="Physical m", module="pyedflib")  # 8-char fields: ~1e-6 mV
    w = pyedflib.EdfWriter(str(out), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        # EDFlib stores about one annotation per annotation signal and data record
        w.set_number_of_annotation_signals(min(64, max(1, -(-n_notes // max(1, n_records)) + 1)))
        w.setSignalHeader(
            0,
            {
                "label": "ECG",
                "dimension": spec.units,
                "sample_frequency": per_record,
                "physical_min": phys(EDF_GAP),
                "physical_max": phys(255),
                "digital_min": EDF_GAP,
                "digital_max": 255,
                "transducer": "AD8232 + PCF8591 8-bit",
                "prefilter": "",
            },
        )
        start = datetime.fromtimestamp(span.start_ns // 10**9, tz=timezone.utc).replace(tzinfo=None)
        w.setStartdatetime(start.replace(microsecond=(span.start_ns // 1000) % 1_000_000))
        w.setEquipment("ecgd")
        w.writeSamples([codes], digital=True)
        for a, b in gaps:
            w.writeAnnotation(a / fs, (b - a) / fs, f"no sample ({b - a} slots)")
        for n in span.notes:
            w.writeAnnotation(n.sample / fs, -1, f"{n.symbol} {n.aux}".strip() if n.aux else n.symbol)
    finally:
        w.close()
    return out


def write_csv(span: Span, out: Path) -> Path:
    t = span.time_ns(np.arange(span.n))
    secs, micro = (t // 10**9).tolist(), ((t // 1000) % 1_000_000).tolist()
    names: dict[int, str] = {}
    for sec in dict.fromkeys(secs):  # format each second once, not each sample
        names[sec] = datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    # mV through a table of the format's digital values (an 8-bit ADC has 256 of them)
    values, index = np.unique(span.digital, return_inverse=True)
    text = [f"{(v - span.spec.baseline) / span.spec.adc_gain:.6f}" for v in values.tolist()]
    mv = [text[i] if ok else "" for i, ok in zip(index.tolist(), span.valid.tolist(), strict=True)]
    valid = span.valid.tolist()
    with open(out, "w") as f:
        f.write("time,mv,valid\n")
        f.writelines(
            f"{names[s]}.{u:06d}Z,{m},{1 if v else 0}\n"
            for s, u, m, v in zip(secs, micro, mv, valid, strict=True)
        )
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))
