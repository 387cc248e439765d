"""BM25 keyword data of one knowledge base in PostgreSQL, kept in the caller's transaction with its chunks.

Per chunk (columns of ``chunks``): ``terms`` (the term ids it holds, GIN-indexed), ``term_weights`` (a ``sparsevec``
of its BM25 chunk-side weights, see ``terms.chunk_weights``) and ``term_count`` (its length in terms). Per knowledge
base: ``plg_pgvector_keyword_statistics`` (chunk count, total length) and ``plg_pgvector_term_frequencies`` (in how
many chunks each term is). A question's vector carries the IDF, so ``-(term_weights <#> question)`` is the BM25
score, computed by pgvector in C.

Writers of one knowledge base are serialised on its statistics row (``lock``, taken first by every writer, held to
commit), so two ingestion tasks never deadlock on term rows and the counts stay exact; ingestion stores chunks right
before it commits, so the wait is short. A chunk's weights use the average length of the knowledge base when it was
stored (including its own batch): chunks of one chunker are of similar length, so the average settles after the
first documents; ``refresh`` recomputes every weight when it has drifted by more than ``DRIFT``.

Chunks stored without terms (written before this existed, or bulk-loaded with COPY) are filled in, ``FILL_BATCH`` at a
time, each batch in a transaction of its own (so the statistics lock that ingestion waits on is held for one batch):
by ``fill_pending``, which the worker's housekeeping calls as it starts and every period (``PGVector.upkeep``), so a
knowledge base only ever searched by meaning is filled too and the first keyword or hybrid search after an upgrade
finds the work done; and by ``fill``, the rest of one knowledge base at once, when a keyword search finds chunks
still waiting (its answer must count every chunk).
"""

from __future__ import annotations

import uuid
from collections import Counter

import sqlalchemy as sa
from pgvector import SparseVector
from sqlalchemy.orm import Session

from privex.extensions import db
from privex.models import Chunk
from privex_pgvector import terms as bm25

STATISTICS = "plg_pgvector_keyword_statistics"
FREQUENCIES = "plg_pgvector_term_frequencies"
DRIFT = 0.25  # the average chunk length may move this much (25%) before the stored weights are recomputed
FILL_BATCH = 2000  # chunks filled in per transaction (also the rows of one weights UPDATE)
# Chunks one housekeeping run fills in at most (the next period, or a worker starting, goes on): filling measured
# about 1.4 ms a chunk (tokenising, weights, UPDATE; 20,000 SciFact abstracts in 28 s on a shared 2-core machine), so
# a run holds its worker slot for about a minute, not the many minutes a large upgrade's backlog would take at once.
UPKEEP_BUDGET = 50_000


def analysed(text: str) -> tuple[list[int], Counter, int]:
    """A chunk's distinct term ids (sorted), their counts, and its length in terms."""
    counts = bm25.term_counts(text)
    return sorted(counts), counts, sum(counts.values())


def weights(counts: Counter, average_length: float) -> SparseVector:
    return SparseVector(bm25.chunk_weights(counts, average_length), bm25.DIMENSIONS)


def lock(session, kb: uuid.UUID) -> tuple[int, int]:
    """Lock the knowledge base's statistics row (creating it) until commit; its chunk count and total length."""
    session.execute(sa.text(f"INSERT INTO {STATISTICS} (knowledge_base_id) VALUES (:kb) ON CONFLICT DO NOTHING"),
                    {"kb": kb})
    chunks, length = session.execute(sa.text(
        f"SELECT chunks, length FROM {STATISTICS} WHERE knowledge_base_id = :kb FOR UPDATE"), {"kb": kb}).one()
    return int(chunks), int(length)


def count(session, kb: uuid.UUID, chunks: int, length: int, frequencies: Counter) -> None:
    """Add ``chunks`` chunks of ``length`` terms in all, and per term the chunks holding it (negative: removed)."""
    session.execute(sa.text(f"UPDATE {STATISTICS} SET chunks = chunks + :chunks, length = length + :length "
                            f"WHERE knowledge_base_id = :kb"), {"kb": kb, "chunks": chunks, "length": length})
    if not frequencies:
        return
    ordered = sorted(frequencies)
    session.execute(sa.text(
        f"INSERT INTO {FREQUENCIES} AS f (knowledge_base_id, term, chunks) "
        f"SELECT :kb, term, delta FROM unnest(CAST(:terms AS int[]), CAST(:deltas AS int[])) AS u(term, delta) "
        f"ORDER BY term ON CONFLICT (knowledge_base_id, term) DO UPDATE SET chunks = f.chunks + excluded.chunks"),
        {"kb": kb, "terms": ordered, "deltas": [frequencies[term] for term in ordered]})
    if any(frequencies[term] < 0 for term in ordered):
        session.execute(sa.text(f"DELETE FROM {FREQUENCIES} WHERE knowledge_base_id = :kb AND chunks <= 0"),
                        {"kb": kb})


def prepare(rows: list[dict], texts: list[str], kb: uuid.UUID) -> None:
    """Lock the statistics, give each row its terms and weights, and count them (the caller inserts the rows)."""
    chunks, length = lock(db.session, kb)
    analysed_rows = [analysed(text) for text in texts]
    added = sum(item[2] for item in analysed_rows)
    average = (length + added) / max(1, chunks + len(rows))
    frequencies: Counter = Counter()
    for row, (ids, counts, size) in zip(rows, analysed_rows):
        row.update(terms=ids, term_weights=weights(counts, average), term_count=size)
        frequencies.update(ids)
    count(db.session, kb, len(rows), added, frequencies)
    _refresh_if_drifted(db.session, kb, chunks, length, average)


