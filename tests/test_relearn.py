"""``ecgd relearn``: the running daemon learns the patient's dominant beat again; results say so."""

from __future__ import annotations

import os
import signal
import time

from daemon_support import log_records, run_in_main_thread, write_config

from ecgd import config as cfg
from ecgd.cli import main
from ecgd.daemon import Daemon
from ecgd.notify import Notifier


def test_relearn_signal_restarts_learning_and_results_say_so(daemon_env):
    tmp, _listener = daemon_env
    conf, log = tmp / "c.yaml", tmp / "r.jsonl"
    write_config(conf, log, relearn={"learn_seconds": 12.0})
    daemon = Daemon(cfg.load(conf), notifier=Notifier())
    daemon.start()
    marks = {}

    def actions():
        time.sleep(21.0)  # learned from ~15 s of signal; its windows are out ~3 s later
        marks["t"] = time.time()
        assert main(["relearn", "--pid", str(os.getpid())]) == 0  # the command itself, to this process
        time.sleep(8.0)
        os.kill(os.getpid(), signal.SIGTERM)

    run_in_main_thread(daemon, actions)
    records = log_records(log)
    events = [r for r in records if r.get("event") == "relearn"]
    assert len(events) == 1 and "again" in events[0]["message"]
    results = [r for r in records if r["kind"] == "result" and r.get("learning") is not None]
    flags = [r["learning"] for r in results]
    assert flags[0] is True  # the first window: still learning
    first_false = flags.index(False)  # learned after 12 s of beats
    after = flags[first_false:]
    assert True in after, f"no result said learning after the relearn: {flags}"
    relearned = results[first_false + after.index(True)]
    assert "still learning this patient's dominant beat" in relearned["message"]
    assert all(set(r["beat_labels"]) <= set("NSVQ") for r in results)


def test_relearn_without_a_daemon_says_so(capsys):
    assert main(["relearn", "--pid", "999999999"]) == 66
    assert "no process 999999999" in capsys.readouterr().err
