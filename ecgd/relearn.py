"""``ecgd relearn``: ask the running monitor to learn the patient's dominant beat again.

Bedside monitors call it "arrhythmia relearn": after a new patient is connected or the electrodes are
moved, the old template would make every beat look foreign. The daemon learns again on SIGUSR1 (and
on every reload); this command sends it, to a PID or through systemd.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

EX_OK, EX_NOINPUT, EX_UNAVAILABLE = 0, 66, 69


def add_relearn_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pid", type=int, help="the daemon's PID (default: systemctl kill the unit)")
    p.add_argument("--unit", default="ecgd.service", help="systemd unit (default ecgd.service)")


def run_relearn(args: argparse.Namespace) -> int:
    if args.pid is not None:
        try:
            os.kill(args.pid, signal.SIGUSR1)
        except ProcessLookupError:
            print(f"ecgd relearn: no process {args.pid}", file=sys.stderr)
            return EX_NOINPUT
        except PermissionError:
            print(f"ecgd relearn: not allowed to signal process {args.pid}", file=sys.stderr)
            return EX_UNAVAILABLE
        print(f"ecgd relearn: SIGUSR1 sent to {args.pid}; the next results say learning=true")
        return EX_OK
    try:
        done = subprocess.run(
            ["systemctl", "kill", "--kill-whom=main", "--signal=SIGUSR1", args.unit],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        print("ecgd relearn: no systemctl here; give the daemon's --pid", file=sys.stderr)
        return EX_UNAVAILABLE
    if done.returncode != 0:
        print(f"ecgd relearn: {done.stderr.strip() or 'systemctl kill failed'}", file=sys.stderr)
        return EX_UNAVAILABLE
    print(f"ecgd relearn: SIGUSR1 sent to {args.unit}")
    return EX_OK
