"""Fan-out of records to the sinks, each sink on its own thread with its own bounded queue.

The inference worker hands records over and never waits: a slow or broken sink cannot stall
classification or sampling. One thread per sink, because an output can stall for a long time
(journald stopped, a log file on a hung filesystem): the stalled one must not hold back the
others, so a record reaches every sink that can take it. A full queue counts that sink's drops
and says so in every output once the episode is over; a failing sink is reported once per
episode (through the other sinks and stderr) and retried with every record, so writing resumes
when the disk has space again or journald is back.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ecgd.outputs.results import ERR, NOTICE, Record, event_record


class Sink(Protocol):
    name: str

    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


_STOP = object()


class _SinkThread:
    """One sink, its queue and the thread that writes to it; reports go back through ``report``."""

    def __init__(self, sink: Sink, queue_size: int, report: Callable[[_SinkThread, Record], None]) -> None:
        self.sink = sink
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self.down: str | None = None
        self._episode_failed = 0
        self._drops_reported = 0
        self._report = report
        self.thread = threading.Thread(target=self._run, name=f"ecgd-sink-{sink.name}", daemon=True)

    def offer(self, item: object) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, Record)
                self._write(item)
                if self.dropped > self._drops_reported and self.queue.empty():  # once per episode
                    new = self.dropped - self._drops_reported
                    self._drops_reported = self.dropped
                    message = (
                        f"{new} records dropped for {self.sink.name}: output too slow "
                        f"(queue full; {self.dropped} in total)"
                    )
                    note = event_record(
                        "fault",
                        message,
                        ERR,
                        item.wall_ns or 0,
                        event="records_dropped",
                        dropped=new,
                        sink=self.sink.name,
                    )
                    self._write(note)
                    self._report(self, note)
            finally:
                self.queue.task_done()

    def _write(self, record: Record) -> None:
        name = self.sink.name
        try:
            self.sink.write(record)
        except Exception as exc:  # a broken sink, whatever it raises, must never stop the others
            self.failed += 1
            self._episode_failed += 1
            if self.down is None:
                self.down = str(exc)
                message = f"{name} unavailable: {exc}; other outputs continue"
                self._announce(message, ERR, record, "sink_down")
            return
        self.written += 1
        if self.down is not None:
            self.down = None
            message = f"{name} writing again after {self._episode_failed} failed records"
            self._announce(message, NOTICE, record, "sink_up")
            self._episode_failed = 0

    def _announce(self, message: str, priority: int, record: Record, event: str) -> None:
        print(f"ecgd: {message}", file=sys.stderr, flush=True)
        note = event_record("fault", message, priority, record.wall_ns or 0, event=event, sink=self.sink.name)
        self._report(self, note)


class SinkDispatcher:
    def __init__(self, sinks: list[Sink], queue_size: int = 1000) -> None:
        self.sinks = sinks
        self._threads = [_SinkThread(s, queue_size, self._report) for s in sinks]
        self.heartbeat = time.monotonic()

    def start(self) -> None:
        for t in self._threads:
            t.thread.start()

    def submit(self, record: Record) -> None:
        """Never waits: a sink whose queue is full counts the record as dropped for it."""
        self.heartbeat = time.monotonic()
        for t in self._threads:
            t.offer(record)

    def _report(self, source: _SinkThread, note: Record) -> None:
        """A sink's news (down, up, drops) for the other sinks that are writing."""
        for t in self._threads:
            if t is not source and t.down is None:
                t.offer(note)

    @property
    def dropped(self) -> int:
        """Records dropped, summed over the sinks (each sink that missed a record counts it)."""
        return sum(t.dropped for t in self._threads)

    @property
    def written(self) -> dict[str, int]:
        return {t.sink.name: t.written for t in self._threads}

    @property
    def failed(self) -> dict[str, int]:
        return {t.sink.name: t.failed for t in self._threads}

    @property
    def down(self) -> dict[str, str]:
        return {t.sink.name: t.down for t in self._threads if t.down is not None}

    def is_alive(self) -> bool:
        return all(t.thread.is_alive() for t in self._threads)

    def wait_idle(self, timeout: float) -> bool:
        """Every queued record handled (tests and shutdown); False if a sink is still busy."""
        deadline = time.monotonic() + timeout
        while any(t.queue.unfinished_tasks for t in self._threads):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 1.5) -> None:
        """Flush what is queued (within ``timeout``) and close every sink whose thread finished.

        A sink stuck in a write past the deadline is left to its (daemon) thread: closing it under
        the write could corrupt what it is writing, and the process is ending anyway.
        """
        deadline = time.monotonic() + timeout
        for t in self._threads:
            while t.thread.is_alive():
                try:
                    t.queue.put(_STOP, timeout=0.05)
                    break
                except queue.Full:
                    if time.monotonic() >= deadline:
                        break
        for t in self._threads:
            t.thread.join(max(0.0, deadline - time.monotonic()))
        for t in self._threads:
            if not t.thread.is_alive():
                with contextlib.suppress(OSError):
                    t.sink.close()
