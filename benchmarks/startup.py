"""Start-up time of `privex serve`: from launch until /api/v1/health answers 200 with every component ok.

Cold: a fresh instance folder (initdb, all migrations). Warm: the same folder again (what `make run` costs on
every later start). Three warm runs; the median is reported.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PRIVEX = str(Path(sys.executable).with_name("privex"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
            return response.status == 200 and json.load(response)["status"] == "ok"
    except OSError:
        return False


def time_to_healthy(instance: Path, timeout: float = 180) -> float:
    port = _free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PRIVEX_INSTANCE_PATH": str(instance), "PRIVEX_LOG_LEVEL": "WARNING"})
    started = time.perf_counter()
    process = subprocess.Popen([PRIVEX, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while not _healthy(port):
            if process.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError("privex serve did not become healthy")
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def run() -> str:
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder) / "instance"
        cold = time_to_healthy(instance)
        warm = [time_to_healthy(instance) for _ in range(3)]
    return ("\n### Start-up of `privex serve` (until /api/v1/health is all ok)\n\n"
            "| start | seconds |\n|---|---|\n"
            f"| cold (new instance folder: initdb + migrations) | {cold:.1f} |\n"
            f"| warm (median of 3) | {statistics.median(warm):.1f} |\n")
