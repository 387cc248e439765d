"""Ingestion tasks: thin wrappers over ``privex.services.ingestion`` taking ids, retried on transient failures."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from privex.services import ingestion
from privex.services.errors import NotFound

log = logging.getLogger(__name__)


@shared_task(name="privex.ingest_document", autoretry_for=(ingestion.TransientFailure,), retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)
def ingest_document(document_id: str, force: bool = False) -> str:
    """Index one document; returns its final status. Idempotent: an unchanged indexed document is left alone.

    An unexpected error (a bug, a lost database connection) marks the document failed, saying so, and is re-raised
    for the log: a document must never stay `processing`.

    A document deleted before or while it is indexed (its knowledge base deleted with hundreds of documents queued)
    ends the task quietly: there is nothing left to index and nobody to tell."""
    try:
        return ingestion.ingest_document(uuid.UUID(document_id), force=force).status
    except ingestion.TransientFailure:
        raise
    except NotFound:
        return _deleted(document_id)
    except Exception as error:
        if not ingestion.fail_unexpectedly(uuid.UUID(document_id), error):
            return _deleted(document_id)
        raise


def _deleted(document_id: str) -> str:
    log.info("document deleted before it was indexed: nothing to do", extra={"document_id": document_id})
    return "deleted"


@shared_task(name="privex.requeue_stuck_documents")
def requeue_stuck_documents(older_than_seconds: int = 900) -> int:
    """Put documents a dead worker left `processing` back in the queue."""
    ids = ingestion.requeue_stuck(older_than_seconds)
    for document_id in ids:
        ingest_document.delay(str(document_id), force=True)
    return len(ids)
