"""``create_app``: the one place that wires settings, services, extensions, blueprints and plugins."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import platformdirs
import redis
from flask import Flask, send_from_directory
from flask_cors import CORS

from privex import embedded, pooling, urls
from privex.api import bodies, register_blueprints
from privex.api.errors import Api
from privex.config import Defaults, settings_from_env
from privex.extensions import PrivexState, db, limiter, login_manager, migrate
from privex.logs import configure_logging, init_request_ids
from privex.plugins import load_plugins

PACKAGE = Path(__file__).resolve().parent  # templates/, static/ and migrations/ ship inside it, in the wheel too
MIGRATIONS = PACKAGE / "migrations"
RECURSION_LIMIT = 1000  # CPython's default


def default_instance_path() -> Path:
    """``instance/`` of the source checkout when running from one (``make run``), else the user's data folder
    (``~/.local/share/privex`` on Linux): an installed wheel has no checkout, and the folder must not depend on the
    directory each process (web server, workers, ``privex db``) happens to start in."""
    checkout = PACKAGE.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / "instance"
    return Path(platformdirs.user_data_dir("privex", appauthor=False))


def create_app(config: dict | None = None, *, plugins=()) -> Flask:
    """Build the app. ``config`` overrides the environment (tests pass theirs); ``plugins`` are extra plugin
    objects registered after the installed ones."""
    settings = {**settings_from_env(), **(config or {})}
    instance_path = Path(settings.get("INSTANCE_PATH") or default_instance_path()).resolve()
    app = Flask("privex", instance_path=str(instance_path))  # templates/ and static/ beside this module
    app.config.from_object(Defaults)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_MB"]) * 1024 * 1024
    urls.init_app(app)  # before anything starts: a bad PRIVEX_PUBLIC_URL stops the app with the reason
    configure_logging(app.config["LOG_LEVEL"])
    instance_path.mkdir(parents=True, exist_ok=True)
    _resolve_services(app)
    _secret_key(app)

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = pooling.engine_options(app.config)
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            pooling.check_connections(engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS), compare_type=True)
    import privex.models  # noqa: F401  (registers every model on db.metadata)

    login_manager.init_app(app)
    login_manager.login_view = "web.auth.login"
    import privex.auth.sessions  # noqa: F401  (registers the user loader)
    app.config.setdefault("RATELIMIT_STORAGE_URI", embedded.limiter_url(app.config["REDIS_URL"]))
    limiter.init_app(app)
    CORS(app, resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
         expose_headers=["X-Request-ID", "X-Pagination", "Retry-After"])
    init_request_ids(app)

    api = Api(app)
    app.extensions["privex_api"] = api
    bodies.init_app(app)
    api_blueprints = register_blueprints(api)
    _serve_swagger_assets(app)

    from privex.web import init_web

    init_web(app, csrf_exempt=api_blueprints)
    from privex.admin import init_admin

    init_admin(app)
    bodies.close_uploads(app)  # after htmx-flask, which sets a request class of its own

    from privex.tasks import init_celery

    app.extensions["privex"] = PrivexState(
        plugins=load_plugins(app.config.get("LOAD_PLUGINS"), app.config["TRACE_PLUGINS"], extra=plugins),
        redis=redis.Redis.from_url(app.config["REDIS_URL"], decode_responses=True),
        celery=init_celery(app),
    )
    app.extensions["celery"] = app.extensions["privex"].celery
    app.extensions["privex"].plugins.manager.hook.privex_startup(app=app)
    _restore_the_recursion_limit()
    return app


def _restore_the_recursion_limit() -> None:
    """Put back CPython's recursion limit, which importing eth-account (wallet sign-in) raises for the whole process:
    its dependency py_ecc calls ``sys.setrecursionlimit(100000)`` at import. With that limit the interpreter's guard
    never trips before C code recursing on the thread's 8 MB stack overflows it: a JSON body nested 100,000 deep made
    the json decoder crash the gunicorn worker with SIGSEGV, and every request on its threads with it. With the
    default, deep recursion anywhere is a RecursionError (a 500 for one request) instead of a dead process; bodies are
    bounded before anything recursive reads them (``privex.api.bodies``). Called last, after every import."""
    import privex.auth.wallets.evm  # noqa: F401  (the import that raises it, whatever imported it first)

    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def _resolve_services(app: Flask) -> None:
    """Use DATABASE_URL / REDIS_URL when set; otherwise start (or join) the embedded servers."""
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = embedded.postgres_url(Path(app.instance_path) / "pgdata")
        app.config["EMBEDDED_DATABASE"] = True
    else:
        app.config["SQLALCHEMY_DATABASE_URI"] = _psycopg3(app.config["SQLALCHEMY_DATABASE_URI"])
    if not app.config.get("REDIS_URL"):
        app.config["REDIS_URL"] = embedded.redis_url(Path(app.instance_path) / "redis")
        app.config["EMBEDDED_REDIS"] = True


def _psycopg3(url: str) -> str:
    """Accept the usual ``postgresql://`` / ``postgres://`` URLs and drive them with psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def _secret_key(app: Flask) -> None:
    """Without PRIVEX_SECRET_KEY, keep a random key in the instance folder so every process and restart agrees."""
    if app.config.get("SECRET_KEY"):
        return
    path = Path(app.instance_path) / "secret_key"
    if not path.exists():
        # Written beside and hard-linked into place: atomic, and the first of several starting processes wins.
        draft = path.with_name(f".secret_key.{os.getpid()}")
        draft.touch(mode=0o600)
        draft.write_text(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    app.config["SECRET_KEY"] = path.read_text().strip()


def _serve_swagger_assets(app: Flask) -> None:
    """Serve Swagger UI from the installed swagger-ui-bundle package, so /api/docs works with no internet."""
    from swagger_ui_bundle import swagger_ui_path

    @app.get("/api/docs/assets/<path:filename>")
    def swagger_assets(filename):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)
