"""Evaluation task: a thin wrapper over ``privex.services.evaluation_runs`` taking the run's id."""

from __future__ import annotations

import logging
import uuid

from celery import shared_task

from privex.services import evaluation_runs
from privex.services.errors import NotFound

log = logging.getLogger(__name__)


@shared_task(name="privex.run_evaluation")
def run_evaluation(run_id: str) -> str:
    """Score a stored run, its progress written after each question; returns its final status. An unexpected error
    marks the run failed, saying so, and is re-raised for the log; a run deleted meanwhile ends the task quietly."""
    try:
        return evaluation_runs.execute(uuid.UUID(run_id)).status
    except NotFound:
        log.info("evaluation run deleted before it ran: nothing to do", extra={"run_id": run_id})
        return "deleted"
    except Exception as error:
        evaluation_runs.fail_unexpectedly(uuid.UUID(run_id), error)
        raise
