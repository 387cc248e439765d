"""Retrieval evaluation: how well each retrieval mode of a knowledge base finds what labelled questions say it should.

- ranking metrics over one ranked list (``recall_at_k``, ``mrr_at_k``, ``ndcg_at_k``), pure and binary-relevance;
- ``load_questions``: labelled questions from a JSONL file;
- ``evaluate``: every question through ``retrieve`` in each mode, the metrics averaged per mode.

A question names what is relevant in one of three ways, one per question:

- ``relevant_document_ids`` or ``relevant_document_names``: judged per *document*. The hits are reduced to their
  documents in order of first appearance, so a document found by three chunks counts once, at its best rank.
- ``relevant_passages``: judged per *hit*. A hit is relevant when its text contains a passage not already found
  by a better-ranked hit (ignoring case and whitespace); recall is the share of passages found.

Writing the questions, and running the evaluation on a schedule, are not here: see ``privex eval``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from privex.models import KnowledgeBase
from privex.services.retrieval import MODES, Hit, retrieve

RELEVANCE_KEYS = ("relevant_document_ids", "relevant_document_names", "relevant_passages")


def recall_at_k(ranked_ids: Sequence, relevant_ids: Iterable, k: int) -> float:
    """Share of ``relevant_ids`` that appear among the first ``k`` of ``ranked_ids`` (0-1)."""
    relevant = _relevant(relevant_ids, k)
    return len(relevant.intersection(ranked_ids[:k])) / len(relevant)


def mrr_at_k(ranked_ids: Sequence, relevant_ids: Iterable, k: int) -> float:
    """Reciprocal rank of the first relevant id among the first ``k`` (1 at rank 1, 1/3 at rank 3), 0 when none
    is; averaged over questions it is the mean reciprocal rank."""
    relevant = _relevant(relevant_ids, k)
    for rank, item in enumerate(ranked_ids[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked_ids: Sequence, relevant_ids: Iterable, k: int) -> float:
    """Normalised discounted cumulative gain of the first ``k`` with binary relevance: each relevant id earns
    1 / log2(rank + 1) (once, at its first occurrence), divided by what a perfect ranking of
    min(len(relevant_ids), k) relevant ids would earn (0-1)."""
    relevant = _relevant(relevant_ids, k)
    gained: set = set()
    dcg = 0.0
    for rank, item in enumerate(ranked_ids[:k], start=1):
        if item in relevant and item not in gained:
            gained.add(item)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def _relevant(relevant_ids: Iterable, k: int) -> set:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    relevant = set(relevant_ids)
    if not relevant:
        raise ValueError("a ranking metric needs at least one relevant id")
    return relevant


@dataclass(frozen=True)
class Question:
    """A question and what answers it: document ids, document names or passages (exactly one is non-empty)."""

    text: str
    document_ids: frozenset[str] = frozenset()
    document_names: frozenset[str] = frozenset()
    passages: tuple[str, ...] = ()

    def judge(self, hits: Sequence[Hit]) -> tuple[list[str], set[str]]:
        """The ranked ids the metrics see for ``hits`` (best first), and the ids that count as relevant."""
        if self.passages:
            return self._judge_passages(hits)
        if self.document_ids:
            return _first_occurrences(hit.document_id for hit in hits), set(self.document_ids)
        # Two documents of the same name are one document here: the name is all the question knows.
        return _first_occurrences(hit.document_name for hit in hits), set(self.document_names)

    def _judge_passages(self, hits: Sequence[Hit]) -> tuple[list[str], set[str]]:
        passages = [_normalised(passage) for passage in self.passages]
        found: set[str] = set()
        ranked = []
        for hit in hits:
            text = _normalised(hit.text)
            new = next((f"passage:{i}" for i, passage in enumerate(passages)
                        if passage in text and f"passage:{i}" not in found), None)
            if new:
                found.add(new)
            # A hit repeating an already-found passage (chunk overlap) stays in its place but earns nothing.
            ranked.append(new or f"chunk:{hit.chunk_id}")
        return ranked, {f"passage:{i}" for i in range(len(passages))}


def _first_occurrences(ids: Iterable) -> list:
    seen: set = set()
    ordered = []
    for item in ids:
        if item not in seen:
            seen.add(item)
            ordered.append(item)
    return ordered


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def load_questions(path: str | Path) -> list[Question]:
    """Questions from a JSONL file: one object per line with ``question`` and exactly one of
    ``relevant_document_ids``, ``relevant_document_names`` or ``relevant_passages`` (a non-empty list of strings).
    Other keys are ignored (a label such as ``"kind": "paraphrase"`` may sit beside them); blank lines are skipped.
    ValueError, naming the line, for anything else."""
    questions = []
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"line {number}: not UTF-8 text") from None
            if line.strip():
                questions.append(_question(line, number))
    if not questions:
        raise ValueError(f"{path} contains no questions")
    return questions


def _question(line: str, number: int) -> Question:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"line {number}: not valid JSON ({error.msg})") from None
    if not isinstance(item, dict):
        raise ValueError(f"line {number}: expected a JSON object")
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"line {number}: \"question\" must be a non-empty string")
    keys = [key for key in RELEVANCE_KEYS if key in item]
    if len(keys) != 1:
        raise ValueError(f"line {number}: give exactly one of {', '.join(RELEVANCE_KEYS)}")
    values = item[keys[0]]
    if (not isinstance(values, list) or not values
            or not all(isinstance(value, str) and value.strip() for value in values)):
        raise ValueError(f"line {number}: \"{keys[0]}\" must be a non-empty list of non-empty strings")
    if keys[0] == "relevant_passages":
        return Question(text=text, passages=tuple(values))
    if keys[0] == "relevant_document_ids":
        return Question(text=text, document_ids=frozenset(values))
    return Question(text=text, document_names=frozenset(values))


def evaluate(knowledge_base: KnowledgeBase, questions: Sequence[Question],
             modes: Sequence[str] = ("vector", "keyword", "hybrid"), k_recall: int = 5,
             k_rank: int = 10) -> dict[str, dict[str, float | int]]:
    """Mean recall@``k_recall``, MRR@``k_rank`` and nDCG@``k_rank`` per retrieval mode, e.g.
    ``{"hybrid": {"recall@5": 0.9, "mrr@10": 0.8, "ndcg@10": 0.82, "questions": 30}, ...}``."""
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown retrieval mode {unknown[0]!r}; use one of {', '.join(MODES)}")
    if not questions:
        raise ValueError("there are no questions to evaluate")
    top_k = max(k_recall, k_rank)
    results = {}
    for mode in modes:
        recall = mrr = ndcg = 0.0
        for question in questions:
            ranked, relevant = question.judge(retrieve(knowledge_base, question.text, mode=mode, top_k=top_k))
            recall += recall_at_k(ranked, relevant, k_recall)
            mrr += mrr_at_k(ranked, relevant, k_rank)
            ndcg += ndcg_at_k(ranked, relevant, k_rank)
        count = len(questions)
        results[mode] = {f"recall@{k_recall}": recall / count, f"mrr@{k_rank}": mrr / count,
                         f"ndcg@{k_rank}": ndcg / count, "questions": count}
    return results
