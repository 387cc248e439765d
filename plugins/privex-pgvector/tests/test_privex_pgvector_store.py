"""The pgvector store against the real chunks table: modes, scoping, filters, thresholds, deletes, indexes."""

from __future__ import annotations

import math
import re
import uuid

import pytest
import sqlalchemy as sa
from flask.cli import ScriptInfo
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery,
                                                  VectorStoreQueryMode)

from privex.cli import main
from privex.models import Chunk, Document, KnowledgeBase, Organization, Workspace
from privex.plugins import load_plugins
from privex_pgvector import PGVector
from privex_pgvector import store as store_module
from privex_pgvector.store import INDEX_PREFIX, _indexed

DIM = 4


def unit(*values):
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


@pytest.fixture()
def kb(database):
    def make(name="kb", workspace=None, dim=DIM):
        if workspace is None:
            organization = Organization(name=f"org-{name}")
            workspace = Workspace(name="main", organization=organization)
            database.session.add_all([organization, workspace])
            database.session.flush()
        knowledge_base = KnowledgeBase(workspace_id=workspace.id, name=name, embedding_dim=dim)
        database.session.add(knowledge_base)
        database.session.flush()
        return knowledge_base

    return make


def add_document(database, knowledge_base, chunks, name="doc"):
    document = Document(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id, name=name)
    database.session.add(document)
    database.session.flush()
    store = PGVector().create(knowledge_base, knowledge_base.embedding_dim)
    nodes = [TextNode(text=text, embedding=embedding, metadata={"position": i, **metadata},
                      relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))})
             for i, (text, embedding, metadata) in enumerate(chunks)]
    store.add(nodes)
    return store, document


CORPUS = [
    ("The cat sat on the warm mat by the fire.", unit(1, 0, 0, 0), {"topic": "pets", "year": 2020}),
    ("Kubernetes schedules containers onto cluster nodes.", unit(0, 1, 0, 0), {"topic": "ops", "year": 2022}),
    ("Invoices are due thirty days after delivery.", unit(0, 0, 1, 0), {"topic": "billing", "year": 2023}),
    ("A refund for an invoice takes five business days.", unit(0, 0.6, 0.8, 0), {"topic": "billing", "year": 2024}),
]


def query(store, mode, text=None, embedding=None, top_k=3, **kwargs):
    return store.query(VectorStoreQuery(query_str=text, query_embedding=embedding, similarity_top_k=top_k,
                                        mode=mode, filters=kwargs.pop("filters", None),
                                        doc_ids=kwargs.pop("doc_ids", None)), **kwargs)


def texts(result):
    return [node.get_content() for node in result.nodes]


def test_every_mode_gives_its_hits_document_name_read_with_them(database, kb):
    """A citation names its document: the store reads the current name in the search itself (one round trip)."""
    knowledge_base = kb()
    store, document = add_document(database, knowledge_base, CORPUS[:2], name="pets.md")
    add_document(database, knowledge_base, CORPUS[2:], name="billing.md")
    document.name = "renamed pets.md"
    database.session.flush()
    for mode, text in ((VectorStoreQueryMode.DEFAULT, None), (VectorStoreQueryMode.TEXT_SEARCH, "cat invoice"),
                       (VectorStoreQueryMode.HYBRID, "cat invoice")):
        result = query(store, mode, text=text, embedding=unit(1, 0, 1, 0), top_k=4)
        names = {node.get_content(): node.metadata["document_name"] for node in result.nodes}
        assert names[CORPUS[0][0]] == "renamed pets.md" and names[CORPUS[2][0]] == "billing.md", mode


def test_vector_mode_ranks_by_cosine_similarity(database, kb):
    store, _ = add_document(database, kb(), CORPUS)
    result = query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(0, 0.1, 1, 0))
    assert texts(result)[0].startswith("Invoices")
    assert result.similarities == sorted(result.similarities, reverse=True)
    assert result.similarities[0] == pytest.approx(0.995, abs=0.01)


def test_keyword_mode_matches_any_word_and_ranks_the_better_match_first(database, kb):
    store, _ = add_document(database, kb(), CORPUS)
    result = query(store, VectorStoreQueryMode.TEXT_SEARCH, text="how long does an invoice refund take?")
    assert texts(result)[0].startswith("A refund for an invoice")
    assert any(text.startswith("Invoices are due") for text in texts(result))  # matched on "invoice" alone
    assert not any("cat" in text for text in texts(result))


