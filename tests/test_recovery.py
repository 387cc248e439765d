"""A dead worker's reserved tasks go back in the queue at once (privex/tasks/recovery.py), on the real Redis broker.

A "worker" here is a kombu channel that takes a message without acknowledging it, as Celery's worker does with
acks_late; it "dies" without giving it back (a SIGKILLed worker cannot).
"""

from __future__ import annotations

import pytest
import redis as redis_lib

from privex.extensions import state
from privex.tasks.recovery import ALIVE, HELD, HOLDERS, Broker, Reservations


@pytest.fixture()
def celery(make_app):
    return state(make_app(CELERY_TASK_ALWAYS_EAGER=False)).celery


@pytest.fixture()
def client(services):
    return redis_lib.Redis.from_url(services["redis_url"])


def reserve(celery, reservations: Reservations, *, die: bool):
    """Take the next message off the queue unacknowledged, recording it; returns (channel, message)."""
    connection = celery.connection_for_read()
    channel = connection.default_channel
    message = channel.basic_get("celery")
    assert message is not None, "the queue is empty"
    reservations.hold(message.delivery_tag, message.headers["id"])
    if die:
        channel.qos.restore_at_shutdown = False  # killed: nothing gives its messages back
        connection.close()
    return channel, message


def queued_task_ids(celery) -> list[str]:
    with celery.connection_for_read() as connection:
        channel = connection.default_channel
        ids = []
        while (message := channel.basic_get("celery", no_ack=True)) is not None:
            ids.append(message.headers["id"])
        return ids


def test_the_tasks_of_a_worker_whose_heartbeat_stopped_are_put_back_once(celery, client, caplog):
    broker = Broker(celery)
    dead = Reservations(client, "celery@a/101-aaaaaa", broker)
    alive = Reservations(client, "celery@b/202-bbbbbb", broker)
    first, second, third = (celery.send_task("privex.smoke.ping", args=[str(n)]).id for n in range(3))
    alive.beat()
    reserve(celery, dead, die=True)  # the first task, held by a worker that never beats again
    _, held = reserve(celery, alive, die=False)  # the second, held by a live worker

    alive.beat()
    Reservations(client, "celery@c/303-cccccc", broker).beat()  # another live worker: each message once

    # The dead worker's task is next in line again; the live worker's is left alone.
    assert queued_task_ids(celery) == [first, third]
    assert client.exists(HELD + "celery@a/101-aaaaaa") == 0
    assert client.smembers(HOLDERS) == {b"celery@b/202-bbbbbb"}
    assert [record.getMessage() for record in caplog.records if record.levelname == "WARNING"] == [
        "worker celery@a/101-aaaaaa stopped without finishing 1 task(s); they are back in the queue"]
    # What the live worker finished is forgotten at its next beat.
    held.ack()
    alive.beat()
    assert client.hlen(alive.held_key) == 0


def test_a_worker_started_in_place_of_a_dead_one_recovers_it_at_once(celery, client):
    broker = Broker(celery)
    dead = Reservations(client, "celery@a/101-aaaaaa", broker)
    task = celery.send_task("privex.smoke.ping", args=["x"]).id
    dead.beat()  # its heartbeat key has not expired yet
    reserve(celery, dead, die=True)
    assert client.exists(ALIVE + "celery@a/101-aaaaaa")

    Reservations(client, "celery@b/202-bbbbbb", broker, replaces=101).beat()  # another host's pid 101: not it
    assert queued_task_ids(celery) == []
    Reservations(client, "celery@a/303-cccccc", broker, replaces=101).beat()
    assert queued_task_ids(celery) == [task]
