"""Fixtures shared by the core's tests (tests/) and every plugin's tests (plugins/*/tests).

One real PostgreSQL (with pgvector) and one real Redis per test session: ``DATABASE_URL`` / ``REDIS_URL`` when set,
otherwise embedded servers in a temporary folder. The schema is built by the migrations, so every run tests them.
Each test runs inside a transaction that is rolled back at its end, and Redis (a database index used only by
tests) is flushed after each test. Celery is eager in ``app``; end-to-end tests start real worker processes.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis as redis_lib

from privex import embedded
from privex.app import create_app
from privex.extensions import db as _db

TEST_REDIS_DB = 15


def _test_redis_url(url: str) -> str:
    """The same server, on the database index reserved for tests."""
    from urllib.parse import urlsplit, urlunsplit

    if url.startswith("unix://"):
        return url.split("?", 1)[0] + f"?db={TEST_REDIS_DB}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{TEST_REDIS_DB}"))


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """URLs of the PostgreSQL and Redis this session tests against, and whether they are embedded."""
    folder = tmp_path_factory.mktemp("services")
    database_url = os.environ.get("DATABASE_URL") or embedded.postgres_url(folder / "pgdata", "privex_test")
    redis_url = _test_redis_url(os.environ.get("REDIS_URL") or embedded.redis_url(folder / "redis"))
    return {"database_url": database_url, "redis_url": redis_url, "folder": folder,
            "embedded_database": not os.environ.get("DATABASE_URL")}


@pytest.fixture(scope="session")
def base_config(services, tmp_path_factory):
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": services["database_url"],
        "REDIS_URL": services["redis_url"],
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "CELERY_TASK_ALWAYS_EAGER": True,
        "WTF_CSRF_ENABLED": False,
        "LOAD_PLUGINS": None,
        "TRACE_PLUGINS": False,
        "CORS_ORIGINS": ["https://allowed.example"],
    }


@pytest.fixture(scope="session")
def make_app(base_config):
    """Build another app with some settings changed: ``make_app(LOAD_PLUGINS=[...])``."""

    made = []

    def make(plugins=(), **overrides):
        made.append(create_app({**base_config, **overrides}, plugins=plugins))
        return made[-1]

    yield make
    for application in made:  # close pooled connections before the servers stop
        with application.app_context():
            _db.engine.dispose()


@pytest.fixture(scope="session")
def app(make_app):
    application = make_app()
    with application.app_context():
        from flask_migrate import upgrade

        upgrade()
    return application


@contextmanager
def rolled_back(application):
    """Run a block inside an outer transaction, rolled back at the end: commits inside become savepoints.

    Flask-SQLAlchemy picks the engine per app from ``db._app_engines``; binding that entry to one connection is
    the only way to make every session of the app join the outer transaction."""
    with application.app_context():
        engines = _db._app_engines[application]
        engine = engines[None]
        connection = engine.connect()
        transaction = connection.begin()
        engines[None] = connection
        try:
            yield _db
        finally:
            _db.session.remove()
            engines[None] = engine
            transaction.rollback()
            connection.close()


@pytest.fixture()
def database(app):
    with rolled_back(app) as db:
        yield db


@pytest.fixture()
def client(app, database):
    return app.test_client()


@pytest.fixture()
def runner(app, database):
    return app.test_cli_runner()


@pytest.fixture(autouse=True)
def _flush_test_redis(services):
    yield
    redis_lib.Redis.from_url(services["redis_url"]).flushdb()


@pytest.fixture()
def subprocess_env(services, base_config):
    """Environment for a `privex` child process that uses this session's database and Redis."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRIVEX_")}
    env.update({
        "DATABASE_URL": services["database_url"],
        "REDIS_URL": services["redis_url"],
        "PRIVEX_SECRET_KEY": base_config["SECRET_KEY"],
        "PRIVEX_INSTANCE_PATH": base_config["INSTANCE_PATH"],
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture()
def privex_command():
    """How to run the `privex` console script of this interpreter."""
    return [str(Path(sys.executable).with_name("privex"))]


@pytest.fixture()
def register_plugin(app):
    """Register throwaway plugins on ``app`` for one test; they are always unregistered afterwards."""
    plugins = app.extensions["privex"].plugins
    registered: list[str] = []

    def register(plugin, name: str | None = None) -> str:
        registered.append(plugins.manager.register(plugin, name=name))
        plugins.refresh()
        return registered[-1]

    try:
        yield register
    finally:
        for name in registered:
            plugins.manager.unregister(name=name)
        plugins.refresh()


@pytest.fixture()
def scratch_database(services):
    """A fresh, empty database on the session's PostgreSQL server, dropped afterwards; yields its URL."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    name = f"privex_scratch_{os.getpid()}"
    if services["embedded_database"]:
        yield embedded.postgres_url(services["folder"] / "pgdata", name)
        embedded.drop_database(services["folder"] / "pgdata", name)
        return
    url = make_url(services["database_url"])
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        pytest.skip(f"cannot create a scratch database on DATABASE_URL's server: {error}")
    with psycopg.connect(url.set(drivername="postgresql", database=name).render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
