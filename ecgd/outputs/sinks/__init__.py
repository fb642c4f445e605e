"""Fan-out of records to the sinks on their own thread.

The inference worker hands records over through a bounded queue and never
waits: a slow or broken sink cannot stall classification or sampling. A full
queue counts drops; a failing sink is reported once per episode (through the
other sinks and stderr) and retried with every record, so writing resumes
when the disk has space again or journald is back.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from typing import Protocol

from ecgd.outputs.results import ERR, NOTICE, Record, event_record


class Sink(Protocol):
    name: str

    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


_STOP = object()


class SinkDispatcher:
    def __init__(self, sinks: list[Sink], queue_size: int = 1000) -> None:
        self.sinks = sinks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.written = {s.name: 0 for s in sinks}
        self.failed = {s.name: 0 for s in sinks}
        self._down: dict[str, str] = {}
        self._episode_failed = {s.name: 0 for s in sinks}
        self._drops_reported = 0
        self._thread = threading.Thread(target=self._run, name="ecgd-sinks", daemon=True)
        self.heartbeat = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def submit(self, record: Record) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 1.5) -> None:
        """Flush what is queued (within ``timeout``) and close every sink."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        for sink in self.sinks:
            with contextlib.suppress(OSError):
                sink.close()

    @property
    def down(self) -> dict[str, str]:
        return dict(self._down)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            self.heartbeat = time.monotonic()
            if item is _STOP:
                return
            assert isinstance(item, Record)
            self._write_all(item)
            if self.dropped > self._drops_reported and self._queue.empty():  # once per episode
                new = self.dropped - self._drops_reported
                self._drops_reported = self.dropped
                message = f"{new} records dropped: outputs too slow (queue full; {self.dropped} in total)"
                self._write_all(
                    event_record(
                        "fault", message, ERR, item.wall_ns or 0, event="records_dropped", dropped=new
                    )
                )

    def _write_all(self, record: Record) -> None:
        for sink in self.sinks:
            try:
                sink.write(record)
            except Exception as exc:  # a broken sink, whatever it raises, must never stop the others
                self.failed[sink.name] += 1
                self._episode_failed[sink.name] += 1
                if sink.name not in self._down:
                    self._down[sink.name] = str(exc)
                    self._report(
                        sink,
                        f"{sink.name} unavailable: {exc}; other outputs continue",
                        ERR,
                        record,
                        "sink_down",
                    )
                continue
            self.written[sink.name] += 1
            if sink.name in self._down:
                del self._down[sink.name]
                self._report(
                    sink,
                    f"{sink.name} writing again after {self._episode_failed[sink.name]} failed records",
                    NOTICE,
                    record,
                    "sink_up",
                )
                self._episode_failed[sink.name] = 0

    def _report(self, about: Sink, message: str, priority: int, record: Record, event: str) -> None:
        print(f"ecgd: {message}", file=sys.stderr, flush=True)
        note = event_record("fault", message, priority, record.wall_ns or 0, event=event, sink=about.name)
        for sink in self.sinks:
            if sink is not about and sink.name not in self._down:
                with contextlib.suppress(Exception):
                    sink.write(note)