# A knowledge base larger than the keyword budget (3 here): "account" is common, "refund" and "chargeback" rare.
BUDGETED = [(f"Your account settings: account login, account email, account name ({n}).", unit(1, 0, 0, 0), {})
            for n in range(6)] + [
    ("Ask for a refund within thirty days.", unit(0, 1, 0, 0), {}),
    ("A chargeback reverses a card payment.", unit(0, 0, 1, 0), {}),
]


@pytest.fixture()
def budget(monkeypatch):
    monkeypatch.setattr(store_module, "KEYWORD_BUDGET", 3)
    monkeypatch.setattr(store_module, "CANDIDATES", 2)


def test_in_a_large_knowledge_base_the_questions_rare_words_decide_the_keyword_hits(database, kb, budget):
    store, _ = add_document(database, kb(), BUDGETED)
    # The chunks dense with "account" would win on term frequency; IDF makes the rare word what the question is about.
    result = query(store, VectorStoreQueryMode.TEXT_SEARCH, text="refund to my account", top_k=1)
    assert texts(result) == [BUDGETED[6][0]]
    # Too few chunks hold the rare words: the common-word matches follow them, never before, scores not rising.
    result = query(store, VectorStoreQueryMode.TEXT_SEARCH, text="refund to my account", top_k=3)
    assert texts(result)[0] == BUDGETED[6][0] and len(texts(result)) == 3
    assert all("account" in text for text in texts(result)[1:])
    assert result.similarities == sorted(result.similarities, reverse=True)
    # Hybrid: with the embedding pointing at the account chunks, the rare word's chunk still gets fused in.
    # (the vector side weighs 0.6, so the six chunks it puts first stay first; the keyword side lifts the rare word's
    # chunk above the one neither side favours).
    fused = texts(query(store, VectorStoreQueryMode.HYBRID, text="chargeback on my account",
                        embedding=unit(1, 0, 0, 0), top_k=8))
    assert fused.index(BUDGETED[7][0]) < fused.index(BUDGETED[6][0])


def test_when_every_word_is_common_the_chunks_holding_the_rarest_are_ranked(database, kb, budget):
    store, _ = add_document(database, kb(), BUDGETED + [("Change the email of an account.", unit(0, 0, 0, 1), {})])
    result = query(store, VectorStoreQueryMode.TEXT_SEARCH, text="account email", top_k=10)
    assert len(texts(result)) == 7  # those holding the rarer of the two (a tie here: both are in all 7)
    assert all("account" in text.lower() for text in texts(result))


def test_word_frequencies_are_counted_per_knowledge_base(database, kb, budget):
    crowded, quiet = kb("crowded"), kb("quiet")
    add_document(database, crowded, [(f"refund refund account ({n})", unit(1, 0, 0, 0), {}) for n in range(5)])
    store, _ = add_document(database, quiet, BUDGETED)
    # "refund" is common next door; here it is rare, and it is what this knowledge base is searched by.
    result = query(store, VectorStoreQueryMode.TEXT_SEARCH, text="refund to my account", top_k=1)
    assert texts(result) == [BUDGETED[6][0]]


def test_hybrid_fuses_vector_and_keyword_hits(database, kb):
    store, _ = add_document(database, kb(), CORPUS)
    # The embedding points at the cat, the words at refunds: both kinds of evidence surface.
    result = query(store, VectorStoreQueryMode.HYBRID, text="refund", embedding=unit(1, 0, 0, 0), top_k=2)
    assert set(texts(result)) == {CORPUS[0][0], CORPUS[3][0]}
    both = query(store, VectorStoreQueryMode.HYBRID, text="invoice refund", embedding=unit(0, 0.6, 0.8, 0))
    assert texts(both)[0] == CORPUS[3][0]  # first in both lists, first after fusion


def test_hits_carry_their_document_and_position(database, kb):
    store, document = add_document(database, kb(), CORPUS)
    node = query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(0, 1, 0, 0), top_k=1).nodes[0]
    assert node.metadata["document_id"] == str(document.id) and node.metadata["position"] == 1
    assert node.ref_doc_id == str(document.id) and node.metadata["topic"] == "ops"


