"""Periodic housekeeping, queued by one worker's heartbeat every ``HOUSEKEEPING_SECONDS`` (privex/tasks/heartbeat.py)."""

from __future__ import annotations

from celery import shared_task

from privex.services import drafts
from privex.tasks.ingestion import requeue_stuck_documents


@shared_task(name="privex.housekeeping")
def housekeeping() -> dict[str, int]:
    """Re-queue documents a dead worker left `processing`; remove the uploaded files of drafts that expired."""
    return {"requeued": requeue_stuck_documents(), "draft_folders_removed": drafts.sweep_abandoned_files()}
