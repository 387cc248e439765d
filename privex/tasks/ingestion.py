"""Ingestion tasks: thin wrappers over ``privex.services.ingestion`` taking ids, retried on transient failures."""

from __future__ import annotations

import uuid

from celery import shared_task

from privex.services import ingestion


@shared_task(name="privex.ingest_document", autoretry_for=(ingestion.TransientFailure,), retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)
def ingest_document(document_id: str, force: bool = False) -> str:
    """Index one document; returns its final status. Idempotent: an unchanged indexed document is left alone.

    An unexpected error (a bug, a lost database connection) marks the document failed, saying so, and is re-raised
    for the log: a document must never stay `processing`."""
    try:
        return ingestion.ingest_document(uuid.UUID(document_id), force=force).status
    except ingestion.TransientFailure:
        raise
    except Exception as error:
        ingestion.fail_unexpectedly(uuid.UUID(document_id), error)
        raise


@shared_task(name="privex.requeue_stuck_documents")
def requeue_stuck_documents(older_than_seconds: int = 900) -> int:
    """Put documents a dead worker left `processing` back in the queue."""
    ids = ingestion.requeue_stuck(older_than_seconds)
    for document_id in ids:
        ingest_document.delay(str(document_id), force=True)
    return len(ids)
