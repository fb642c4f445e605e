"""``ecgd beats RECORD``: the daemon's beat stage over a recording, one JSON line per beat.

With a beat-aware model (the bundled one) each beat also gets its ``label`` (N, S, V, Q), and the WFDB
annotation file carries those labels, so PhysioNet's ``bxb`` scores the classification too.

Exit codes as ``ecgd classify``: 78 bad config, 66 no such recording, 65 unreadable data
(or a recording too short or too slow for the detector), 73 the annotation file cannot be written.
"""

from __future__ import annotations

import argparse

from ecgd.commands import EX_CANTCREAT, EX_CONFIG, EX_DATAERR, CommandError


def run_beats(args: argparse.Namespace) -> int:
    from ecgd.analysis.beat_labels import TemplateChange
    from ecgd.analysis.model import ModelError, load_model
    from ecgd.commands import load_settings, open_recording, print_json_lines, say_template_changes
    from ecgd.io.annotations import Annotation, annotation_path, write_annotations
    from ecgd.offline import beats_of_recording

    settings = load_settings(args.config)
    rec = open_recording(args.record, args.channel, args.fs)
    frontend = settings.analog_frontend if args.frontend == "pcf8591" else None
    w, b = settings.windows, settings.beats
    try:
        model = load_model(settings.model_path, settings.metadata_path)
    except ModelError as exc:
        raise CommandError(str(exc), EX_CONFIG) from None
    changes: list[TemplateChange] = []
    try:
        beats = beats_of_recording(
            rec,
            w.window_seconds,
            w.hop_seconds,
            frontend,
            settings.quality,
            b.qrs,
            b.tracker,
            model,
            settings.relearn,
            changes,
        )
    except ValueError as exc:  # too short, a rate the detector cannot use, ...
        raise CommandError(f"{rec.name}: {exc}", EX_DATAERR) from None
    if args.wfdb_annotations is not None:
        try:
            path = annotation_path(args.wfdb_annotations, rec.name)
            anns = (Annotation(row["sample"], row.get("label", "N")) for row in beats)
            write_annotations(path, anns, fs=rec.fs)
        except OSError as exc:
            raise CommandError(
                f"cannot write annotations to {args.wfdb_annotations}: {exc}", EX_CANTCREAT
            ) from None
    code = print_json_lines(beats)
    say_template_changes("ecgd beats", changes, rec.fs)
    return code
