"""Pooled PostgreSQL connections (privex/pooling.py): a request never gets a connection whose backend is gone, and a
connection in use a moment ago costs no round trip to check.

Each test builds its own app, so its pool is its own and is not bound to the rolled-back test transaction."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from privex.extensions import db
from privex.pooling import check_connections


def backend_pids(app) -> set[int]:
    """The PostgreSQL backends of ``app``'s pool (each connection asked once: a pool of one here)."""
    with app.app_context():
        pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        db.session.remove()
    return {pid}


def terminate(services, pids: set[int]) -> None:
    """End these backends as a restart or an operator's pg_terminate_backend does, and wait until they are gone."""
    engine = sa.create_engine(services["database_url"].replace("postgresql://", "postgresql+psycopg://", 1),
                              poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        for pid in pids:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while connection.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                                 {"pids": list(pids)}).scalar() and time.monotonic() < deadline:
            time.sleep(0.02)
    engine.dispose()


@pytest.fixture()
def one_connection_app(app, make_app):
    """An app whose pool holds one connection, so every request gets the same one back (``app``: the migrated
    schema)."""
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})
    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_request_after_the_database_ended_the_pools_connection_is_answered_on_a_new_one(
        one_connection_app, services):
    before = backend_pids(one_connection_app)
    terminate(services, before)

    # Used a moment ago, so no query checks it: its socket says the backend is gone.
    response = one_connection_app.test_client().get("/api/v1/public/bots/bot_doesnotexist")
    assert response.status_code == 404, response.get_data(as_text=True)  # not a 500 from a dead connection
    assert response.get_json()["message"] == "This chatbot does not exist or is not live."
    assert backend_pids(one_connection_app).isdisjoint(before)


def test_a_connection_in_use_a_moment_ago_is_not_pinged_one_idle_longer_is_and_a_silent_dead_one_is_replaced(
        one_connection_app, services, monkeypatch):
    with one_connection_app.app_context():
        engine = db.engine
    pings = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(1) or real_ping(connection))

    first = backend_pids(one_connection_app)
    assert backend_pids(one_connection_app) == first and pings == []  # the same connection, no extra round trip

    check_connections(engine, ping_after_idle=0)  # now every checkout counts as long idle
    assert backend_pids(one_connection_app) == first and len(pings) >= 1  # asked, answered, kept

    # A connection a firewall dropped says nothing on its socket: only the ping finds it, and the pool replaces it.
    monkeypatch.setattr("privex.pooling._says_something", lambda connection: False)
    terminate(services, first)
    assert backend_pids(one_connection_app).isdisjoint(first)


def test_as_many_busy_threads_as_a_web_worker_runs_reuse_their_connections_instead_of_opening_new_ones(app, make_app):
    import threading

    threads = 8
    busy = make_app(WEB_THREADS=threads)
    together = threading.Barrier(threads)

    def backends_of_one_round() -> set[int]:
        seen, lock = set(), threading.Lock()

        def request():
            with busy.app_context():
                pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
                together.wait(timeout=30)  # all of them hold a connection at once
                db.session.remove()
            with lock:
                seen.add(pid)

        workers = [threading.Thread(target=request) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        return seen

    try:
        first = backends_of_one_round()
        assert len(first) == threads
        assert backends_of_one_round() == first  # each connection was kept, none closed and opened again
    finally:
        with busy.app_context():
            db.engine.dispose()


def test_an_operator_who_chooses_another_pool_class_gets_it(app, make_app):
    unpooled = make_app(SQLALCHEMY_ENGINE_OPTIONS={"poolclass": sa.pool.NullPool})
    first = backend_pids(unpooled)
    assert backend_pids(unpooled) != first  # no pool: a new connection every time, and no error about its size


def test_a_forked_process_opens_its_own_connection_and_leaves_the_parents_alone(one_connection_app):
    import os

    parent = backend_pids(one_connection_app)  # the pool now holds a connection
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: one query, its backend's pid to the parent, and out
        try:
            os.write(write, str(backend_pids(one_connection_app).pop()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        in_child = int(answer.read() or 0)
    os.waitpid(child, 0)
    assert in_child and {in_child}.isdisjoint(parent)  # not the parent's socket
    assert backend_pids(one_connection_app) == parent  # and the parent's connection still works, untouched
