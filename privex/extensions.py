"""Flask extensions, created unbound here and bound to an app only in ``privex.app.create_app``.

Per-app state that is not a Flask extension (the plugin manager, the Redis client, the Celery app) lives in
``app.extensions["privex"]`` as a :class:`PrivexState`; read it with :func:`state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
import sqlalchemy as sa
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from celery import Celery

    from privex.plugins import Plugins

# Constraint names are deterministic so Alembic migrations can drop and compare them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# join_transaction_mode lets the test suite run each test inside an outer transaction that it rolls back; with a
# plain engine bind (every real run) it changes nothing.
db = SQLAlchemy(model_class=Base, session_options={"join_transaction_mode": "create_savepoint"})
migrate = Migrate()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)
csrf = CSRFProtect()  # every form of the HTML side; the API's blueprints are exempt (privex.web.init_web)
htmx = Htmx()  # request.htmx in the builder's views


@dataclass
class PrivexState:
    plugins: "Plugins"
    redis: redis.Redis
    celery: "Celery"


def state(app=None) -> PrivexState:
    return (app or current_app).extensions["privex"]


def get_redis() -> redis.Redis:
    return state().redis
