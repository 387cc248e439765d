"""Evaluation runs: how well a knowledge base's retrieval found what labelled questions say it should, kept so a
user can compare one run with the next (``privex.services.evaluation_runs`` makes and reads them).

A run holds its settings, progress and per-mode summary; each of its questions is a row of its own holding what is
relevant and, once scored, what each mode retrieved and how it scored, so a run of thousands of questions is read a
page at a time and the failing ones are found by an index, not by reading every result.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb

RUN_STATUSES = ("queued", "running", "done", "failed")


class EvaluationRun(WorkspaceScoped, Model):
    """``settings``: the modes and k values evaluated; ``summary``: per mode, the mean of each metric and the number
    of questions (``{"hybrid": {"ndcg@10": 0.71, "recall@5": 0.8, "mrr@10": 0.66, "questions": 30}}``)."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (choice("status", RUN_STATUSES), sa.Index(None, "knowledge_base_id", "created_at"))

    knowledge_base_id: Mapped[uuid.UUID] = foreign_key("knowledge_bases.id", index=False)
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    source: Mapped[str] = mapped_column(sa.String(512), nullable=False, default="", server_default="")
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="queued", server_default="queued")
    settings: Mapped[dict] = jsonb()
    questions_total: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    questions_done: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    summary: Mapped[dict] = jsonb()
    error: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    questions: Mapped[list["EvaluationQuestion"]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True,
        order_by="EvaluationQuestion.position")


class EvaluationQuestion(WorkspaceScoped, Model):
    """One labelled question of a run. ``relevance``: ``{"kind": "document_ids" | "document_names" | "passages" |
    "corpus_ids", "values": [...]}``; ``results``: per mode, its metrics and the documents it retrieved (empty until
    scored); ``failed``: nothing relevant among the first 10 in at least one mode (null until scored)."""

    __tablename__ = "evaluation_questions"
    __table_args__ = (sa.UniqueConstraint("run_id", "position"),)

    run_id: Mapped[uuid.UUID] = foreign_key("evaluation_runs.id", index=False)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    relevance: Mapped[dict] = jsonb()
    results: Mapped[dict] = jsonb()
    failed: Mapped[bool | None] = mapped_column(sa.Boolean)

    run: Mapped[EvaluationRun] = relationship(back_populates="questions")
