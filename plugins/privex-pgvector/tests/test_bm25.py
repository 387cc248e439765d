"""Keyword ranking at BM25 quality: the scores of a hand-computable corpus, statistics kept exact through deletes and
concurrent writers, chunks without keyword data filled in, deterministic order, rankings independent of top_k."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

from privex.models import Chunk, Document, KnowledgeBase, Organization, Workspace
from privex_pgvector import PGVector
from privex_pgvector import terms as bm25

DIM = 4
KEYWORD, HYBRID, VECTOR = VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.DEFAULT


def unit(*values):
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def make_kb(session, name="kb"):
    organization = Organization(name=f"org-{name}-{uuid.uuid4().hex[:6]}")
    workspace = Workspace(name="main", organization=organization)
    session.add_all([organization, workspace])
    session.flush()
    knowledge_base = KnowledgeBase(workspace_id=workspace.id, name=name, embedding_dim=DIM)
    session.add(knowledge_base)
    session.flush()
    return knowledge_base


def add_document(session, knowledge_base, texts, embeddings=None, name="doc"):
    document = Document(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id, name=name)
    session.add(document)
    session.flush()
    store = PGVector().create(knowledge_base, DIM)
    nodes = [TextNode(text=text, embedding=(embeddings[i] if embeddings else unit(1, 1, 1, 1)),
                      metadata={"position": i},
                      relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))})
             for i, text in enumerate(texts)]
    store.add(nodes)
    return store, document


def search(store, mode, text=None, embedding=None, top_k=10):
    result = store.query(VectorStoreQuery(query_str=text, query_embedding=embedding, similarity_top_k=top_k,
                                          mode=mode))
    return [(node.get_content(), score) for node, score in zip(result.nodes, result.similarities)]


def statistics_are_exact(session, knowledge_base):
    """The stored statistics equal what the knowledge base's chunks say, counted afresh."""
    kb = knowledge_base.id
    stored = session.execute(sa.text("SELECT chunks, length FROM plg_pgvector_keyword_statistics "
                                     "WHERE knowledge_base_id = :kb"), {"kb": kb}).one_or_none()
    counted = session.execute(sa.text("SELECT count(*), coalesce(sum(term_count), 0) FROM chunks "
                                      "WHERE knowledge_base_id = :kb"), {"kb": kb}).one()
    assert tuple(stored or (0, 0)) == tuple(counted)
    stored_terms = dict(session.execute(sa.text("SELECT term, chunks FROM plg_pgvector_term_frequencies "
                                                "WHERE knowledge_base_id = :kb"), {"kb": kb}).all())
    counted_terms = dict(session.execute(sa.text(
        "SELECT term, count(*) FROM chunks, unnest(terms) AS term WHERE knowledge_base_id = :kb GROUP BY term"),
        {"kb": kb}).all())
    assert stored_terms == counted_terms
    return counted


# apple (stem "appl") is in 3 of 4 chunks, kiwi in 1; chunk lengths 2, 2, 6, 2 terms (average 3).
SMALL = ["apple melon", "kiwi melon", "apple melon grape pear plum lemon", "apple grape"]


def expected_bm25(tf, length, frequency, chunks=4, average=3.0, k1=1.2, b=0.75):
    idf = math.log(1 + (chunks - frequency + 0.5) / (frequency + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / average))


def test_keyword_scores_are_bm25_with_idf_and_length_normalisation(database):
    store, _ = add_document(database.session, make_kb(database.session), SMALL)
    hits = search(store, KEYWORD, "Apples and kiwis?")
    texts = [text for text, _ in hits]
    # The rare word outweighs the common one; among equal matches the shorter chunk wins.
    assert texts[0] == "kiwi melon"
    assert texts[-1] == "apple melon grape pear plum lemon"
    assert set(texts[1:3]) == {"apple melon", "apple grape"}
    scores = dict(hits)
    assert scores["kiwi melon"] == pytest.approx(expected_bm25(1, 2, 1), rel=1e-5)
    assert scores["apple melon"] == pytest.approx(expected_bm25(1, 2, 3), rel=1e-5)
    assert scores["apple melon grape pear plum lemon"] == pytest.approx(expected_bm25(1, 6, 3), rel=1e-5)


def test_tied_scores_are_ordered_by_chunk_id_in_every_mode(database):
    knowledge_base = make_kb(database.session)
    store, _ = add_document(database.session, knowledge_base, ["same words here"] * 6)
    ids = sorted(str(chunk_id) for chunk_id in database.session.scalars(
        sa.select(Chunk.id).where(Chunk.knowledge_base_id == knowledge_base.id)))
    for mode in (KEYWORD, HYBRID, VECTOR):
        result = store.query(VectorStoreQuery(query_str="same words", query_embedding=unit(1, 1, 1, 1),
                                              similarity_top_k=6, mode=mode))
        assert result.ids == ids, mode


