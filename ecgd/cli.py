"""Command line: ``ecgd run | check-config | classify | beats | alarms | strip | export | relearn | convert``,
``ecgd bridge | ward``. Exit codes follow sysexits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EX_OK, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE, EX_CONFIG = 0, 65, 66, 69, 78


def main(argv: list[str] | None = None) -> int:
    from ecgd.config import DEFAULT_CONFIG_PATH

    parser = argparse.ArgumentParser(prog="ecgd", description="Bedside ECG monitor daemon.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the monitor (under systemd or interactively)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    run.add_argument("--duration", type=float, help="stop after this many seconds (demo, tests)")

    check = sub.add_parser("check-config", help="validate a config without touching hardware")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)

    cls = sub.add_parser("classify", help="classify a recording offline, one JSON line per window")
    cls.add_argument("record", help="WFDB record (.hea or path without extension), .csv or .npy (mV)")
    cls.add_argument("--model", type=Path, help="TFLite model (default: the bundled one)")
    cls.add_argument("--hop", type=float, help="seconds between window starts (default: the window length)")
    cls.add_argument(
        "--frontend",
        choices=("pcf8591", "none"),
        default="none",
        help="pass the signal through the AD8232 + 8-bit PCF8591 model first",
    )
    cls.add_argument("--channel", type=int, default=0, help="signal/column to use (default 0)")
    cls.add_argument("--fs", type=float, help="sample rate of a .csv/.npy recording")
    cls.add_argument("--config", type=Path, help="take front-end and quality settings from this config")

    bts = sub.add_parser("beats", help="detect the beats of a recording offline, one JSON line per beat")
    bts.add_argument("record", help="WFDB record (.hea or path without extension), .csv or .npy (mV)")
    bts.add_argument(
        "--frontend",
        choices=("pcf8591", "none"),
        default="none",
        help="pass the signal through the AD8232 + 8-bit PCF8591 model first",
    )
    bts.add_argument("--channel", type=int, default=0, help="signal/column to use (default 0)")
    bts.add_argument("--fs", type=float, help="sample rate of a .csv/.npy recording")
    bts.add_argument(
        "--config", type=Path, help="take front-end, quality, windows and beats settings from here"
    )
    bts.add_argument(
        "--wfdb-annotations",
        type=Path,
        metavar="DIR",
        help="also write DIR/RECORD.ecgd, a WFDB annotation file (annotator ecgd, beats with their labels)",
    )

    from ecgd.relearn import add_relearn_arguments

    add_relearn_arguments(
        sub.add_parser("relearn", help="make the running monitor learn the patient's beat again")
    )

    alarms = sub.add_parser("alarms", help="alarm episodes of a recording offline, one JSON line each")
    alarms.add_argument("record", help="WFDB record (.hea or path without extension), .csv or .npy (mV)")
    alarms.add_argument("--frontend", choices=("pcf8591", "none"), default="none", help="as for classify")
    alarms.add_argument("--channel", type=int, default=0, help="signal/column to use (default 0)")
    alarms.add_argument(
        "--fs", type=float, help="sample rate of a .csv/.npy file, or a rate to declare instead"
    )
    alarms.add_argument("--config", type=Path, help="alarm, quality, window and front-end settings")
    alarms.add_argument(
        "--no-model", action="store_true", help="no classifier: no AF alarm, no noise verdicts"
    )

    try:
        from ecgd.convert import add_convert_arguments
    except ImportError:  # pragma: no cover - convert ships with the package
        add_convert_arguments = None
    if add_convert_arguments is not None:
        conv = sub.add_parser("convert", help="convert a SavedModel/Keras model to .tflite + metadata")
        add_convert_arguments(conv)

    from ecgd.io.export import add_export_arguments
    from ecgd.io.strip import add_strip_arguments

    add_strip_arguments(
        sub.add_parser("strip", help="draw an ECG strip (PNG) from the recordings or a record")
    )
    add_export_arguments(sub.add_parser("export", help="a stretch of the recordings as WFDB, EDF+ or CSV"))
    from ecgd.bridge import add_bridge_arguments, add_ward_arguments

    add_bridge_arguments(
        sub.add_parser("bridge", help="publish the monitor's journal records to an MQTT broker")
    )
    add_ward_arguments(
        sub.add_parser("ward", help="the central desk: every bed of a site from the MQTT broker")
    )

    args = parser.parse_args(argv)
    from ecgd.commands import CommandError

    try:
        return _dispatch(args)
    except CommandError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return exc.code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from ecgd.daemon import run_daemon

        return run_daemon(args.config, args.duration)
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "classify":
        return _classify(args)
    if args.command == "beats":
        from ecgd.beats_cli import run_beats

        return run_beats(args)
    if args.command == "relearn":
        from ecgd.relearn import run_relearn

        return run_relearn(args)
    if args.command == "alarms":
        from ecgd.alarm_replay import run_alarms

        return run_alarms(args)
    if args.command == "strip":
        from ecgd.io.strip import run_strip

        return run_strip(args)
    if args.command == "export":
        from ecgd.io.export import run_export

        return run_export(args)
    if args.command in ("bridge", "ward"):
        from ecgd.bridge import run_command

        return run_command(args)
    from ecgd.convert import run_convert

    return run_convert(args)


def _check_config(path: Path) -> int:
    from ecgd import config as cfg
    from ecgd.analysis.model import ModelError
    from ecgd.daemon import load_checked_model

    try:
        settings = cfg.load(path)
        model = load_checked_model(settings)
    except cfg.ConfigError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    except ModelError as exc:
        print(f"ecgd: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(cfg.describe(settings), end="")
    print(f"# model ok: {model.metadata.ident}, labels {', '.join(model.labels)}, backend {model.backend}")
    from ecgd.bridge.checks import bridge_file_problems

    problems = bridge_file_problems(settings.bridge)
    for problem in problems:
        print(f"ecgd: {path}: {problem}", file=sys.stderr)
    if problems:
        return EX_CONFIG
    if settings.bridge.broker is not None:
        print(f"# bridge ok: {settings.bridge.broker} as {settings.bridge.topic_prefix}")
    return EX_OK


def _classify(args: argparse.Namespace) -> int:
    from ecgd.analysis.beat_labels import TemplateChange
    from ecgd.commands import (
        CommandError,
        load_settings,
        open_model,
        open_recording,
        print_json_lines,
        say_template_changes,
    )
    from ecgd.offline import classify_recording

    settings = load_settings(args.config)
    model = open_model(args.model or settings.model_path)
    rec = open_recording(args.record, args.channel, args.fs)
    hop = args.hop or model.metadata.window_seconds
    if hop <= 0:
        raise CommandError("--hop must be positive", EX_DATAERR)
    frontend = settings.analog_frontend if args.frontend == "pcf8591" else None
    b = settings.beats
    changes: list[TemplateChange] = []
    code = print_json_lines(
        classify_recording(
            rec, model, hop, frontend, settings.quality, b.qrs, b.tracker, None, settings.relearn, changes
        )
    )
    say_template_changes("ecgd classify", changes, rec.fs)
    return code
