"""Periodic housekeeping, queued by one worker's heartbeat every ``HOUSEKEEPING_SECONDS`` (privex/tasks/heartbeat.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from privex.extensions import db
from privex.services import components, drafts
from privex.tasks.ingestion import requeue_stuck_documents

log = logging.getLogger(__name__)


@shared_task(name="privex.housekeeping")
def housekeeping() -> dict[str, int | None]:
    """Re-queue documents a dead worker left `processing`; remove the uploaded files of drafts that expired; let
    the vector stores do their bounded upkeep (pgvector: fill in the keyword data of chunks stored without it).

    Each job runs even when another fails (logged, counted as None): one broken part does not stop the rest."""
    jobs = {"requeued": requeue_stuck_documents, "draft_folders_removed": drafts.sweep_abandoned_files,
            "vector_store_upkeep": components.vector_store_upkeep}
    done: dict[str, int | None] = {}
    for name, job in jobs.items():
        try:
            done[name] = job()
        except Exception:  # noqa: BLE001 - logged with its traceback; the next period tries again
            log.exception("housekeeping: %s failed", name)
            db.session.rollback()
            done[name] = None
    return done
