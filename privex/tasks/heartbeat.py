"""Workers announce themselves in Redis every few seconds; /api/v1/health reads who is alive.

Cheaper and steadier than a broadcast ``inspect ping`` on every health request: reading is one SCAN.

The same thread keeps house without a separate scheduler (no Celery beat to run and keep single): every
``HOUSEKEEPING_SECONDS`` the first worker to claim the period in Redis (``SET NX EX``) queues ``privex.housekeeping``,
so one run per period happens however many workers there are, and none while there are none; and each worker runs it
once as it starts.

Each beat also keeps the worker's reserved tasks recoverable, and puts back those of dead workers
(privex/tasks/recovery.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis as redis_lib

if TYPE_CHECKING:
    from privex.tasks.recovery import Reservations

log = logging.getLogger(__name__)

PREFIX = "privex:workers:"
INTERVAL = 10
TTL = 30
HOUSEKEEPING_KEY = "privex:housekeeping"
HOUSEKEEPING_SECONDS = 600


class Heartbeat:
    def __init__(self, client: redis_lib.Redis, hostname: str, housekeeping: Callable[[], object] | None = None,
                 reservations: Reservations | None = None):
        self.client = client
        self.key = PREFIX + hostname
        self.hostname = hostname
        self.housekeeping = housekeeping
        self.reservations = reservations
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="privex-heartbeat", daemon=True)

    def _run(self) -> None:
        starting = True
        while not self._stopped.is_set():
            self._recover()
            try:
                self.client.set(self.key, str(time.time()), ex=TTL)
                if self.housekeeping is not None and self.housekeeping_due(starting=starting):
                    self.housekeeping()
                starting = False
            except redis_lib.RedisError:
                pass  # Redis briefly away: the key expires and health reports it, which is the truth
            except Exception:  # noqa: BLE001 - the broker refused the task: the next period tries again
                log.exception("could not queue the housekeeping task")
            self._stopped.wait(INTERVAL)

    def _recover(self) -> None:
        if self.reservations is None:
            return
        try:
            self.reservations.beat()
        except Exception:  # noqa: BLE001 - Redis or the broker briefly away: the next beat tries again
            log.warning("could not check for the tasks of stopped workers", exc_info=True)

    def housekeeping_due(self, *, starting: bool = False) -> bool:
        """Whether this worker claimed the current housekeeping period (at most one worker does per period).

        A worker that is starting always runs it, at once, and claims the period: a worker that died may have left
        documents `processing`, and the next one to start puts them back in line without waiting for the period."""
        if starting:
            self.client.set(HOUSEKEEPING_KEY, self.hostname, ex=HOUSEKEEPING_SECONDS)
            return True
        return bool(self.client.set(HOUSEKEEPING_KEY, self.hostname, nx=True, ex=HOUSEKEEPING_SECONDS))

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        try:
            self.client.delete(self.key)
        except redis_lib.RedisError:
            pass


def start_heartbeat(client: redis_lib.Redis, hostname: str, housekeeping: Callable[[], object] | None = None,
                    reservations: Reservations | None = None) -> Heartbeat:
    return Heartbeat(client, hostname, housekeeping, reservations).start()


def live_workers(client: redis_lib.Redis) -> list[str]:
    keys = (key.decode() if isinstance(key, bytes) else key for key in client.scan_iter(PREFIX + "*"))
    return [key[len(PREFIX):] for key in keys]
