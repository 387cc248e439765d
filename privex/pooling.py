"""The pool of PostgreSQL connections: as large as the threads using it (``engine_options``), and how a pooled
connection is checked before a request uses it: without a round trip when it was in use a moment ago.

SQLAlchemy's ``pool_pre_ping`` sends a query on every checkout, so every request (and a chat message, which checks a
connection out twice) paid a round trip to PostgreSQL for nothing. Here, as HikariCP does with its "alive bypass
window", a connection returned to the pool less than ``PING_AFTER_IDLE_SECONDS`` ago is trusted without a query,
unless its socket says otherwise: a backend that was terminated (``pg_terminate_backend``, a restart, a crash)
sends its error and closes the socket, so the socket is readable while the connection is idle, which costs one
``poll`` to see. Only then, or after a longer idle time (a connection silently dropped by a firewall or NAT says
nothing on its socket), is a query sent; a connection that fails it is replaced before the request gets it
(SQLAlchemy retries the checkout with a new connection when a ``checkout`` listener raises
``DisconnectionError``).
"""

from __future__ import annotations

import os
import select
import time
import weakref

import sqlalchemy as sa

PING_AFTER_IDLE_SECONDS = 10.0
POOL_SIZE = 5  # SQLAlchemy's default: connections a pool keeps, at least
MAX_OVERFLOW = 10  # connections opened beyond them at a peak, and closed when returned (SQLAlchemy's default)
_RETURNED = "privex.returned"  # in a connection record's ``info``, which is emptied when its connection is replaced


def engine_options(config) -> dict:
    """The engine's options: ``SQLALCHEMY_ENGINE_OPTIONS`` as configured, the pool kept as large as a web worker's
    threads (``WEB_THREADS``) unless it says otherwise. A connection taken beyond the pool's size is closed when it is
    returned, so a pool of 5 under 8 busy threads opened and closed PostgreSQL connections all the time: a backend
    started for a few statements, every time (a chat message cost 1.3 ms more of PostgreSQL's CPU; BENCHMARKS.md).
    A pool only opens connections as they are needed: a Celery worker's process, one task at a time, keeps one."""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if "poolclass" not in options:  # another pool class (NullPool, StaticPool) may not take these
        options.setdefault("pool_size", max(POOL_SIZE, int(config.get("WEB_THREADS") or 0)))
        options.setdefault("max_overflow", MAX_OVERFLOW)
    return options


def check_connections(engine: sa.Engine, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check ``engine``'s pooled connections on checkout as the module says (instead of ``pool_pre_ping``), and
    give a forked child a pool of its own (``_forget_in_child``)."""
    _forget_in_child(engine)

    @sa.event.listens_for(engine, "checkin")
    def returned(dbapi_connection, record) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.get(_RETURNED)
        if since is None:
            return  # connected just now
        if time.monotonic() - since < ping_after_idle and not _says_something(dbapi_connection):
            return
        if not _answers(engine, dbapi_connection):
            raise sa.exc.DisconnectionError("the pooled connection to PostgreSQL is gone; connecting again")


def _says_something(dbapi_connection) -> bool:
    """Whether an idle connection has news: closed, broken, or data waiting on its socket (a terminated backend's
    error and end of stream; rarely a notice, which the ping then reads)."""
    if dbapi_connection.closed or getattr(dbapi_connection, "broken", False):
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _answers(engine: sa.Engine, dbapi_connection) -> bool:
    """A round trip: True when PostgreSQL answered, False when the connection is gone (any other error is raised)."""
    if dbapi_connection.closed:
        return False
    try:
        return engine.dialect.do_ping(dbapi_connection)
    except engine.dialect.loaded_dbapi.Error as error:
        if engine.dialect.is_disconnect(error, dbapi_connection, None) or dbapi_connection.closed:
            return False
        raise


def _forget_in_child(engine: sa.Engine) -> None:
    """A process forked after its parent used ``engine`` (a Celery pool process, a gunicorn worker of a preloaded
    app) inherits the pool's connections: the same sockets as the parent's, on which two processes' statements would
    interleave. The child starts with an empty pool and leaves the inherited connections to the parent, as
    SQLAlchemy advises (``dispose(close=False)``)."""
    reference = weakref.ref(engine)

    def forget() -> None:
        inherited = reference()
        if inherited is not None:
            inherited.dispose(close=False)

    os.register_at_fork(after_in_child=forget)
