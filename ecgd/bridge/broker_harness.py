"""A real Mosquitto broker as a child process, and a throw-away CA: for the tests and benchmarks.

Not used by the bridge itself. Loopback only: every listener binds 127.0.0.1.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TestCa:
    """A CA, and a server certificate it signed for 127.0.0.1/localhost (openssl CLI)."""

    directory: Path
    name: str = "ecgd test CA"
    ca_cert: Path = field(init=False)
    ca_key: Path = field(init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_key = self.directory / "ca.key"
        self.ca_cert = self.directory / "ca.crt"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", f"/CN={self.name}",
        )  # fmt: skip

    def issue(self, cn: str, server: bool = True) -> tuple[Path, Path]:
        """(cert, key) signed by this CA; a server certificate names 127.0.0.1 and localhost."""
        key, csr, crt = (self.directory / f"{cn}.{ext}" for ext in ("key", "csr", "crt"))
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}",
        )  # fmt: skip
        ext = self.directory / f"{cn}.ext"
        ext.write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            if server
            else "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return crt, key


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


class Mosquitto:
    """``mosquitto -c FILE`` on 127.0.0.1: a plain listener (``port``), optionally a TLS one
    (``tls_port``), with a password file and an ACL when given; persistence on, so a restart keeps
    subscribers' sessions and queued messages as a production broker should."""

    def __init__(
        self,
        directory: Path,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: TestCa | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        lines = [
            # started as root, mosquitto would switch to user "mosquitto", which cannot read the test's
            # files: stay whoever we are
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"persistence true\npersistence_location {directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"listener {self.port} 127.0.0.1",
        ]
        if tls:
            cert, key = tls.issue("broker")
            lines += [f"listener {self.tls_port} 127.0.0.1", f"cafile {tls.ca_cert}", f"certfile {cert}"]
            lines.append(f"keyfile {key}")
        if users:
            passwd = directory / "passwd"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if acl:
            (directory / "acl").write_text(acl)
            lines.append(f"acl_file {directory / 'acl'}")
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None
        self.log = directory / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start: {self.log.read_text()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def url(self, tls: bool = False) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}" if tls else f"mqtt://127.0.0.1:{self.port}"
