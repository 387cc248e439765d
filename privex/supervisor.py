"""Keep one process running: `privex serve` runs its Celery worker under this, which starts it again when it dies.

    python -m privex.supervisor NAME -- COMMAND...

- A process that dies is started again after a pause that doubles from 1 s up to 60 s while it keeps dying soon
  after starting; one that ran for ``STABLE`` seconds first is called stable and waits 1 s again. Each death and
  start is logged.
- It runs in a process group of its own, so what it started goes with it: Celery's pool processes, orphaned by a
  SIGKILLed worker, would otherwise finish their document beside the new worker's second try at it.
- The new process learns which one it replaces (``--replaces PID`` is appended to COMMAND), so it puts that one's
  reserved tasks back in the queue at once (privex/tasks/recovery.py).
- SIGTERM or SIGINT stops the process (SIGTERM, then SIGKILL for the group after ``GRACE`` seconds) and this one. So
  does the parent's exit: a killed `privex serve` leaves no worker behind.

It is a small process of its own rather than a thread of `privex serve`, because the gunicorn arbiter that serve
runs in-process reaps every child process (``waitpid(-1)``) and would collect the worker's exit status first.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("privex.supervisor")

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
STABLE = 60.0  # seconds a process must run before its death counts as a first one again
GRACE = 25.0  # seconds a stopping process gets before it is killed; `privex serve` waits longer than this
POLL = 0.5


class Supervisor:
    def __init__(self, name: str, command: list[str]):
        self.name, self.command = name, command
        self.process: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.parent = os.getppid()

    def run(self) -> int:
        pause, replaces = FIRST_PAUSE, None
        while not self.stopping.is_set():
            started = time.monotonic()
            self._start(replaces)
            code = self._wait()
            self._kill_group()
            if self.stopping.is_set():
                break
            ran = time.monotonic() - started
            pause = FIRST_PAUSE if ran >= STABLE else pause
            log.warning("the %s (pid %d) %s after %.0f s; starting it again in %.0f s", self.name, self.process.pid,
                        _how(code), ran, pause,
                        extra={"pid": self.process.pid, "exit": code, "restart_in_seconds": pause})
            replaces = self.process.pid
            if self.stopping.wait(pause):
                break
            pause = min(pause * 2, LONGEST_PAUSE)
        return 0

    def stop(self, *_args) -> None:
        """Ask to stop (a signal handler): the waiting loop terminates the process within ``POLL`` seconds."""
        self.stopping.set()

    def _start(self, replaces: int | None) -> None:
        command = self.command + (["--replaces", str(replaces)] if replaces else [])
        self.process = subprocess.Popen(command, start_new_session=True)
        log.info("started the %s (pid %d)", self.name, self.process.pid, extra={"pid": self.process.pid})

    def _wait(self) -> int:
        """The process's exit code (negative: the signal that killed it), stopping it if asked to or orphaned."""
        deadline = None
        while True:
            try:
                return self.process.wait(timeout=POLL)
            except subprocess.TimeoutExpired:
                pass
            if os.getppid() != self.parent and not self.stopping.is_set():
                log.info("`privex serve` is gone; stopping the %s", self.name)
                self.stop()
            if self.stopping.is_set():
                if deadline is None:  # Celery's warm shutdown: it finishes the tasks it is running
                    self.process.terminate()
                    deadline = time.monotonic() + GRACE
                elif time.monotonic() > deadline:
                    log.warning("the %s did not stop within %.0f s; killing it", self.name, GRACE)
                    self._kill_group()

    def _kill_group(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # nothing left of it


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def main(arguments: list[str]) -> int:
    from privex.config import settings_from_env
    from privex.logs import configure_logging

    if len(arguments) < 3 or arguments[1] != "--":
        print("usage: python -m privex.supervisor NAME -- COMMAND...", file=sys.stderr)
        return 2
    configure_logging(settings_from_env()["LOG_LEVEL"])
    supervisor = Supervisor(arguments[0], arguments[2:])
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
