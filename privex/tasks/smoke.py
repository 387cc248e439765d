"""A task that proves the worker round-trip: it runs inside the Flask app context and reaches the database."""

from __future__ import annotations

import os

import sqlalchemy as sa
from celery import shared_task
from flask import current_app

from privex.extensions import db


@shared_task(name="privex.smoke.ping")
def ping(payload: str = "ping") -> dict:
    database = db.session.execute(sa.text("SELECT current_database()")).scalar_one()
    db.session.rollback()
    return {"echo": payload, "app": current_app.name, "database": database, "pid": os.getpid()}