def test_term_ids_are_the_same_in_every_process():
    words = "Apoptosis of T-cells in 2019 studies, naïve mice"
    mine = sorted(bm25.term_counts(words).items())
    code = ("import sys; from privex_pgvector import terms; "
            "print(sorted(terms.term_counts(sys.argv[1]).items()))")
    other = subprocess.run([sys.executable, "-c", code, words], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert other == str(mine)


def test_the_first_hits_do_not_depend_on_top_k(database):
    knowledge_base = make_kb(database.session)
    texts = [f"report {n} about {'cells' if n % 3 else 'mice'} and {'growth' if n % 4 else 'decline'} of tissue"
             for n in range(60)]
    embeddings = [unit(1 + n % 5, n % 7, 1 + n % 3, n % 2) for n in range(60)]
    store, _ = add_document(database.session, knowledge_base, texts, embeddings)
    for mode in (KEYWORD, HYBRID, VECTOR):
        rankings = [[text for text, _ in search(store, mode, "growth of mice cells", unit(2, 1, 1, 0), top_k)]
                    for top_k in (5, 10, 50)]
        assert rankings[0] == rankings[1][:5] == rankings[2][:5], mode
        assert rankings[1] == rankings[2][:10], mode


def test_statistics_stay_exact_through_replacing_and_deleting(database):
    knowledge_base = make_kb(database.session)
    store, first = add_document(database.session, knowledge_base, SMALL, name="first")
    _, second = add_document(database.session, knowledge_base, ["kiwi kiwi banana", "banana split"], name="second")
    assert statistics_are_exact(database.session, knowledge_base) == (6, 17)
    # The same node stored again replaces it, and counts once.
    node = store.get_nodes()[0]
    node.embedding = unit(1, 0, 0, 0)
    store.add([node])
    assert statistics_are_exact(database.session, knowledge_base) == (6, 17)
    store.delete(str(first.id))
    assert statistics_are_exact(database.session, knowledge_base) == (2, 5)
    # "apple" is gone from the knowledge base: a question about it finds nothing; kiwi is now in 1 of 2 chunks (the
    # IDF is today's; the chunk's weight keeps the average length of when it was stored, 17 / 6, which is within
    # keywords.DRIFT of today's 2.5).
    assert search(store, KEYWORD, "apple") == []
    assert search(store, KEYWORD, "kiwi")[0][1] == pytest.approx(
        expected_bm25(2, 3, 1, chunks=2, average=17 / 6), rel=1e-5)
    store.delete_nodes(node_ids=[store.get_nodes()[0].node_id])
    statistics_are_exact(database.session, knowledge_base)
    store.clear()
    assert statistics_are_exact(database.session, knowledge_base) == (0, 0)
    add_document(database.session, knowledge_base, SMALL, name="again")
    database.session.execute(sa.delete(KnowledgeBase).where(KnowledgeBase.id == knowledge_base.id))
    assert database.session.execute(sa.text(
        "SELECT count(*) FROM plg_pgvector_term_frequencies WHERE knowledge_base_id = :kb"),
        {"kb": knowledge_base.id}).scalar() == 0


def test_chunks_stored_without_keyword_data_are_filled_in_by_the_first_keyword_search(database):
    knowledge_base = make_kb(database.session)
    store, document = add_document(database.session, knowledge_base, SMALL[:2])
    # Rows as an older version (or a bulk COPY) wrote them: no terms, no weights, no statistics.
    database.session.execute(sa.insert(Chunk), [
        {"workspace_id": knowledge_base.workspace_id, "knowledge_base_id": knowledge_base.id,
         "document_id": document.id, "position": 10 + n, "text": text, "metadata_": {},
         "embedding": unit(1, 1, 1, 1), "embedding_dim": DIM} for n, text in enumerate(SMALL[2:])])
    hits = search(store, KEYWORD, "apple kiwi")
    assert [text for text, _ in hits][0] == "kiwi melon" and len(hits) == 4
    assert dict(hits)["apple melon"] == pytest.approx(expected_bm25(1, 2, 3), rel=1e-5)
    statistics_are_exact(database.session, knowledge_base)


def without_keyword_data(session, knowledge_base, document, texts, first=10):
    """Rows as an older version (or a bulk COPY) wrote them: no terms, no weights, no statistics."""
    session.execute(sa.insert(Chunk), [
        {"workspace_id": knowledge_base.workspace_id, "knowledge_base_id": knowledge_base.id,
         "document_id": document.id, "position": first + n, "text": text, "metadata_": {},
         "embedding": unit(1, 1, 1, 1), "embedding_dim": DIM} for n, text in enumerate(texts)])


def unfilled(session, knowledge_base) -> int:
    return session.scalar(sa.select(sa.func.count()).where(Chunk.knowledge_base_id == knowledge_base.id,
                                                           Chunk.terms.is_(None)))


def test_the_housekeeping_fills_in_knowledge_bases_only_searched_by_meaning_in_bounded_batches(database, monkeypatch):
    """A knowledge base nobody searches by keyword is filled in too, so the first keyword or hybrid search after an
    upgrade has nothing left to do; each batch is its own transaction, and one call stops at its budget."""
    from privex.services.components import vector_store_upkeep
    from privex_pgvector import keywords

    monkeypatch.setattr(keywords, "FILL_BATCH", 2)
    knowledge_base, other = make_kb(database.session, "meaning"), make_kb(database.session, "other")
    store, document = add_document(database.session, knowledge_base, SMALL[:1])
    without_keyword_data(database.session, knowledge_base, document, SMALL[1:])
    _, elsewhere = add_document(database.session, other, [])
    without_keyword_data(database.session, other, elsewhere, ["kiwi banana", "banana split", "melon"])
    assert len(search(store, VECTOR, embedding=unit(1, 1, 1, 1))) == 4
    assert unfilled(database.session, knowledge_base) == 3  # a search by meaning fills nothing
    assert keywords.fill_pending(budget=4) == 4
    assert unfilled(database.session, knowledge_base) + unfilled(database.session, other) == 2
    assert vector_store_upkeep() == 2  # the housekeeping's job: the rest
    assert unfilled(database.session, knowledge_base) == unfilled(database.session, other) == 0
    assert vector_store_upkeep() == 0
    for kb in (knowledge_base, other):
        statistics_are_exact(database.session, kb)
    # Filled in by batches, they rank as chunks stored with their keyword data do (each batch's weights take the
    # average length of its time, as ingestion's do, within keywords.DRIFT).
    texts = [text for text, _ in search(store, KEYWORD, "apple kiwi")]
    assert texts[0] == "kiwi melon" and texts[-1] == "apple melon grape pear plum lemon" and len(texts) == 4


def test_a_keyword_search_fills_in_every_remaining_batch_before_it_ranks(database, monkeypatch):
    from privex_pgvector import keywords

    monkeypatch.setattr(keywords, "FILL_BATCH", 2)
    knowledge_base = make_kb(database.session)
    store, document = add_document(database.session, knowledge_base, [])
    without_keyword_data(database.session, knowledge_base, document, SMALL + ["kiwi kiwi", "pear"])
    assert len(search(store, KEYWORD, "kiwi")) == 2  # both kiwi chunks, whichever batch held them
    assert unfilled(database.session, knowledge_base) == 0
    assert statistics_are_exact(database.session, knowledge_base) == (6, 15)


def test_concurrent_writers_of_one_knowledge_base_keep_the_statistics_exact(app):
    """Two sessions store documents into one knowledge base at once, each committing; the statistics row serialises
    them (no deadlock) and the counts match the chunks. Committed data, removed at the end."""
    from privex.extensions import db

    with app.app_context():
        knowledge_base = make_kb(db.session, "concurrent")
        db.session.commit()
        kb_id = knowledge_base.id
        organization_id = db.session.get(Workspace, knowledge_base.workspace_id).organization_id
    barrier = threading.Barrier(2)
    errors = []

    def writer(number):
        try:
            with app.app_context():
                knowledge_base = db.session.get(KnowledgeBase, kb_id)
                for round_ in range(5):
                    barrier.wait(timeout=30)
                    add_document(db.session, knowledge_base,
                                 [f"writer {number} round {round_} word{n} shared text" for n in range(20)],
                                 name=f"w{number}-{round_}")
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors
        with app.app_context():
            assert statistics_are_exact(db.session, db.session.get(KnowledgeBase, kb_id)) == (200, 200 * 7)  # "writer 1 round 0 word5 shared text"
    finally:
        with app.app_context():
            db.session.execute(sa.delete(Organization).where(Organization.id == organization_id))
            db.session.commit()


def test_a_long_chunks_embedding_and_weights_stay_in_its_row_where_searches_read_them(database):
    """Searches read the weights and the embedding of up to thousands of chunks a question: they are kept inside
    the row (storage MAIN, TOAST target 4,000 bytes), not out of line in TOAST, also in a chunk long enough that its
    row is TOASTed (its text goes out of line instead)."""
    import random

    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 10))) for _ in range(300)]
    knowledge_base = make_kb(database.session, "long")
    knowledge_base.embedding_dim = 384
    document = Document(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id, name="long")
    database.session.add(document)
    database.session.flush()
    store = PGVector().create(knowledge_base, 384)
    store.add([TextNode(text=" ".join(words), embedding=[rng.uniform(-1, 1) for _ in range(384)],
                        metadata={"position": 0},
                        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))})])
    out_of_line = database.session.execute(sa.text(
        "SELECT pg_column_toast_chunk_id(text) IS NOT NULL, pg_column_toast_chunk_id(embedding) IS NOT NULL, "
        "pg_column_toast_chunk_id(term_weights) IS NOT NULL FROM chunks WHERE knowledge_base_id = :kb"),
        {"kb": knowledge_base.id}).one()
    assert tuple(out_of_line) == (True, False, False)  # the row was too long for its page: the text went
    assert search(store, KEYWORD, words[17])[0][0] == " ".join(words)
