"""``ecgd bridge``: the monitor's journal → one bed's topics on an MQTT broker, at least once.

Reading pauses while ``max_in_flight`` messages wait for the broker, so an outage costs no memory:
the journal is the backlog. The cursor file moves only over acknowledged messages (saved at most
once a second and at stop), so a crash or restart re-sends at most what was in flight plus one
second; every message carries its identity for the consumer to drop those.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ecgd.bridge.messages import Vitals, to_message
from ecgd.bridge.settings import BridgeSettings

EX_OK, EX_UNAVAILABLE, EX_NOPERM, EX_CONFIG = 0, 69, 77, 78
SAVE_EVERY_S = 1.0
# journald tells readers about new entries (inotify) at most every 250 ms, but the entries are in the
# mapped file at once: looking every 50 ms takes ~25 ms off a typical alarm's way, for 20 cheap
# wake-ups a second (measured: send → read p50 344 ms waiting for the notification, 21 ms at 20 ms).
POLL_S = 0.05
BATCH = 200


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bridge:
    def __init__(
        self, settings: BridgeSettings, source: Any, publisher: Any, cursor_file: Any, state: dict
    ) -> None:
        self.s = settings
        self.source = source
        self.pub = publisher
        self.cursor_file = cursor_file
        self.vitals = Vitals.restore(state.get("vitals"))
        self.ledger = publisher.ledger
        self.saved_cursor = self.ledger.committed
        self.published = 0
        self.stopping = False
        self._last_save = time.monotonic()
        self._connects_seen = publisher.link.connects
        publisher.on_connected = self._announce  # network thread: only paho calls, no shared state
        if publisher.link.connected:
            self._announce()

    def _announce(self) -> None:
        self.pub.client.publish(
            self.pub.topic("status"), _status(self.s, "online", "connected"), qos=1, retain=True
        )

    def step(self) -> int:
        """Publish what the journal has now, while fewer than max_in_flight messages (records and
        vitals) wait for the broker; returns the entries read."""
        n = 0
        site, bed = self.s.site, self.s.bed_name
        if self.pub.link.connects != self._connects_seen and self.vitals.updated is not None:
            # a (re)connection: a broker that restarted without persistence lost the retained vitals
            self._connects_seen = self.pub.link.connects
            self.ledger.add(self.pub.publish("vitals", self.vitals.payload(site, bed), retain=True), None)
        while n < BATCH and len(self.ledger) < self.s.max_in_flight:
            entry = self.source.next_entry()
            if entry is None:
                break
            n += 1
            m = to_message(entry, site, bed)
            if m is None:  # the monitor's stray stdout/stderr lines, not records
                self.ledger.add(None, str(entry["__CURSOR"]))
                continue
            qos = self.s.alarm_qos if m.topic == "alarm" else 1
            # vitals first (not tied to the cursor), then the record: the record's ack moves the cursor
            if self.vitals.apply(m):
                mid = self.pub.publish("vitals", self.vitals.payload(site, bed), qos=1, retain=True)
                self.ledger.add(mid, None)
            self.ledger.add(self.pub.publish(m.topic, m.payload, qos=qos), m.cursor)
            self.published += 1
        self.ledger.advance()
        self.save(force=False)
        return n

    def save(self, force: bool) -> None:
        now = time.monotonic()
        cursor = self.ledger.committed
        if cursor and cursor != self.saved_cursor and (force or now - self._last_save >= SAVE_EVERY_S):
            self.cursor_file.save(cursor, self.vitals.snapshot())
            self.saved_cursor = cursor
            self._last_save = now

    def run(self, notifier: Any, duration_s: float | None = None) -> int:
        from ecgd.bridge.publisher import BrokerError

        t_end = None if duration_s is None else time.monotonic() + duration_s
        next_ping = 0.0
        while not self.stopping and (t_end is None or time.monotonic() < t_end):
            try:
                n = self.step()
            except BrokerError as exc:  # paho refused to queue a message: stop, resume from the cursor
                log(f"ecgd bridge: {exc}")
                self.shutdown(notifier)
                return EX_UNAVAILABLE
            notifier.flush()  # kept states (READY=1, WATCHDOG=1) the manager could not take at once
            now = time.monotonic()
            if notifier.watchdog_interval_s and now >= next_ping:
                notifier.watchdog()
                notifier.status(self.status())
                next_ping = now + notifier.watchdog_interval_s
            if n == 0:
                self.source.wait(POLL_S)
            elif len(self.ledger) >= self.s.max_in_flight:
                time.sleep(0.01)  # waiting for acknowledgements (or the broker)
        return self.shutdown(notifier)

    def shutdown(self, notifier: Any) -> int:
        notifier.stopping()
        deadline = time.monotonic() + 3.0
        while len(self.ledger) and time.monotonic() < deadline and self.pub.link.connected:
            self.ledger.advance()
            time.sleep(0.02)
        self.ledger.advance()
        self.save(force=True)
        self.pub.stop("bridge stopped")
        self.source.close()
        log(
            f"ecgd bridge: stopped; {self.published} messages published, {len(self.ledger)} unacknowledged "
            "(re-sent from the journal at the next start)"
        )
        return EX_OK

    def status(self) -> str:
        link = "connected" if self.pub.link.connected else f"reconnecting ({self.pub.link.last_error})"
        return f"{link}; {self.published} published, {len(self.ledger)} awaiting acknowledgement"


def _status(s: BridgeSettings, state: str, reason: str) -> str:
    from ecgd.bridge.publisher import status_payload

    return status_payload(s, state, reason)


def _resolve_files(s: BridgeSettings, base: Path) -> BridgeSettings:
    """Relative file names in the bridge section are relative to the config file, as everywhere."""

    def at(value: str | None) -> str | None:
        return None if value is None else str(base / Path(value).expanduser())

    tls = replace(
        s.tls, ca_file=at(s.tls.ca_file), cert_file=at(s.tls.cert_file), key_file=at(s.tls.key_file)
    )
    return replace(s, password_file=at(s.password_file), cursor_file=at(s.cursor_file), tls=tls)


def run_bridge(config_path: Path, duration_s: float | None = None) -> int:
    from ecgd import config as cfg
    from ecgd.bridge.journal_source import CursorFile, JournalSource, unreadable_journal
    from ecgd.notify import Notifier

    try:
        settings = cfg.load(config_path).bridge
    except cfg.ConfigError as exc:
        log(f"ecgd: {exc}")
        return EX_CONFIG
    if settings.broker is None:
        log(f"ecgd: {config_path}: bridge.broker is not set; nothing to publish to")
        return EX_CONFIG
    try:
        from ecgd.bridge.publisher import BrokerError, Ledger, Publisher
    except ImportError as exc:
        log(f"ecgd bridge needs the [bridge] extra (pip install 'ecgd[bridge]'): {exc}")
        return EX_UNAVAILABLE
    why = unreadable_journal()
    if why:
        log(f"ecgd bridge: {why}")
        return EX_NOPERM
    settings = _resolve_files(settings, Path(config_path).absolute().parent)
    cursor_file = CursorFile(Path(settings.cursor_file))
    try:
        state = cursor_file.load()
        probe = cursor_file.path.with_name(cursor_file.path.name + ".tmp")
        probe.write_text("")  # the state directory must be writable before anything is published
    except OSError as exc:
        log(f"ecgd: bridge.cursor_file: {exc}")
        return EX_CONFIG
    notifier = Notifier()
    ledger = Ledger(state.get("cursor"))
    try:
        publisher = Publisher(settings, ledger, log)
        publisher.connect()
    except BrokerError as exc:
        log(f"ecgd: {exc}")
        return exc.exit_code
    source = JournalSource(settings.match.split(), state.get("cursor"), settings.start_at)
    if source.cursor_missing:
        log(
            "ecgd bridge: WARNING: the saved cursor's entry is no longer in the journal (rotated away?); "
            "resuming at the next entry still there: records in between may never reach the broker"
        )
    bridge = Bridge(settings, source, publisher, cursor_file, state)
    if state.get("vitals"):  # the vitals as they were, at once (a desk sees the bed before a new record)
        vitals = bridge.vitals.payload(settings.site, settings.bed_name)
        ledger.add(publisher.publish("vitals", vitals, retain=True), None)

    def stop(signum: int, frame: Any) -> None:
        bridge.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    resumed = (
        f"resuming after cursor {state['cursor'][:40]}…"
        if state.get("cursor")
        else f"no cursor: from {settings.start_at}"
    )
    log(f"ecgd bridge: connected to {settings.broker} as {publisher.prefix}; {resumed}")
    notifier.ready(f"publishing to {settings.broker} as {publisher.prefix}")
    return bridge.run(notifier, duration_s)
