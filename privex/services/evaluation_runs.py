"""Stored evaluation runs of a knowledge base: start one, score it (the Celery task's work, with progress), read its
summary beside the previous finished run's, its per-question results (the failing ones alone), delete it.

``privex eval`` and the API both score through ``score_all`` and ``summarise``, question by question in order, so
the two give the same numbers for the same knowledge base and questions.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Sequence

import sqlalchemy as sa

from privex.clock import now
from privex.extensions import db, state
from privex.models import EvaluationQuestion, EvaluationRun, KnowledgeBase
from privex.plugins import NotInstalled
from privex.services.errors import Conflict, Invalid, NotFound
from privex.services.evaluation import (K_RANK, RECALL_KS, Question, corpus_ids_of, metric_names, score_question,
                                        summarise)
from privex.services.retrieval import MAX_TOP_K, MODES

log = logging.getLogger(__name__)

DEFAULT_MODES = ("vector", "keyword", "hybrid")
MAX_KS = 5
# A run not heard from for this long is taken for abandoned (its worker died): it no longer blocks a new one.
STALE_AFTER = timedelta(minutes=15)
UNDER_WAY = ("queued", "running")  # the statuses of a run not finished yet (abandoned or not)


def settings_of(modes=None, ks=None) -> dict:
    """The modes and recall cut-offs asked for, checked (Invalid naming ``modes`` or ``k``); defaults: every mode,
    recall at 1, 5 and 10."""
    errors = {}
    modes = list(dict.fromkeys(modes or DEFAULT_MODES))
    if any(mode not in MODES for mode in modes):
        errors["modes"] = [f"each one of {', '.join(MODES)}"]
    ks = sorted(set(ks or RECALL_KS))
    if (len(ks) > MAX_KS or any(not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_TOP_K
                                for k in ks)):
        errors["k"] = [f"up to {MAX_KS} whole numbers from 1 to {MAX_TOP_K}"]
    if errors:
        raise Invalid("the evaluation cannot run as asked; see `errors`", errors=errors)
    return {"modes": modes, "ks": ks, "k_rank": K_RANK}


def score_all(knowledge_base: KnowledgeBase, question: Question, settings: dict, corpus_of: dict | None) -> dict:
    """One question in every mode of ``settings``: ``{mode: scores}``."""
    return {mode: score_question(knowledge_base, question, mode, ks=settings["ks"], k_rank=settings["k_rank"],
                                 corpus_of=corpus_of) for mode in settings["modes"]}


def failed(scores: dict, k_rank: int = K_RANK) -> bool:
    """Nothing relevant among the first ``k_rank`` in at least one mode."""
    return any(mode_scores[f"mrr@{k_rank}"] == 0 for mode_scores in scores.values())


def evaluate_now(knowledge_base: KnowledgeBase, questions: Sequence[Question], settings: dict) -> dict:
    """Score without storing (``privex eval`` without ``--save``): the summary and each question's results."""
    corpus_of = _corpus_of(knowledge_base, questions)
    scored = [score_all(knowledge_base, question, settings, corpus_of) for question in questions]
    return {"settings": settings, "summary": summarise(scored, settings["modes"], _names(settings)),
            "questions": [{"position": position, "question": question.text, "relevance": question.relevance,
                           "results": scores, "failed": failed(scores, settings["k_rank"])}
                          for position, (question, scores) in enumerate(zip(questions, scored), start=1)]}


def _names(settings: dict) -> list[str]:
    return metric_names(settings["ks"], settings["k_rank"])


def _corpus_of(knowledge_base: KnowledgeBase, questions) -> dict | None:
    return corpus_ids_of(knowledge_base) if any(question.corpus_ids for question in questions) else None


# -- stored runs --------------------------------------------------------------------------------------------------

def start(knowledge_base: KnowledgeBase, user_id, questions: Sequence[Question], source: str, settings: dict, *,
          queue: bool = True) -> EvaluationRun:
    """A queued run of ``questions`` (commits), scored by the ``privex.run_evaluation`` task when ``queue``.
    Conflict while another run of this knowledge base is under way."""
    if busy(knowledge_base) is not None:
        raise Conflict("an evaluation of this knowledge base is already running: wait for it to finish")
    # The clock, not the database's now(): that is the transaction's start, the same for two runs started in one.
    run = EvaluationRun(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id,
                        created_at=now(), created_by_id=user_id, source=source[:512], settings=settings,
                        questions_total=len(questions))
    db.session.add(run)
    db.session.flush()
    db.session.add_all(EvaluationQuestion(workspace_id=run.workspace_id, run_id=run.id, position=position,
                                          text=question.text, relevance=question.relevance)
                       for position, question in enumerate(questions, start=1))
    db.session.commit()
    if queue:
        state().celery.tasks["privex.run_evaluation"].delay(str(run.id))
    return run


def busy(knowledge_base: KnowledgeBase) -> EvaluationRun | None:
    """The run of this knowledge base still under way (not abandoned), if any."""
    return db.session.scalar(sa.select(EvaluationRun).where(
        EvaluationRun.knowledge_base_id == knowledge_base.id, EvaluationRun.status.in_(UNDER_WAY),
        EvaluationRun.updated_at > now() - STALE_AFTER).limit(1))


