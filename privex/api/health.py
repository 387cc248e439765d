"""GET /api/v1/health: is the database, Redis and at least one Celery worker answering?"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from privex.extensions import db, get_redis, limiter
from privex.tasks.heartbeat import live_workers
from privex.tenancy.context import public

blp = Blueprint("health", __name__, url_prefix="/health", description="Service health")


class ComponentSchema(Schema):
    ok = fields.Boolean(required=True)
    latency_ms = fields.Float()
    detail = fields.String()


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"description": "`ok` when every component is ok, else `degraded`"})
    database = fields.Nested(ComponentSchema, required=True)
    redis = fields.Nested(ComponentSchema, required=True)
    worker = fields.Nested(ComponentSchema, required=True)


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as error:  # a failing component is what this endpoint reports, not an error of its own
        return {"ok": False, "detail": f"{type(error).__name__}: {error}"[:300]}
    result = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail:
        result["detail"] = detail
    return result


def _database():
    db.session.execute(sa.text("SELECT 1"))
    db.session.rollback()


def _redis():
    get_redis().ping()


def _worker():
    workers = live_workers(get_redis())
    if not workers:
        raise RuntimeError("no Celery worker has reported in the last 30 s; start one with `privex worker`")
    return ", ".join(sorted(workers))


@blp.route("")
@public
class Health(MethodView):
    decorators = [limiter.exempt]

    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="At least one component is down")
    def get(self):
        """Report database, Redis and worker status

        Answers 503 when any component is down, so a load balancer can take the instance out of rotation."""
        report = {"database": _check(_database), "redis": _check(_redis), "worker": _check(_worker)}
        healthy = all(component["ok"] for component in report.values())
        report["status"] = "ok" if healthy else "degraded"
        return report, (200 if healthy else 503)