def test_queries_never_leave_their_knowledge_base_or_workspace(database, kb):
    mine = kb("mine")
    sibling = kb("sibling", workspace=database.session.get(Workspace, mine.workspace_id))
    stranger = kb("stranger")
    store, _ = add_document(database, mine, CORPUS[:1])
    add_document(database, sibling, [("The cat chased a second cat.", unit(1, 0, 0, 0), {})])
    add_document(database, stranger, [("A stranger's cat.", unit(1, 0, 0, 0), {})])
    for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.HYBRID):
        result = query(store, mode, text="cat", embedding=unit(1, 0, 0, 0), top_k=10)
        assert texts(result) == [CORPUS[0][0]], mode


def test_metadata_filters(database, kb):
    store, document = add_document(database, kb(), CORPUS)
    everything = unit(1, 1, 1, 1)

    def matching(*filters, condition="and"):
        result = query(store, VectorStoreQueryMode.DEFAULT, embedding=everything, top_k=10,
                       filters=MetadataFilters(filters=list(filters), condition=condition))
        return sorted(node.metadata["position"] for node in result.nodes)

    assert matching(MetadataFilter(key="topic", value="billing")) == [2, 3]
    assert matching(MetadataFilter(key="topic", value="billing", operator=FilterOperator.NE)) == [0, 1]
    assert matching(MetadataFilter(key="year", value=2022, operator=FilterOperator.GT)) == [2, 3]
    assert matching(MetadataFilter(key="topic", value=["pets", "ops"], operator=FilterOperator.IN)) == [0, 1]
    assert matching(MetadataFilter(key="topic", value="pets"), MetadataFilter(key="year", value=2024),
                    condition="or") == [0, 3]
    assert matching(MetadataFilter(key="document_id", value=str(document.id))) == [0, 1, 2, 3]
    assert matching(MetadataFilter(key="document_id", value=str(uuid.uuid4()))) == []


def test_doc_ids_limit_the_search_to_those_documents(database, kb):
    knowledge_base = kb()
    store, first = add_document(database, knowledge_base, CORPUS[:2], name="one")
    add_document(database, knowledge_base, CORPUS[2:], name="two")
    result = query(store, VectorStoreQueryMode.HYBRID, text="invoice cat", embedding=unit(1, 1, 1, 1), top_k=10,
                   doc_ids=[str(first.id)])
    assert sorted(texts(result)) == sorted(text for text, _, _ in CORPUS[:2])


def test_score_threshold_drops_weak_hits_in_every_mode(database, kb):
    store, _ = add_document(database, kb(), CORPUS)
    close_to_cat = unit(1, 0.05, 0, 0)
    for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.TEXT_SEARCH):
        result = query(store, mode, text="cat invoices", embedding=close_to_cat, top_k=10, score_threshold=0.9)
        assert texts(result) == [CORPUS[0][0]], mode


def test_delete_removes_one_documents_chunks_only(database, kb):
    knowledge_base = kb()
    store, first = add_document(database, knowledge_base, CORPUS[:2], name="one")
    _, second = add_document(database, knowledge_base, CORPUS[2:], name="two")
    store.delete(str(first.id))
    left = database.session.scalars(sa.select(Chunk.document_id).where(
        Chunk.knowledge_base_id == knowledge_base.id)).all()
    assert set(left) == {second.id} and len(left) == 2
    store.clear()
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.knowledge_base_id == knowledge_base.id)) == 0


def test_adding_the_same_node_again_replaces_it(database, kb):
    knowledge_base = kb()
    store, document = add_document(database, knowledge_base, CORPUS[:1])
    node_id = query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(1, 0, 0, 0), top_k=1).ids[0]
    store.add([TextNode(id_=node_id, text="The dog sat instead.", embedding=unit(1, 0, 0, 0),
                        metadata={"position": 0},
                        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))})])
    assert texts(query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(1, 0, 0, 0), top_k=5)) == [
        "The dog sat instead."]


def test_a_document_of_more_chunks_than_one_statement_takes_is_stored_whole(database, kb):
    # 11 parameters per row: one INSERT of 6,000 rows would pass PostgreSQL's limit of 65,535.
    knowledge_base = kb()
    store, document = add_document(database, knowledge_base,
                                   [(f"chunk {i}", unit(1, 0, 0, 0), {}) for i in range(6000)])
    positions = database.session.scalars(sa.select(Chunk.position).where(Chunk.document_id == document.id)
                                         .order_by(Chunk.position)).all()
    assert positions == list(range(6000))


