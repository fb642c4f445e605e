"""``ecgd beats RECORD``: the daemon's beat stage over a recording, one JSON line per beat.

With a beat-aware model (the bundled one) each beat also gets its ``label`` (N, S, V, Q), and the WFDB
annotation file carries those labels, so PhysioNet's ``bxb`` scores the classification too.

Exit codes as ``ecgd classify``: 78 bad config, 66 no such recording, 65 unreadable data
(or a recording too short or too slow for the detector), 73 the annotation file cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys

EX_OK, EX_DATAERR, EX_NOINPUT, EX_CANTCREAT, EX_CONFIG = 0, 65, 66, 73, 78


def run_beats(args: argparse.Namespace) -> int:
    from ecgd import config as cfg
    from ecgd.analysis.model import ModelError
    from ecgd.io.annotations import Annotation, annotation_path, write_annotations
    from ecgd.io.records import RecordError, RecordNotFound, read_recording
    from ecgd.offline import add_beat_labels, beats_of_recording

    try:
        settings = cfg.load(args.config) if args.config else cfg.Settings()
    except cfg.ConfigError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        rec = read_recording(args.record, args.channel, args.fs)
    except RecordNotFound as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_NOINPUT
    except (RecordError, OSError, ValueError) as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_DATAERR
    frontend = settings.analog_frontend if args.frontend == "pcf8591" else None
    w, b = settings.windows, settings.beats
    try:
        beats = beats_of_recording(
            rec, w.window_seconds, w.hop_seconds, frontend, settings.quality, b.qrs, b.tracker
        )
    except ValueError as exc:  # too short, a rate the detector cannot use, ...
        print(f"ecgd: {rec.name}: {exc}", file=sys.stderr)
        return EX_DATAERR
    try:
        add_beat_labels(rec, beats, frontend, settings)
    except ModelError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.wfdb_annotations is not None:
        try:
            path = annotation_path(args.wfdb_annotations, rec.name)
            anns = (Annotation(row["sample"], row.get("label", "N")) for row in beats)
            write_annotations(path, anns, fs=rec.fs)
        except OSError as exc:
            print(f"ecgd: cannot write annotations to {args.wfdb_annotations}: {exc}", file=sys.stderr)
            return EX_CANTCREAT
    out = sys.stdout
    for row in beats:
        out.write(json.dumps(row, separators=(",", ":")) + "\n")
    out.flush()
    return EX_OK