def abandoned(run: EvaluationRun) -> bool:
    """Under way by its status but not heard from for ``STALE_AFTER``: its worker stopped, and a new run may start."""
    return run.status in UNDER_WAY and run.updated_at <= now() - STALE_AFTER


def under_way(run: EvaluationRun) -> bool:
    """Queued or running and not abandoned: what ``busy`` finds, for one run."""
    return run.status in UNDER_WAY and not abandoned(run)


def execute(run_id) -> EvaluationRun:
    """Score a run's questions not yet scored, in order, committing progress after each; then its summary.
    A run already finished is left alone (the task may be delivered twice); a re-delivered running one resumes."""
    run = db.session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFound("EvaluationRun not found")
    if run.status in ("done", "failed"):
        return run
    run.status, run.started_at, run.error = "running", run.started_at or now(), None
    db.session.commit()
    knowledge_base = db.session.get(KnowledgeBase, run.knowledge_base_id)
    try:
        _score_pending(run, knowledge_base)
    except (NotInstalled, ValueError) as error:
        return finish(run, error=str(error))
    return finish(run)


def _score_pending(run: EvaluationRun, knowledge_base: KnowledgeBase) -> None:
    rows = db.session.scalars(sa.select(EvaluationQuestion).where(EvaluationQuestion.run_id == run.id).order_by(
        EvaluationQuestion.position)).all()
    questions = {row.id: Question.stored(row.text, row.relevance) for row in rows}
    corpus_of = _corpus_of(knowledge_base, questions.values())
    for row in rows:
        if row.failed is not None:
            continue
        row.results = score_all(knowledge_base, questions[row.id], run.settings, corpus_of)
        row.failed = failed(row.results, run.settings["k_rank"])
        run.questions_done = sum(1 for other in rows if other.failed is not None)
        db.session.commit()


def finish(run: EvaluationRun, error: str | None = None) -> EvaluationRun:
    """Done with its summary, or failed saying why (commits)."""
    if error is None:
        scored = db.session.scalars(sa.select(EvaluationQuestion.results).where(
            EvaluationQuestion.run_id == run.id, EvaluationQuestion.failed.is_not(None)).order_by(
            EvaluationQuestion.position)).all()
        run.summary = summarise(scored, run.settings["modes"], _names(run.settings))
    run.status, run.error, run.finished_at = ("failed" if error else "done"), error, now()
    db.session.commit()
    return run


def fail_unexpectedly(run_id, error: BaseException) -> None:
    """Mark a run failed after an error nobody expected, in a fresh transaction, so it never stays running."""
    db.session.rollback()
    run = db.session.get(EvaluationRun, run_id)
    if run is not None and run.status in UNDER_WAY:
        finish(run, error=f"an internal error stopped the evaluation ({type(error).__name__}); start it again")


# -- reading ------------------------------------------------------------------------------------------------------

def runs_of(knowledge_base: KnowledgeBase) -> sa.Select:
    """A knowledge base's runs, newest first."""
    return sa.select(EvaluationRun).where(EvaluationRun.knowledge_base_id == knowledge_base.id).order_by(
        EvaluationRun.created_at.desc(), EvaluationRun.id.desc())


def run_of(knowledge_base: KnowledgeBase, run: EvaluationRun) -> EvaluationRun:
    """``run`` when it is this knowledge base's; NotFound otherwise."""
    if run.knowledge_base_id != knowledge_base.id:
        raise NotFound("EvaluationRun not found")
    return run


def previous(run: EvaluationRun) -> EvaluationRun | None:
    """The finished run of the same knowledge base started before this one."""
    return db.session.scalar(sa.select(EvaluationRun).where(
        EvaluationRun.knowledge_base_id == run.knowledge_base_id, EvaluationRun.status == "done",
        sa.tuple_(EvaluationRun.created_at, EvaluationRun.id) < sa.tuple_(run.created_at, run.id)).order_by(
        EvaluationRun.created_at.desc(), EvaluationRun.id.desc()).limit(1))


def comparison(run: EvaluationRun) -> dict | None:
    """This run against the previous finished one: ``{"run_id", "finished_at", "summary", "deltas": {mode: {metric:
    this - previous}}}`` for the modes and metrics both have; None when there is no previous run."""
    before = previous(run)
    if before is None:
        return None
    deltas = {}
    for mode in run.settings.get("modes", []):
        if mode in run.summary and mode in before.summary:
            deltas[mode] = {name: run.summary[mode][name] - before.summary[mode][name]
                            for name in _names(run.settings) if name in before.summary[mode]}
    return {"run_id": before.id, "finished_at": before.finished_at, "summary": before.summary, "deltas": deltas}


def questions_of(run: EvaluationRun, failed_only: bool = False) -> sa.Select:
    """A run's questions in order; ``failed_only``: those with nothing relevant in the first 10 in some mode."""
    statement = sa.select(EvaluationQuestion).where(EvaluationQuestion.run_id == run.id)
    if failed_only:
        statement = statement.where(EvaluationQuestion.failed.is_(True))
    return statement.order_by(EvaluationQuestion.position)


def progress(run: EvaluationRun) -> float:
    return round(run.questions_done / run.questions_total, 3) if run.questions_total else 0.0


def delete(run: EvaluationRun) -> None:
    db.session.delete(run)
    db.session.commit()