def test_wrong_sized_embeddings_and_orphan_nodes_are_refused(database, kb):
    knowledge_base = kb()
    store = PGVector().create(knowledge_base, DIM)
    with pytest.raises(ValueError, match="3-dimensional embedding; this knowledge base stores 4"):
        store.add([TextNode(text="x", embedding=[1.0, 0, 0],
                            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(uuid.uuid4()))})])
    with pytest.raises(ValueError, match="no source document"):
        store.add([TextNode(text="x", embedding=unit(1, 0, 0, 0))])
    with pytest.raises(ValueError, match="not supported by pgvector"):
        query(store, VectorStoreQueryMode.MMR, embedding=unit(1, 0, 0, 0))


def test_knowledge_bases_of_different_dimensions_share_the_table(database, kb):
    small_store, _ = add_document(database, kb("small"), CORPUS[:1])
    wide = kb("wide", dim=6)
    wide_store, _ = add_document(database, wide, [("The cat in six dimensions.", [1, 0, 0, 0, 0, 0], {})])
    assert texts(query(small_store, VectorStoreQueryMode.DEFAULT, embedding=unit(1, 0, 0, 0))) == [CORPUS[0][0]]
    assert texts(query(wide_store, VectorStoreQueryMode.DEFAULT, embedding=[1, 0, 0, 0, 0, 0])) == [
        "The cat in six dimensions."]


