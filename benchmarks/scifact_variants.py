"""Offline retrieval methods that need no new model weights, tried on SciFact's training claims (issue 11).

The knowledge base ``benchmarks.scifact --full`` built (its database in ``SCIFACT_FOLDER``) is read once — every
chunk's document, position, text and stored embedding — and the pgvector store's ranking is replayed in NumPy:
cosine over all chunks (exact, where the store walks HNSW), BM25 with the store's tokenizer and formula (statistics of
the final knowledge base, no keyword budget: the store measured the same without it), and hybrid score fusion as in
``store._hybrid`` (50 candidates a side, min-max over the pool, vector weight 0.6). The replica is checked against
the product's own numbers (BENCHMARKS.md) before any variant is believed. Each variant is scored like
``privex.services.evaluation``: the first 10 hits, reduced to their documents, nDCG@10, per id-parity half (a: even
claim ids, b: odd) so that a method tuned on one half can be confirmed on the other.

Variants: one hit per document (a document's score is its best chunk's, or its best plus a share of its second),
dense pseudo-relevance feedback (Rocchio: the question's vector plus the mean of the first k hits' vectors), RM3
expansion of the keyword side (terms of the first k BM25 or hybrid hits), and adjacent-chunk smoothing (a chunk's
score plus a share of its best neighbour's in the same document).

``python -m benchmarks.scifact_variants`` (the query embeddings come from the product's encoder, ~1 minute).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import scipy.sparse as sparse

from benchmarks.scifact import FOLDER, load, open_app

DATABASE = "scifact_full_default_32_224"
CANDIDATES = 50
VECTOR_WEIGHT = 0.6


class Replica:
    def __init__(self, folder: Path = FOLDER):
        import sqlalchemy as sa

        from privex_pgvector import terms as bm25

        self.bm25 = bm25
        app = open_app(DATABASE, folder)
        with app.app_context():
            from privex.extensions import db

            rows = db.session.execute(sa.text(
                "SELECT d.name, c.position, c.text, c.embedding::text FROM chunks c JOIN documents d "
                "ON d.id = c.document_id ORDER BY c.id")).all()
        self.doc = np.array([int(row[0].split(".")[0]) for row in rows])
        self.vectors = np.array([json.loads(row[3]) for row in rows], dtype=np.float32)
        self.n = len(rows)
        self.counts = [bm25.term_counts(row[2]) for row in rows]
        self.lengths = [sum(counts.values()) for counts in self.counts]
        average = sum(self.lengths) / self.n
        self.vocabulary: dict[int, int] = {}
        cells, frequency = ([], [], []), Counter()
        for i, counts in enumerate(self.counts):
            for term, weight in bm25.chunk_weights(counts, average).items():
                j = self.vocabulary.setdefault(term, len(self.vocabulary))
                cells[0].append(i), cells[1].append(j), cells[2].append(weight)
                frequency[j] += 1
        self.by_term = sparse.csr_matrix((cells[2], (cells[0], cells[1])), shape=(self.n, len(self.vocabulary))).T.tocsr()
        self.idf = np.array([bm25.idf(self.n, frequency[j]) for j in range(len(self.vocabulary))])
        order = sorted(range(self.n), key=lambda i: (self.doc[i], rows[i][1]))
        self.neighbours = defaultdict(list)
        for a, b in zip(order, order[1:]):
            if self.doc[a] == self.doc[b]:
                self.neighbours[a].append(b)
                self.neighbours[b].append(a)

    def question(self, text: str) -> dict[int, float]:
        """Column -> query-side BM25 weight (occurrences × IDF)."""
        weights: dict[int, float] = {}
        for term, count in self.bm25.term_counts(text).items():
            j = self.vocabulary.get(term)
            if j is not None:
                weights[j] = weights.get(j, 0.0) + count * self.idf[j]
        return weights

    def keyword_scores(self, weights: dict[int, float]) -> np.ndarray:
        scores = np.zeros(self.n)
        for j, weight in weights.items():
            row = self.by_term.getrow(j)
            scores[row.indices] += weight * row.data
        return scores

    def hybrid(self, vector, keyword, candidates=CANDIDATES):
        """(pool, fused score, cosine) as ``store._hybrid`` computes them."""
        cosine = self.vectors @ vector
        pool = set(_top(cosine, candidates)) | {i for i in _top(keyword, candidates) if keyword[i] > 0}
        pool = np.array(sorted(pool))
        fused = VECTOR_WEIGHT * _minmax(cosine[pool]) + (1 - VECTOR_WEIGHT) * _minmax(keyword[pool])
        return pool, fused, cosine[pool]

    def documents(self, chunks) -> list[int]:
        return list(dict.fromkeys(int(self.doc[i]) for i in chunks))

    def rm3(self, text: str, feedback, terms: int, mix: float) -> dict[int, float]:
        """The question's keyword weights mixed (1 − mix : mix) with the ``terms`` likeliest terms of the feedback
        chunks (each chunk's term frequencies over its length, summed), times IDF."""
        likely = defaultdict(float)
        for i in feedback:
            for term, count in self.counts[i].items():
                j = self.vocabulary.get(term)
                if j is not None:
                    likely[j] += count / (self.lengths[i] or 1)
        chosen = sorted(likely, key=lambda j: -likely[j])[:terms]
        total = sum(likely[j] for j in chosen) or 1
        base = {j: weight / self.idf[j] for j, weight in self.question(text).items()}
        size = sum(base.values()) or 1
        mixed = {j: (1 - mix) * count / size for j, count in base.items()}
        for j in chosen:
            mixed[j] = mixed.get(j, 0.0) + mix * likely[j] / total
        return {j: weight * self.idf[j] for j, weight in mixed.items()}


def _top(scores, n):
    n = min(n, len(scores))
    return np.argpartition(-scores, n - 1)[:n]


def _minmax(values):
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _ranked(pool, score, cosine, k=10):
    order = sorted(range(len(pool)), key=lambda t: (-score[t], -cosine[t], pool[t]))
    return [pool[t] for t in order[:k]]


def ndcg(documents, relevant) -> float:
    relevant = {int(r) for r in relevant}
    gain = sum(1 / math.log2(rank + 1) for rank, d in enumerate(documents[:10], 1) if d in relevant)
    return gain / sum(1 / math.log2(rank + 1) for rank in range(1, min(len(relevant), 10) + 1))


def run(folder: Path = FOLDER) -> list[tuple[str, float, float, float]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    replica = Replica(folder)
    _, claims = load(None)
    from privex_llms.embeddings import local

    questions = local.shared_encoder().encode([text for _, text, _ in claims], 64)
    weights = [replica.question(text) for _, text, _ in claims]
    keyword = [replica.keyword_scores(w) for w in weights]

    def hybrid_top(q, k=10, vector=None, keyword_scores=None):
        pool, fused, cosine = replica.hybrid(questions[q] if vector is None else vector,
                                             keyword[q] if keyword_scores is None else keyword_scores)
        return _ranked(pool, fused, cosine, k)

    def per_document(q, second=0.0, candidates=CANDIDATES):
        pool, fused, _ = replica.hybrid(questions[q], keyword[q], candidates)
        scores = defaultdict(list)
        for t, i in enumerate(pool):
            scores[int(replica.doc[i])].append(fused[t])
        value = {d: sorted(s, reverse=True) for d, s in scores.items()}
        value = {d: s[0] + second * (s[1] if len(s) > 1 else 0.0) for d, s in value.items()}
        return sorted(value, key=lambda d: (-value[d], d))[:10]

    def rocchio(q, k, beta):
        vector = questions[q] + beta * replica.vectors[hybrid_top(q, k)].mean(0)
        return replica.documents(hybrid_top(q, vector=vector / np.linalg.norm(vector)))

    def rm3(q, source, k, terms, mix):
        feedback = _top(keyword[q], k) if source == "bm25" else hybrid_top(q, k)
        expanded = replica.rm3(claims[q][1], feedback, terms, mix)
        return replica.documents(hybrid_top(q, keyword_scores=replica.keyword_scores(expanded)))

    def adjacent(q, share):
        pool, fused, cosine = replica.hybrid(questions[q], keyword[q])
        at = {i: t for t, i in enumerate(pool)}
        boosted = np.array([fused[t] + share * max((fused[at[n]] for n in replica.neighbours[i] if n in at), default=0)
                            for t, i in enumerate(pool)])
        return replica.documents(_ranked(pool, boosted, cosine))

    variants = [
        ("vector (replica)", lambda q: replica.documents(_top_sorted(replica.vectors @ questions[q]))),
        ("keyword (replica)", lambda q: replica.documents(_top_sorted(keyword[q]))),
        ("hybrid (replica of the product)", lambda q: replica.documents(hybrid_top(q))),
        ("hybrid, one hit per document (best chunk)", per_document),
        ("hybrid, one hit per document, 100 candidates a side", lambda q: per_document(q, candidates=100)),
        ("hybrid, per document best + 0.25 × second chunk", lambda q: per_document(q, 0.25)),
        ("hybrid, per document best + 0.5 × second chunk", lambda q: per_document(q, 0.5)),
        ("hybrid + Rocchio dense PRF, k = 3, β = 0.5", lambda q: rocchio(q, 3, 0.5)),
        ("hybrid + Rocchio dense PRF, k = 10, β = 0.5", lambda q: rocchio(q, 10, 0.5)),
        ("hybrid, keyword side RM3 from BM25's first 5, 10 terms, λ = 0.3", lambda q: rm3(q, "bm25", 5, 10, 0.3)),
        ("hybrid, keyword side RM3 from hybrid's first 10, 20 terms, λ = 0.3", lambda q: rm3(q, "hybrid", 10, 20, 0.3)),
        ("hybrid, adjacent chunks: + 0.1 × best neighbour's score", lambda q: adjacent(q, 0.1)),
    ]
    results = []
    for name, ranking in variants:
        halves = {0: [], 1: []}
        for q, (key, _, relevant) in enumerate(claims):
            halves[int(key) % 2].append(ndcg(ranking(q), relevant))
        results.append((name, float(np.mean(halves[0])), float(np.mean(halves[1])),
                        float(np.mean(halves[0] + halves[1]))))
        print(f"| {name} | {results[-1][1]:.3f} | {results[-1][2]:.3f} | {results[-1][3]:.3f} |", flush=True)
    return results


def _top_sorted(scores, k=10):
    return sorted(_top(scores, k), key=lambda i: -scores[i])


if __name__ == "__main__":
    print("| method | half a | half b | all |\n|---|---|---|---|", file=sys.stderr)
    run()
