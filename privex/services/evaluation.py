"""Retrieval evaluation: how well each retrieval mode of a knowledge base finds what labelled questions say it should.

- ranking metrics over one ranked list (``recall_at_k``, ``mrr_at_k``, ``ndcg_at_k``), pure and binary-relevance;
- ``load_questions`` / ``parse_questions``: labelled questions from JSONL; ``load_beir`` / ``parse_beir``: from a
  BEIR folder's queries and qrels (its corpus is the knowledge base's documents);
- ``score_question``: one question through ``retrieve`` in one mode, with its metrics and what it retrieved;
  ``summarise``: the per-mode means of scored questions, summed in question order so every caller gets the same
  floating-point numbers; ``evaluate``: both, for a list of questions.

A question names what is relevant in one of three ways, one per question:

- ``relevant_document_ids`` or ``relevant_document_names``: judged per *document*. The hits are reduced to their
  documents in order of first appearance, so a document found by three chunks counts once, at its best rank.
- BEIR's ``corpus_ids`` (from qrels): judged per document, a document standing for the corpus id in its
  ``corpus_id`` or ``beir_id`` metadata, else its name without the extension (SciFact uploaded as ``<id>.txt``).
- ``relevant_passages``: judged per *hit*. A hit is relevant when its text contains a passage not already found
  by a better-ranked hit (ignoring case and whitespace); recall is the share of passages found.

Stored runs, their progress and comparisons are in ``privex.services.evaluation_runs``; ``privex eval`` and the
evaluation API both go through it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import sqlalchemy as sa

from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.services.retrieval import MODES, Hit, retrieve

RELEVANCE_KEYS = ("relevant_document_ids", "relevant_document_names", "relevant_passages")
K_RANK = 10  # nDCG and MRR are read at 10, as BEIR reports them
RECALL_KS = (1, 5, 10)
CORPUS_ID_KEYS = ("corpus_id", "beir_id")  # document metadata naming the BEIR corpus id it holds


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
    """A question and what answers it: document ids, document names, BEIR corpus ids or passages (exactly one is
    non-empty)."""

    text: str
    document_ids: frozenset[str] = frozenset()
    document_names: frozenset[str] = frozenset()
    passages: tuple[str, ...] = ()
    corpus_ids: frozenset[str] = frozenset()

    @property
    def relevance(self) -> dict:
        """What is relevant, as stored with a run: ``{"kind": ..., "values": [...]}`` (sets sorted)."""
        if self.passages:
            return {"kind": "passages", "values": list(self.passages)}
        for kind in ("document_ids", "document_names", "corpus_ids"):
            if getattr(self, kind):
                return {"kind": kind, "values": sorted(getattr(self, kind))}
        raise ValueError("a question needs something relevant")

    @classmethod
    def stored(cls, text: str, relevance: dict) -> "Question":
        values = relevance["values"]
        if relevance["kind"] == "passages":
            return cls(text=text, passages=tuple(values))
        return cls(text=text, **{relevance["kind"]: frozenset(values)})

    def keys(self, hits: Sequence[Hit], corpus_of: dict | None = None) -> list[str]:
        """The id each hit stands for in this question's terms (a document, a corpus id, a passage or a chunk)."""
        if self.passages:
            return self._passage_keys(hits)
        if self.document_ids:
            return [hit.document_id for hit in hits]
        if self.corpus_ids:
            corpus_of = corpus_of or {}
            return [corpus_of.get(hit.document_id, hit.document_id) for hit in hits]
        return [hit.document_name for hit in hits]

    def relevant(self) -> set[str]:
        if self.passages:
            return {f"passage:{i}" for i in range(len(self.passages))}
        return set(self.document_ids or self.corpus_ids or self.document_names)

    def judge(self, hits: Sequence[Hit], corpus_of: dict | None = None) -> tuple[list[str], set[str]]:
        """The ranked ids the metrics see for ``hits`` (best first), and the ids that count as relevant.

        Judged per document, the hits are reduced to their documents in order of first appearance (two documents of
        the same name are one document when judged by name: the name is all the question knows)."""
        keys = self.keys(hits, corpus_of)
        return (keys if self.passages else _first_occurrences(keys)), self.relevant()

    def _passage_keys(self, hits: Sequence[Hit]) -> list[str]:
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
        return ranked


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


# -- question files -----------------------------------------------------------------------------------------------

def load_questions(path: str | Path) -> list[Question]:
    """Questions from a JSONL file (see ``parse_questions``)."""
    with open(path, "rb") as stream:
        questions = parse_questions(stream)
    if not questions:
        raise ValueError(f"{path} contains no questions")
    return questions


def parse_questions(lines: Iterable[bytes]) -> list[Question]:
    """Questions from JSONL lines: one object per line with ``question`` and exactly one of
    ``relevant_document_ids``, ``relevant_document_names`` or ``relevant_passages`` (a non-empty list of strings).
    Other keys are ignored (a label such as ``"kind": "paraphrase"`` may sit beside them); blank lines are skipped.
    ValueError, naming the line, for anything else."""
    questions = []
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"line {number}: not UTF-8 text") from None
        if line.strip():
            questions.append(question_of(_json_object(line, number), number))
    return questions


