"""GET /api/v1/health reports each component honestly and never fails itself."""

from __future__ import annotations

import time

from privex.extensions import get_redis
from privex.tasks.heartbeat import HOUSEKEEPING_KEY, PREFIX, Heartbeat, live_workers, start_heartbeat


def test_without_a_worker_health_is_degraded_and_says_how_to_fix_it(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert not body["worker"]["ok"] and "privex worker" in body["worker"]["detail"]


def test_with_a_live_worker_everything_is_ok(app, client):
    with app.app_context():
        heartbeat = start_heartbeat(get_redis(), "celery@test-host")
        try:
            response = client.get("/api/v1/health")
        finally:
            heartbeat.stop()
        assert live_workers(get_redis()) == []  # a stopped worker is gone at once, not after the TTL
    assert response.status_code == 200
    body = response.get_json()
    assert body == {**body, "status": "ok"}
    assert body["worker"] == {**body["worker"], "ok": True, "detail": "celery@test-host"}


def test_a_worker_that_stopped_beating_drops_out(app, client):
    with app.app_context():
        get_redis().set(PREFIX + "celery@dead", "1", px=1)  # its last beat has just expired
    time.sleep(0.01)
    assert client.get("/api/v1/health").get_json()["worker"]["ok"] is False


def test_a_dead_redis_is_reported_not_raised(make_app, app):
    # Only the app's Redis client is broken; the rate limiter (one per process) keeps the suite's storage.
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0",
                      RATELIMIT_STORAGE_URI=app.config["RATELIMIT_STORAGE_URI"])
    response = broken.test_client().get("/api/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False and "Connection" in body["redis"]["detail"]
    assert body["worker"]["ok"] is False


def test_one_worker_per_period_queues_the_housekeeping(app):
    queued = []
    with app.app_context():
        first = Heartbeat(get_redis(), "celery@one", housekeeping=lambda: queued.append("one"))
        second = Heartbeat(get_redis(), "celery@two", housekeeping=lambda: queued.append("two"))
        assert first.housekeeping_due() and not second.housekeeping_due() and not first.housekeeping_due()
        get_redis().delete(HOUSEKEEPING_KEY)  # the period is over
        beating = second.start()
        try:
            wait = time.monotonic() + 10
            while not queued and time.monotonic() < wait:
                time.sleep(0.01)
        finally:
            beating.stop()
    assert queued == ["two"]


def test_a_worker_that_starts_runs_the_housekeeping_even_inside_anothers_period(app):
    queued = []
    with app.app_context():
        assert Heartbeat(get_redis(), "celery@one").housekeeping_due()  # one's period
        beating = Heartbeat(get_redis(), "celery@restarted", housekeeping=lambda: queued.append("restarted")).start()
        try:
            wait = time.monotonic() + 10
            while not queued and time.monotonic() < wait:
                time.sleep(0.01)
        finally:
            beating.stop()
        assert get_redis().get(HOUSEKEEPING_KEY) == "celery@restarted"  # and the others wait for the next period
    assert queued == ["restarted"]


def test_housekeeping_runs_every_job_even_when_one_fails(app, database, monkeypatch):
    from privex.tasks import housekeeping as module

    def broken():
        raise RuntimeError("the database is read-only")

    monkeypatch.setattr(module, "requeue_stuck_documents", broken)
    monkeypatch.setattr(module.drafts, "sweep_abandoned_files", lambda: 3)
    with app.test_request_context():
        assert module.housekeeping() == {"requeued": None, "draft_folders_removed": 3, "vector_store_upkeep": 0}