def test_vector_queries_use_the_partial_hnsw_index(database, kb):
    _indexed.discard(DIM)  # this test's transaction must create it itself
    store, _ = add_document(database, kb(), CORPUS)
    names = database.session.scalars(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'")).all()
    assert f"{INDEX_PREFIX}{DIM}" in names
    database.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    vector = f"'[{','.join(map(str, unit(1, 0, 0, 0)))}]'"
    plan = "\n".join(database.session.scalars(sa.text(
        f"EXPLAIN SELECT id FROM chunks WHERE knowledge_base_id = '{store.knowledge_base_id}' "
        f"AND embedding_dim = {DIM} ORDER BY CAST(embedding AS VECTOR({DIM})) <=> CAST({vector} AS VECTOR({DIM})) "
        f"LIMIT 3")))
    assert f"{INDEX_PREFIX}{DIM}" in plan


def test_vector_queries_set_the_filtered_hnsw_scan_for_their_transaction(database, kb):
    store, _ = add_document(database, kb(), CORPUS)
    query(store, VectorStoreQueryMode.HYBRID, text="invoice", embedding=unit(1, 0, 0, 0), top_k=30)
    assert database.session.execute(sa.text("SHOW hnsw.iterative_scan")).scalar() == "relaxed_order"
    assert database.session.execute(sa.text("SHOW hnsw.ef_search")).scalar() == str(store_module.EF_SEARCH)


def test_plugin_indexes_are_not_migration_drift(app):
    from privex.extensions import db
    from privex_pgvector.store import ensure_index

    with app.app_context():
        _indexed.discard(DIM)
        ensure_index(DIM)  # committed for real: `db check` reads the live schema
        db.session.commit()
        assert f"{INDEX_PREFIX}{DIM}" in db.session.scalars(sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'")).all()
        db.session.remove()
    result = app.test_cli_runner().invoke(main, ["db", "check"], obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output


def test_the_store_is_found_through_its_entry_point():
    assert "pgvector" in load_plugins(allow=["pgvector"]).vector_stores


# -- an HNSW index of its own for a large knowledge base (indexes.py) ------------------------------------------------

def _searched_statements(engine):
    """The store's nearest-neighbour statements as sent to PostgreSQL, with their parameters."""
    seen = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if ("<=>" in statement or "<#>" in statement) and "ORDER BY" in statement:
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", record)


def _plan(connection, statement, parameters, *, generic=False, bitmap=False) -> str:
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a few rows: the planner would read them all
    if bitmap:
        # Keyword candidates: on a few rows the workspace's or knowledge base's b-tree would do. Without them (for this
        # transaction only: the caller rolls back) the choice is between the GIN indexes on terms, which shows whether
        # the statement proves the knowledge base's own index's predicate.
        connection.exec_driver_sql("DROP INDEX ix_chunks_workspace_id, ix_chunks_knowledge_base_id")
    if generic:
        # The plan PostgreSQL may settle on once psycopg has prepared the statement (its fifth execution): one for
        # any parameter values, so a bound knowledge base id could not prove a partial index's predicate.
        numbers: dict = {}
        numbered = re.sub(r"%\((\w+)\)s", lambda match: f"${numbers.setdefault(match[1], len(numbers) + 1)}",
                          statement)
        return "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN (GENERIC_PLAN) " + numbered))
    return "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters))


def test_a_large_knowledge_base_gets_an_hnsw_index_of_its_own_which_its_searches_use(app, monkeypatch):
    """Past the threshold the housekeeping builds the knowledge base's own partial indexes (HNSW for its vectors, GIN
    for its terms); its searches use them (also as a generic plan) and find what they found before; a small
    knowledge base gets none; deleting the knowledge base drops them at the next upkeep."""
    from privex.extensions import db
    from privex.services.components import vector_store_upkeep
    from privex.services.knowledge import delete_knowledge_base
    from privex_pgvector import indexes

    corpus = [(f"Chunk {n} about invoices and cats.", unit(1, n % 3, n % 5, 1), {}) for n in range(8)]
    with app.app_context():
        organization = Organization(name="org-own-index")
        workspace = Workspace(name="main", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.flush()
        large, small = (KnowledgeBase(workspace_id=workspace.id, name=name, embedding_dim=DIM)
                        for name in ("large", "small"))
        db.session.add_all([large, small])
        db.session.flush()
        large_store, _ = add_document(db, large, corpus)
        small_store, _ = add_document(db, small, corpus[:3])
        db.session.commit()
        own, other = indexes.name(DIM, large.id), indexes.name(DIM, small.id)
        try:
            def searches(store):
                return [(texts(result), result.similarities) for result in (
                    query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(1, 2, 3, 1), top_k=5),
                    query(store, VectorStoreQueryMode.HYBRID, text="invoices", embedding=unit(1, 0, 4, 1), top_k=5),
                    query(store, VectorStoreQueryMode.TEXT_SEARCH, text="invoices cats", top_k=5))]

            before = searches(large_store)
            db.session.rollback()
            assert indexes.existing(db.session.connection()) == {}
            monkeypatch.setattr(indexes, "THRESHOLD", 6)
            assert vector_store_upkeep() >= 1
            built = indexes.existing(db.session.connection())
            own_terms = indexes.terms_name(large.id)
            assert built.get(own) is True and built.get(own_terms) is True
            assert other not in built and indexes.terms_name(small.id) not in built
            seen, stop = _searched_statements(db.engine)
            try:
                assert searches(large_store) == before  # same hits, same scores
                small_hits = searches(small_store)
            finally:
                stop()
            db.session.rollback()
            # The large knowledge base's vector, hybrid and keyword statements, then the small one's.
            for (statement, parameters), used in zip(seen[:3], (own, own, own_terms)):
                for generic in (False, True):
                    plan = _plan(db.session.connection(), statement, parameters, generic=generic,
                                 bitmap=used == own_terms)
                    assert used in plan, plan
                    db.session.rollback()
            for statement, parameters in seen[3:]:
                assert "_kb_" not in _plan(db.session.connection(), statement, parameters)
                db.session.rollback()
            assert len(small_hits[0][0]) == 3
            db.session.rollback()
            delete_knowledge_base(large)
            vector_store_upkeep()
            left = indexes.existing(db.session.connection())
            assert own not in left and own_terms not in left
        finally:
            db.session.rollback()
            db.session.execute(sa.delete(Organization).where(Organization.id == organization.id))
            db.session.commit()
            indexes.upkeep(threshold=10 ** 9)  # none left for the other tests
            db.session.remove()


def test_pooled_connections_carry_the_hnsw_settings_so_a_search_needs_no_round_trip_for_them(app):
    from privex.extensions import db

    with app.app_context():
        organization = Organization(name="org-settings")
        workspace = Workspace(name="main", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.flush()
        knowledge_base = KnowledgeBase(workspace_id=workspace.id, name="settings", embedding_dim=DIM)
        db.session.add(knowledge_base)
        db.session.flush()
        store, _ = add_document(db, knowledge_base, CORPUS)
        db.session.commit()
        organization_id = organization.id
        try:
            query(store, VectorStoreQueryMode.DEFAULT, embedding=unit(1, 0, 0, 0))
            db.session.remove()  # the connection goes back to the pool; the next checkout configures it
            sent = []

            def record(connection, cursor, statement, parameters, context, executemany):
                sent.append(statement)

            sa.event.listen(db.engine, "before_cursor_execute", record)
            try:
                assert texts(query(store, VectorStoreQueryMode.HYBRID, text="invoice", embedding=unit(0, 0, 1, 0),
                                   top_k=1)) == [CORPUS[2][0]]
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", record)
            assert not [statement for statement in sent if "set_config" in statement]
            db.session.rollback()  # a rolled-back request does not undo them
            assert db.session.execute(sa.text("SHOW hnsw.iterative_scan")).scalar() == "relaxed_order"
            assert db.session.execute(sa.text("SHOW hnsw.ef_search")).scalar() == str(store_module.EF_SEARCH)
        finally:
            db.session.rollback()
            db.session.execute(sa.delete(Organization).where(Organization.id == organization_id))
            db.session.commit()
            db.session.remove()


def test_a_knowledge_base_keeps_its_own_index_down_to_half_the_threshold(database, kb, monkeypatch):
    """One that hovers around the threshold is not rebuilt again and again: its index goes below half of it."""
    from privex_pgvector import indexes

    monkeypatch.setattr(indexes, "THRESHOLD", 6)
    knowledge_base = kb("shrinking")
    store, _ = add_document(database, knowledge_base, [(f"Chunk {n}", unit(1, n, 0, 1), {}) for n in range(8)])
    own = indexes.name(DIM, knowledge_base.id)
    node_ids = [node.node_id for node in store.get_nodes()]
    assert indexes.upkeep() >= 1 and own in indexes.existing(database.session.connection())
    store.delete_nodes(node_ids[:3])  # 5 chunks: under the threshold, not under half of it
    assert indexes.upkeep() == 0 and own in indexes.existing(database.session.connection())
    store.delete_nodes(node_ids[3:6])  # 2 chunks
    assert indexes.upkeep() >= 1 and own not in indexes.existing(database.session.connection())
    assert [node.get_content() for node in store.get_nodes()] == ["Chunk 6", "Chunk 7"]


def test_the_transaction_taking_a_knowledge_base_past_the_threshold_builds_its_index_when_it_commits(app, monkeypatch):
    """Ingestion's commit builds it (the worker that stored the chunks), not the next housekeeping run."""
    from privex.extensions import db
    from privex_pgvector import indexes

    monkeypatch.setattr(indexes, "THRESHOLD", 6)
    with app.app_context():
        organization = Organization(name="org-grown")
        workspace = Workspace(name="main", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.flush()
        knowledge_base = KnowledgeBase(workspace_id=workspace.id, name="grown", embedding_dim=DIM)
        db.session.add(knowledge_base)
        db.session.flush()
        organization_id, own = organization.id, indexes.name(DIM, knowledge_base.id)
        try:
            add_document(db, knowledge_base, [(f"First {n}", unit(1, n, 0, 1), {}) for n in range(4)], name="a")
            db.session.commit()
            assert own not in indexes.existing(db.session.connection())  # 4 chunks
            db.session.rollback()
            add_document(db, knowledge_base, [(f"Second {n}", unit(1, 0, n, 1), {}) for n in range(4)], name="b")
            assert own not in indexes.existing(db.session.connection())  # not before the chunks are committed
            db.session.commit()
            built = indexes.existing(db.session.connection())
            assert built.get(own) is True and built.get(indexes.terms_name(knowledge_base.id)) is True
        finally:
            db.session.rollback()
            db.session.execute(sa.delete(Organization).where(Organization.id == organization_id))
            db.session.commit()
            indexes.upkeep(threshold=10 ** 9)
            db.session.remove()


@pytest.mark.parametrize("embedding", [unit(0.1, 0.6, 0.8, 0.3), tuple(unit(0.1, 0.6, 0.8, 0.3)),
                                       __import__("numpy").array(unit(0.1, 0.6, 0.8, 0.3), dtype="float64")])
def test_a_query_embedding_sent_in_binary_scores_exactly_as_its_numbers_say(database, kb, embedding):
    """The query's embedding goes to PostgreSQL as pgvector's binary format (``store.BinaryVector``), whatever
    sequence of numbers it comes as: every chunk's cosine similarity is the one computed here in float32."""
    import numpy as np

    store, _ = add_document(database, kb(), CORPUS)
    result = query(store, VectorStoreQueryMode.DEFAULT, embedding=embedding, top_k=4)
    asked = np.asarray(embedding, dtype=np.float32)
    expected = {text: float(np.dot(np.asarray(vector, dtype=np.float32), asked)) for text, vector, _ in CORPUS}
    assert texts(result) == sorted(expected, key=expected.get, reverse=True)
    for node, score in zip(result.nodes, result.similarities):
        assert score == pytest.approx(expected[node.get_content()], abs=1e-6)
