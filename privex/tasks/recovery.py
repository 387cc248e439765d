"""The tasks a dead worker had reserved go back in the queue as soon as it is known dead, not an hour later.

Celery runs with ``acks_late``: a task's message stays in the broker's ``unacked`` hash (kombu's Redis transport)
until the task ends, and kombu puts a message back in the queue only once it is older than the visibility timeout
(an hour, so that a long document is never handed to a second worker while the first still works on it). A worker
killed with SIGKILL therefore left the documents it had reserved waiting an hour.

So each worker process (an *instance*: host name, pid and a random suffix, since a restarted worker keeps its host
name and pids are reused) records the delivery tags it receives in ``privex:held:<instance>`` (and its name in
``privex:holders``) and keeps ``privex:alive:<instance>`` from expiring at every heartbeat
(privex/tasks/heartbeat.py). At every beat, each worker puts back the still unacknowledged messages of the instances
whose key expired (``TTL`` after their last beat) and drops from its own record the tags that were acknowledged. A worker started in place of one that died
(``privex worker --replaces PID``, as `privex serve`'s supervisor does, having seen it die) recovers that one at once.

Putting back is kombu's own ``restore_by_tag``, one transaction per message: two workers recovering the same dead one
put each message back once. The cost of the shorter wait: a live worker cut off from Redis for longer than ``TTL`` is
taken for dead, and its running tasks are delivered again while it finishes them; tasks are idempotent (ingestion
also takes the document's row lock before it swaps chunks), as they already had to be for the visibility timeout.
"""

from __future__ import annotations

import logging
import os
import secrets

import redis as redis_lib

from privex.tasks.heartbeat import TTL

log = logging.getLogger(__name__)

HELD = "privex:held:"
ALIVE = "privex:alive:"
HOLDERS = "privex:holders"  # the instances with a HELD hash: read every beat, where a SCAN would walk every key


def instance_name(hostname: str) -> str:
    return f"{hostname}/{os.getpid()}-{secrets.token_hex(3)}"


class Broker:
    """The broker's record of unacknowledged messages, read and restored through kombu (its key names, its prefix)."""

    def __init__(self, celery):
        self.celery = celery

    def unacknowledged(self, tags: list[str]) -> list[str]:
        """Those of ``tags`` whose message is still unacknowledged."""
        with self.celery.connection_for_write() as connection:
            channel = connection.default_channel
            pipeline = channel.client.pipeline(transaction=False)
            for tag in tags:
                pipeline.hexists(channel.unacked_key, tag)
            return [tag for tag, held in zip(tags, pipeline.execute()) if held]

    def restore(self, tags: list[str]) -> None:
        """Put these messages back at the head of their queue (they were next in line when they were reserved)."""
        with self.celery.connection_for_write() as connection:
            qos = connection.default_channel.qos
            for tag in tags:
                qos.restore_by_tag(tag)


class Reservations:
    """What one worker process holds, and the recovery of what dead ones held."""

    def __init__(self, client: redis_lib.Redis, instance: str, broker: Broker, replaces: int | None = None):
        self.client, self.instance, self.broker = client, instance, broker
        self.held_key = HELD + instance
        # The instance it was started in place of: same host name, that pid, any suffix.
        self.replaced = f"{instance.split('/', 1)[0]}/{replaces}-" if replaces else None

    def hold(self, delivery_tag: str, task_id: str) -> None:
        self.client.pipeline(transaction=False).hset(self.held_key, delivery_tag, task_id).sadd(
            HOLDERS, self.instance).execute()

    def beat(self) -> None:
        self.client.set(ALIVE + self.instance, "1", ex=TTL)
        self._forget_acknowledged()
        for instance in self._dead():
            self._recover(instance)

    def _forget_acknowledged(self) -> None:
        tags = [_text(tag) for tag in self.client.hkeys(self.held_key)]
        if tags:
            finished = set(tags) - set(self.broker.unacknowledged(tags))
            if finished:
                self.client.hdel(self.held_key, *finished)

    def _dead(self) -> list[str]:
        instances = [_text(instance) for instance in self.client.smembers(HOLDERS)]
        return [instance for instance in instances if instance != self.instance and (
            (self.replaced and instance.startswith(self.replaced)) or not self.client.exists(ALIVE + instance))]

    def _recover(self, instance: str) -> None:
        held = {_text(tag): _text(task_id) for tag, task_id in self.client.hgetall(HELD + instance).items()}
        pending = self.broker.unacknowledged(list(held))
        self.broker.restore(pending)
        self.client.pipeline(transaction=False).delete(HELD + instance).srem(HOLDERS, instance).execute()
        if pending:
            log.warning("worker %s stopped without finishing %d task(s); they are back in the queue", instance,
                        len(pending), extra={"worker": instance, "task_ids": sorted(held[tag] for tag in pending)})


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