def _json_object(line: str, number: int) -> dict:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"line {number}: not valid JSON ({error.msg})") from None
    if not isinstance(item, dict):
        raise ValueError(f"line {number}: expected a JSON object")
    return item


def question_of(item: dict, number: int) -> Question:
    """One question from its JSON object (a JSONL line, or an item of the API's ``questions`` list)."""
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


# -- scoring ------------------------------------------------------------------------------------------------------

def metric_names(ks: Sequence[int] = RECALL_KS, k_rank: int = K_RANK) -> list[str]:
    return [f"ndcg@{k_rank}", *(f"recall@{k}" for k in ks), f"mrr@{k_rank}"]


def corpus_ids_of(knowledge_base: KnowledgeBase) -> dict[str, str]:
    """Document id -> the BEIR corpus id it holds: its ``corpus_id`` / ``beir_id`` metadata, else its name without
    the extension."""
    rows = db.session.execute(sa.select(Document.id, Document.name, Document.metadata_).where(
        Document.knowledge_base_id == knowledge_base.id))
    found = {}
    for document_id, name, metadata in rows:
        labelled = next((str(metadata[key]) for key in CORPUS_ID_KEYS if (metadata or {}).get(key) is not None), None)
        found[str(document_id)] = labelled or Path(name).stem
    return found


def score_question(knowledge_base: KnowledgeBase, question: Question, mode: str, *,
                   ks: Sequence[int] = RECALL_KS, k_rank: int = K_RANK, corpus_of: dict | None = None) -> dict:
    """One question in one mode: each metric, and the first ``k_rank`` things retrieved (document id and name, and
    whether each counts as relevant)."""
    hits = retrieve(knowledge_base, question.text, mode=mode, top_k=max(*ks, k_rank))
    ranked, relevant = question.judge(hits, corpus_of)
    scores = {f"ndcg@{k_rank}": ndcg_at_k(ranked, relevant, k_rank),
              **{f"recall@{k}": recall_at_k(ranked, relevant, k) for k in ks},
              f"mrr@{k_rank}": mrr_at_k(ranked, relevant, k_rank)}
    return {**scores, "retrieved": _retrieved(question, hits, corpus_of, relevant)[:k_rank]}


def _retrieved(question: Question, hits: Sequence[Hit], corpus_of, relevant: set) -> list[dict]:
    shown, seen = [], set()
    for hit, key in zip(hits, question.keys(hits, corpus_of)):
        if not question.passages and key in seen:
            continue
        seen.add(key)
        shown.append({"document_id": hit.document_id, "document_name": hit.document_name,
                      "relevant": key in relevant})
    return shown


def summarise(scored: Sequence[dict], modes: Sequence[str], names: Sequence[str]) -> dict[str, dict]:
    """Per mode, each metric's mean over ``scored`` (one ``{mode: scores}`` per question, in question order)."""
    summary = {}
    for mode in modes:
        rows = [question[mode] for question in scored if mode in question]
        summary[mode] = {name: (math.fsum(row[name] for row in rows) / len(rows) if rows else 0.0)
                         for name in names}
        summary[mode]["questions"] = len(rows)
    return summary


def check_modes(modes: Sequence[str]) -> list[str]:
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"unknown retrieval mode {unknown[0]!r}; use one of {', '.join(MODES)}")
    return list(dict.fromkeys(modes))


def evaluate(knowledge_base: KnowledgeBase, questions: Sequence[Question],
             modes: Sequence[str] = ("vector", "keyword", "hybrid"), k_recall: int = 5,
             k_rank: int = K_RANK) -> dict[str, dict[str, float | int]]:
    """Mean recall@``k_recall``, MRR@``k_rank`` and nDCG@``k_rank`` per retrieval mode, e.g.
    ``{"hybrid": {"recall@5": 0.9, "mrr@10": 0.8, "ndcg@10": 0.82, "questions": 30}, ...}``."""
    modes = check_modes(modes)
    if not questions:
        raise ValueError("there are no questions to evaluate")
    corpus_of = corpus_ids_of(knowledge_base) if any(q.corpus_ids for q in questions) else None
    scored = [{mode: score_question(knowledge_base, question, mode, ks=(k_recall,), k_rank=k_rank,
                                    corpus_of=corpus_of) for mode in modes} for question in questions]
    summary = summarise(scored, modes, metric_names((k_recall,), k_rank))
    return {mode: {f"recall@{k_recall}": values[f"recall@{k_recall}"], f"mrr@{k_rank}": values[f"mrr@{k_rank}"],
                   f"ndcg@{k_rank}": values[f"ndcg@{k_rank}"], "questions": values["questions"]}
            for mode, values in summary.items()}
