"""journal → MQTT (``ecgd bridge``) and the ward desk (``ecgd ward``): their own process and unit.

Imports nothing heavy here: the CLI builds its parsers from this module on every start.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_bridge_arguments(p: argparse.ArgumentParser) -> None:
    from ecgd.config import DEFAULT_CONFIG_PATH

    p.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help="the monitor's YAML (its bridge: section)"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (tests, benchmarks)")


def add_ward_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--site", help="only this site (default: every site on the broker)")
    p.add_argument("--username")
    p.add_argument("--password-file", type=Path)
    p.add_argument("--ca-file", type=Path, help="CA that signed the broker's certificate (mqtts)")
    p.add_argument("--cert-file", type=Path, help="client certificate (PEM)")
    p.add_argument("--key-file", type=Path, help="its private key (PEM)")
    p.add_argument(
        "--stale-after", type=float, default=10.0, help="a bed with no update for this long is stale (s)"
    )
    p.add_argument("--once", action="store_true", help="print the current table and exit")
    p.add_argument(
        "--wait", type=float, default=1.0, help="with --once: collect retained messages this long (s)"
    )


def run_command(args: argparse.Namespace) -> int:
    if args.command == "bridge":
        from ecgd.bridge.run import run_bridge

        return run_bridge(args.config, args.duration)
    from ecgd.bridge.ward import run_ward

    return run_ward(args)
