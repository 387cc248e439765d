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


@shared_task(name="privex.ingest_documents", autoretry_for=(ingestion.TransientFailure,), retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)
def ingest_documents(document_ids: list[str], force: bool = False) -> dict[str, str]:
    """Index small documents of one knowledge base together (``ingestion.ingest_documents``); returns each id's
    final status, ``deleted`` for those deleted before or while they were indexed. A transient failure retries the
    batch (its indexed documents, unchanged, are then left alone unless ``force``).

    An unexpected error outside any one document's work (a lost database connection) marks every document of the
    batch still pending or processing failed, saying so, and is re-raised for the log."""
    try:
        return ingestion.ingest_documents(document_ids, force=force)
    except ingestion.TransientFailure:
        raise
    except Exception as error:
        for document_id in document_ids:
            ingestion.fail_unexpectedly(uuid.UUID(document_id), error)
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