def forget(deleted: list, kb: uuid.UUID) -> None:
    """Take deleted chunks (rows of ``terms``, ``term_count``) out of the statistics; call ``lock`` first."""
    frequencies: Counter = Counter()
    length = counted = 0
    for row in deleted:
        if row.terms is None:
            continue  # never counted (not filled in yet)
        counted += 1
        length += row.term_count or 0
        frequencies.update(row.terms)
    if counted:
        count(db.session, kb, -counted, -length, Counter({term: -n for term, n in frequencies.items()}))


def _refresh_if_drifted(session, kb: uuid.UUID, chunks: int, length: int, average: float) -> None:
    """Recompute every chunk's weights when the average length has moved by more than ``DRIFT`` since they were
    computed (the weights remember it: the statistics row keeps the average of the last refresh)."""
    stored = session.execute(sa.text(f"SELECT weights_average FROM {STATISTICS} WHERE knowledge_base_id = :kb"),
                             {"kb": kb}).scalar()
    if stored is None or stored <= 0:
        session.execute(sa.text(f"UPDATE {STATISTICS} SET weights_average = :average WHERE knowledge_base_id = :kb"),
                        {"kb": kb, "average": average})
        return
    if abs(average - stored) / stored <= DRIFT:
        return
    refresh(session, kb, average)


def refresh(session, kb: uuid.UUID, average: float) -> None:
    """Every chunk's weights again with ``average`` (the statistics row is locked by the caller)."""
    rows = session.execute(sa.select(Chunk.id, Chunk.text).where(Chunk.knowledge_base_id == kb,
                                                                 Chunk.terms.is_not(None))).all()
    updates = [{"chunk_id": row.id, "weights": weights(bm25.term_counts(row.text), average)} for row in rows]
    _update_weights(session, updates)
    session.execute(sa.text(f"UPDATE {STATISTICS} SET weights_average = :average WHERE knowledge_base_id = :kb"),
                    {"kb": kb, "average": average})


def _update_weights(session, updates: list[dict]) -> None:
    for start in range(0, len(updates), FILL_BATCH):
        batch = updates[start:start + FILL_BATCH]
        session.execute(sa.text(
            "UPDATE chunks SET term_weights = CAST(u.weights AS sparsevec) FROM unnest(CAST(:ids AS uuid[]), "
            "CAST(:weights AS text[])) AS u(chunk_id, weights) WHERE chunks.id = u.chunk_id"),
            {"ids": [item["chunk_id"] for item in batch], "weights": [item["weights"].to_text() for item in batch]})


def unfilled(kb: uuid.UUID) -> bool:
    """Whether chunks of the knowledge base wait to be filled in (``ix_chunks_without_terms`` answers it)."""
    return bool(db.session.execute(sa.text(
        "SELECT EXISTS (SELECT 1 FROM chunks WHERE knowledge_base_id = :kb AND terms IS NULL)"), {"kb": kb}).scalar())


def fill(kb: uuid.UUID) -> int:
    """Give every chunk of the knowledge base without terms its terms, weights and statistics, batch by batch
    (each committed, so the next search does not redo it); returns how many were filled."""
    filled = 0
    while (batch := fill_batch(kb)) > 0:
        filled += batch
        if batch < FILL_BATCH:
            break
    return filled


def fill_pending(budget: int = UPKEEP_BUDGET) -> int:
    """Fill the chunks without terms of every knowledge base, batch by batch, until none is left or about
    ``budget`` chunks were filled (the rest waits for the next call); returns how many were filled."""
    filled = 0
    while filled < budget:
        with Session(bind=db.session.get_bind(), join_transaction_mode="create_savepoint") as session:
            kb = session.scalar(sa.select(Chunk.knowledge_base_id).where(Chunk.terms.is_(None))
                                .order_by(Chunk.knowledge_base_id).limit(1))
        if kb is None:
            break
        batch = fill_batch(kb, min(FILL_BATCH, budget - filled))
        if batch == 0:
            break  # another writer took the same chunks between the two statements: the next call goes on
        filled += batch
    return filled


def fill_batch(kb: uuid.UUID, limit: int = FILL_BATCH) -> int:
    """Up to ``limit`` chunks of the knowledge base without terms given their terms, weights and statistics, in a
    transaction of their own (committed); returns how many were filled."""
    with Session(bind=db.session.get_bind(), join_transaction_mode="create_savepoint") as session:
        chunks, length = lock(session, kb)
        rows = session.execute(sa.select(Chunk.id, Chunk.text).where(Chunk.knowledge_base_id == kb,
                                                                     Chunk.terms.is_(None))
                               .order_by(Chunk.id).limit(limit)).all()
        if not rows:
            session.rollback()
            return 0
        analysed_rows = [analysed(row.text) for row in rows]
        added = sum(item[2] for item in analysed_rows)
        average = (length + added) / (chunks + len(rows))
        frequencies: Counter = Counter()
        session.execute(sa.text(
            "UPDATE chunks SET terms = u.terms_text::int[], term_weights = CAST(u.weights AS sparsevec), "
            "term_count = u.size FROM unnest(CAST(:ids AS uuid[]), CAST(:terms AS text[]), "
            "CAST(:weights AS text[]), CAST(:sizes AS int[])) AS u(chunk_id, terms_text, weights, size) "
            "WHERE chunks.id = u.chunk_id"),
            {"ids": [row.id for row in rows],
             "terms": ["{" + ",".join(map(str, ids)) + "}" for ids, _, _ in analysed_rows],
             "weights": [weights(counts, average).to_text() for _, counts, _ in analysed_rows],
             "sizes": [size for _, _, size in analysed_rows]})
        for ids, _, _ in analysed_rows:
            frequencies.update(ids)
        count(session, kb, len(rows), added, frequencies)
        _refresh_if_drifted(session, kb, chunks, length, average)
        session.commit()
        return len(rows)
