"""Celery: the app bound to Flask, and thin tasks (they take ids, call services, and do not swallow errors).

Tasks are declared with ``@shared_task`` so they bind to the Celery app of the running Flask app.
"""

from __future__ import annotations

import importlib
import logging

from celery import Celery, Task, signals

from privex.embedded import celery_url

log = logging.getLogger(__name__)

TASK_MODULES = ["privex.tasks.smoke", "privex.tasks.ingestion", "privex.tasks.housekeeping",
                "privex.tasks.evaluation"]


def init_celery(app) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    broker = celery_url(app.config["REDIS_URL"])
    celery.conf.update(
        broker_url=broker,
        result_backend=broker,
        imports=TASK_MODULES,
        task_acks_late=True,  # a task whose worker dies is delivered again...
        task_reject_on_worker_lost=True,
        broker_transport_options={"visibility_timeout": 3600},  # ...after this many seconds unacknowledged
        result_expires=86400,
        task_always_eager=app.config.get("CELERY_TASK_ALWAYS_EAGER", False),
        task_eager_propagates=True,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        privex_redis_url=app.config["REDIS_URL"],
    )
    celery._privex_flask_app = app  # for the signal handlers below, which get no app
    celery.set_default()
    for module in TASK_MODULES:  # registers their shared tasks on this app (web processes queue them by name)
        importlib.import_module(module)
    return celery


@signals.worker_process_init.connect(dispatch_uid="privex-warm-up")
def _warm_up_in_the_background(**kwargs):
    """Each pool process loads the embedding models and the tokenizer as it starts, not during its first document.

    In a thread: Celery gives a starting process 4 s (worker_proc_alive_timeout) to report in, and the model can take
    longer to load. A task that needs the model meanwhile waits for the same load (the model loads under a lock)."""
    import threading

    from celery import current_app

    from privex.warmup import warm_up

    flask_app = getattr(current_app, "_privex_flask_app", None)
    if flask_app is not None:
        threading.Thread(target=warm_up, args=(flask_app, "worker process"), name="privex-warm-up",
                         daemon=True).start()


@signals.worker_ready.connect(dispatch_uid="privex-heartbeat-start")
def _start_heartbeat(sender, **kwargs):
    import redis

    from privex.tasks.heartbeat import start_heartbeat

    client = redis.Redis.from_url(sender.app.conf.privex_redis_url)
    # Its first beat queues the housekeeping: a worker that died mid-document left it `processing`, and whichever
    # worker starts next puts it back in line.
    sender.app._privex_heartbeat = start_heartbeat(
        client, sender.hostname, housekeeping=lambda: sender.app.send_task("privex.housekeeping"),
        reservations=_reservations(sender.app, sender.hostname))


@signals.task_received.connect(dispatch_uid="privex-hold")
def _hold(sender=None, request=None, **kwargs):
    """Record each task this worker reserves, so another can put it back at once if this one dies."""
    import redis

    try:
        _reservations(sender.app, sender.hostname).hold(request.message.delivery_tag, request.id)
    except redis.RedisError:  # the visibility timeout still brings it back if this worker dies, an hour later
        log.warning("could not record a reserved task", exc_info=True, extra={"task_id": request.id})


def _reservations(celery: Celery, hostname: str):
    """This worker process's record of the tasks it holds (privex/tasks/recovery.py), made on first use."""
    import redis

    from privex.tasks.recovery import Broker, Reservations, instance_name

    if getattr(celery, "_privex_reservations", None) is None:
        celery._privex_reservations = Reservations(
            redis.Redis.from_url(celery.conf.privex_redis_url), instance_name(hostname), Broker(celery),
            replaces=celery.conf.get("privex_replaces"))
    return celery._privex_reservations


@signals.worker_shutdown.connect(dispatch_uid="privex-heartbeat-stop")
def _stop_heartbeat(sender=None, **kwargs):
    from celery import current_app

    heartbeat = getattr(current_app, "_privex_heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()
