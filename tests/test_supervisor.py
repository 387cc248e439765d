"""The supervisor `privex serve` runs its Celery worker under (privex/supervisor.py), on real short-lived processes."""

from __future__ import annotations

import sys
import textwrap
import threading

import pytest

from privex import supervisor as supervision
from tests.test_processes import running, wait_for

# Dies at once, except on its fourth run, which lives long enough to count as stable; records the arguments it got.
FLAKY = textwrap.dedent("""
    import pathlib, sys, time
    runs = pathlib.Path(sys.argv[1])
    with runs.open("a") as record:
        record.write(" ".join(sys.argv[2:]) + "\\n")
    if len(runs.read_text().splitlines()) == 4:
        time.sleep(0.6)
    sys.exit(3)
""")


@pytest.fixture()
def quick(monkeypatch):
    """Pauses and the stable period of a test's scale (the supervisor's settings, not a stand-in for anything)."""
    monkeypatch.setattr(supervision, "FIRST_PAUSE", 0.05)
    monkeypatch.setattr(supervision, "LONGEST_PAUSE", 0.2)
    monkeypatch.setattr(supervision, "STABLE", 0.5)
    monkeypatch.setattr(supervision, "GRACE", 1.0)


def test_a_dying_process_is_restarted_with_growing_pauses_reset_once_it_ran_stably(quick, tmp_path, caplog):
    caplog.set_level("INFO", logger="privex.supervisor")
    runs = tmp_path / "runs"
    keeper = supervision.Supervisor("flaky job", [sys.executable, "-c", FLAKY, str(runs)])
    thread = threading.Thread(target=keeper.run)
    thread.start()
    try:
        wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 7, 60, what="seven runs")
    finally:
        keeper.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()

    deaths = [record for record in caplog.records if record.levelname == "WARNING"]
    assert all(record.getMessage().startswith("the flaky job (pid ") and " exited with code 3 after " in
               record.getMessage() for record in deaths)
    # Doubling up to the cap, and back to the first pause after the run that lasted.
    assert [record.restart_in_seconds for record in deaths][:6] == [0.05, 0.1, 0.2, 0.05, 0.1, 0.2]
    # Each new process is told which one it replaces.
    arguments = runs.read_text().splitlines()
    assert arguments[0] == "" and [line.split()[0] for line in arguments[1:]] == ["--replaces"] * (len(arguments) - 1)
    assert arguments[1].split()[1] == str(deaths[0].pid)


def test_stopping_the_supervisor_stops_its_process_and_what_that_started(quick, tmp_path):
    pids = tmp_path / "pids"
    parent = textwrap.dedent(f"""
        import os, pathlib, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a worker stuck in a long task
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(600)
    """)
    keeper = supervision.Supervisor("stubborn job", [sys.executable, "-c", parent])
    thread = threading.Thread(target=keeper.run)
    thread.start()
    try:
        started = wait_for(lambda: pids.exists() and pids.read_text().split(), 30, what="the job to start")
    finally:
        keeper.stop()  # the job ignores SIGTERM: after the grace period the supervisor kills its group
    thread.join(timeout=30)
    assert not thread.is_alive()
    # SIGKILL is delivered as the processes are next scheduled: wait for it rather than look at once.
    wait_for(lambda: not [pid for pid in map(int, started) if running(pid)], 30, what="the job and its child to die")
