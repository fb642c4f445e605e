"""What ``ecgd check-config`` checks of the bridge beyond the schema: the files it will open."""

from __future__ import annotations

import os
from pathlib import Path

from ecgd.bridge.settings import BridgeSettings


def bridge_file_problems(s: BridgeSettings) -> list[str]:
    """Missing or unreadable password/TLS files (only with a broker set; the cursor's directory is the
    unit's StateDirectory=, made when it starts, so the bridge checks that itself)."""
    if s.broker is None:
        return []
    found = []
    files = {"bridge.password_file": s.password_file}
    if s.host_port[2]:
        files |= {f"bridge.tls.{k}": getattr(s.tls, k) for k in ("ca_file", "cert_file", "key_file")}
    for key, value in files.items():
        if value is None:
            continue
        p = Path(value)
        if not p.is_file():
            found.append(f"{key}: {value} does not exist")
        elif not os.access(p, os.R_OK):
            found.append(f"{key}: {value} is not readable by this user")
    return found
