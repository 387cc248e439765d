"""Workers announce themselves in Redis every few seconds; /api/v1/health reads who is alive.

Cheaper and steadier than a broadcast ``inspect ping`` on every health request: reading is one SCAN.
"""

from __future__ import annotations

import threading
import time

import redis as redis_lib

PREFIX = "privex:workers:"
INTERVAL = 10
TTL = 30


class Heartbeat:
    def __init__(self, client: redis_lib.Redis, hostname: str):
        self.client = client
        self.key = PREFIX + hostname
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="privex-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.client.set(self.key, str(time.time()), ex=TTL)
            except redis_lib.RedisError:
                pass  # Redis briefly away: the key expires and health reports it, which is the truth
            self._stopped.wait(INTERVAL)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        try:
            self.client.delete(self.key)
        except redis_lib.RedisError:
            pass


def start_heartbeat(client: redis_lib.Redis, hostname: str) -> Heartbeat:
    return Heartbeat(client, hostname).start()


def live_workers(client: redis_lib.Redis) -> list[str]:
    keys = (key.decode() if isinstance(key, bytes) else key for key in client.scan_iter(PREFIX + "*"))
    return [key[len(PREFIX):] for key in keys]
