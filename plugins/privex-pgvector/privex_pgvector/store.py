"""``PGVectorStore``: LlamaIndex's vector store interface over PrivexBot's ``chunks`` table, for one knowledge base.

Every statement is limited to the store's knowledge base and workspace. Embeddings of any size share the table:
each dimension gets its own partial HNSW index on ``embedding::vector(N) WHERE embedding_dim = N`` (pgvector's way
to mix sizes), and queries repeat that expression so the planner uses it. Modes:

- ``default`` (vector): cosine similarity, HNSW with iterative scans so the knowledge-base filter keeps recall; a
  knowledge base past ``indexes.THRESHOLD`` chunks gets a partial HNSW index of its own (``indexes``), which the
  statements let the planner choose by naming the knowledge base and the dimension as literals;
- ``text_search`` / ``sparse`` (keyword): BM25 over the chunks' stemmed terms (``keywords``, ``terms``): the inner
  product of each chunk's stored BM25 weights with the question's IDF vector. In a large knowledge base only the
  chunks holding the question's *rarest* terms are scored (see ``KEYWORD_BUDGET``). ``ts_rank_cd`` over the
  former ``text_search`` column (dropped) was 0.19 nDCG@10 below BM25 on SciFact (no IDF, no length normalisation);
- ``hybrid`` (the default of the retrieval service): score fusion of both over a fixed pool of candidates, in one
  statement (``_hybrid``).

Every ordering ends with the chunk id, so equal scores rank the same in every process; each side ranks
``CANDIDATES`` chunks whatever ``top_k`` is, so a question's first hits do not change with ``top_k``.

Writes go through the Flask-SQLAlchemy session, so they commit or roll back with the caller's transaction
(deleting a document and its vectors is one transaction).
"""

from __future__ import annotations

import logging
import struct
import uuid
import weakref
from typing import Any, Sequence

import numpy as np
import sqlalchemy as sa
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (BasePydanticVectorStore, FilterCondition, FilterOperator,
                                                  MetadataFilters, VectorStoreQuery, VectorStoreQueryMode,
                                                  VectorStoreQueryResult)
from pgvector.sqlalchemy import SPARSEVEC, Vector
from psycopg.adapt import Dumper
from psycopg.pq import Format
from pydantic import PrivateAttr
from sqlalchemy.dialects.postgresql import ARRAY, insert

from privex.extensions import db
from privex.models import Chunk, Document
from privex_pgvector import indexes, keywords
from privex_pgvector import terms as bm25

# Candidates each side of a query ranks (vector: nearest by cosine; keyword: best by BM25), whatever top_k is: the
# same question ranks the same at top_k 5, 10 and 50 (the API's cap). Tuned on SciFact's training claims (BENCHMARKS.md).
CANDIDATES = 50
VECTOR_WEIGHT = 0.6  # hybrid: the weight of the normalised cosine similarity; BM25 gets the rest
# Hybrid fusion: "score" (min-max normalised scores, weighted) or "rrf" (reciprocal rank fusion, 1 / (RRF_K + rank)
# within the pooled candidates), kept to compare: score fusion measured better on SciFact (BENCHMARKS.md).
FUSION = "score"
RRF_K = 60
# HNSW's candidate list (hnsw.ef_search): twice the candidates a side ranks. Against an exact search of the queried
# knowledge base (100k chunks, 10 knowledge bases; BENCHMARKS.md) 100 found more of the exact nearest ten than 50
# (the former value) for a few percent more buffers, in the table-wide index and a knowledge base's own alike; 200
# found more still, but made the planner choose an exact scan of a 1,000-chunk knowledge base, slower at 10k chunks.
EF_SEARCH = 2 * CANDIDATES
INDEX_PREFIX = "plg_pgvector_hnsw_"  # plugin-owned objects start with plg_, which migrations leave alone
KEYWORD_MODES = {VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE}
ADD_BATCH = 1000  # rows per INSERT (14 parameters each)
# Scoring is what keyword search costs: each candidate chunk's weights are read and multiplied. In a large knowledge
# base a question's common words ("take", "effect") are in most chunks, so only the chunks holding its rarest terms
# are scored, as long as those add up to at most this many (from the exact per-term counts of the statistics).
# A chunk holding none of the rare terms can only score on common ones, whose IDF is low. 0 scores every match.
KEYWORD_BUDGET = 1000
_indexed: set[int] = set()
log = logging.getLogger(__name__)


def ensure_index(dimension: int) -> None:
    """Create the HNSW index for embeddings of ``dimension`` if it is missing (once per process)."""
    dimension = _dimension(dimension)
    if dimension in _indexed:
        return
    # Two first documents indexed at once would both create it, and one would fail on the catalog's unique key:
    # the second waits here until the first commits, then finds the index there.
    db.session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('privex_pgvector_hnsw'), :dimension)"),
                       {"dimension": dimension})
    db.session.execute(sa.text(
        f"CREATE INDEX IF NOT EXISTS {INDEX_PREFIX}{dimension} ON chunks "
        f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) WHERE embedding_dim = {dimension}"))
    _indexed.add(dimension)


def _dimension(value) -> int:
    dimension = int(value)
    if not 1 <= dimension <= 16000:
        raise ValueError(f"embedding dimension {value!r} is out of range (1-16000)")
    return dimension


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, str(value))


class PGVectorStore(BasePydanticVectorStore):
    stores_text: bool = True
    flat_metadata: bool = False
    knowledge_base_id: str
    workspace_id: str
    embedding_dim: int

    _kb: uuid.UUID = PrivateAttr()
    _ws: uuid.UUID = PrivateAttr()

    def __init__(self, **data: Any):
        super().__init__(**data)
        self._kb = uuid.UUID(self.knowledge_base_id)
        self._ws = uuid.UUID(self.workspace_id)
        self.embedding_dim = _dimension(self.embedding_dim)

    @classmethod
    def class_name(cls) -> str:
        return "PGVectorStore"

    @property
    def client(self) -> Any:
        return db.session

    # -- writing ---------------------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Insert (or replace) nodes; each needs an embedding of this store's size and its document as
        ``ref_doc_id``. ``metadata["position"]`` orders a document's chunks (their order of arrival otherwise)."""
        rows = []
        for index, node in enumerate(nodes):
            embedding = node.get_embedding()
            if len(embedding) != self.embedding_dim:
                raise ValueError(f"node {node.node_id} has a {len(embedding)}-dimensional embedding; this knowledge "
                                 f"base stores {self.embedding_dim}")
            if not node.ref_doc_id:
                raise ValueError(f"node {node.node_id} has no source document (ref_doc_id)")
            metadata = dict(node.metadata)
            rows.append({
                "id": _uuid(node.node_id), "workspace_id": self._ws, "knowledge_base_id": self._kb,
                "document_id": _uuid(node.ref_doc_id), "position": int(metadata.pop("position", index)),
                "text": node.get_content(), "content_hash": node.hash, "metadata": metadata,
                "embedding": embedding, "embedding_dim": self.embedding_dim,
                "token_count": metadata.pop("token_count", None),
            })
        if not rows:
            return []
        # Replacing a chunk takes the old one out of the statistics first (and locks them: every writer of this
        # knowledge base waits here for the one before it to commit).
        self._delete_where(Chunk.id.in_([row["id"] for row in rows]))
        keywords.prepare(rows, [row["text"] for row in rows], self._kb)
        table = Chunk.__table__
        # One statement per batch: PostgreSQL takes at most 65,535 parameters per statement, so one INSERT of every
        # row failed for a document of more than ~5,900 chunks (a PDF of about 10 MB of text, default chunking).
        for start in range(0, len(rows), ADD_BATCH):
            db.session.execute(insert(table).values(rows[start:start + ADD_BATCH]))
        indexes.grown(db.session(), self._kb, self.embedding_dim)
        return [str(row["id"]) for row in rows]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every chunk of one document."""
        self._delete_where(Chunk.document_id == _uuid(ref_doc_id))

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        conditions = []
        if node_ids:
            conditions.append(Chunk.id.in_([_uuid(node_id) for node_id in node_ids]))
        if filters:
            conditions.append(_filters(filters))
        if not conditions:
            raise ValueError("delete_nodes needs node_ids or filters; use clear() to delete everything")
        self._delete_where(*conditions)

    def clear(self) -> None:
        self._delete_where()

    def _delete_where(self, *conditions) -> None:
        """Delete the knowledge base's chunks matching ``conditions`` and take them out of its keyword
        statistics, in the caller's transaction."""
        keywords.lock(db.session, self._kb)
        deleted = db.session.execute(sa.delete(Chunk).where(*self._scope(), *conditions)
                                     .returning(Chunk.terms, Chunk.term_count)).all()
        keywords.forget(deleted, self._kb)

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                  **kwargs: Any) -> list[BaseNode]:
        statement = sa.select(Chunk).where(*self._scope()).order_by(Chunk.document_id, Chunk.position)
        if node_ids:
            statement = statement.where(Chunk.id.in_([_uuid(node_id) for node_id in node_ids]))
        if filters:
            statement = statement.where(_filters(filters))
        return [_node(chunk.id, chunk.document_id, chunk.text, chunk.metadata_, chunk.position)
                for chunk in db.session.scalars(statement)]

    # -- what the core asks every store (docs/plugins.md, "privex_vector_stores") -------------------------------

    def summary(self, document_id: str | None = None) -> dict:
        """How many chunks the knowledge base (or one document) has here, and their characters in all."""
        conditions = list(self._scope())
        if document_id is not None:
            conditions.append(Chunk.document_id == _uuid(document_id))
        count, characters = db.session.execute(sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.func.length(Chunk.text)), 0)).where(*conditions)).one()
        return {"chunks": int(count), "characters": int(characters)}

    def chunks(self, document_id: str, *, offset: int = 0, limit: int = 100) -> list[dict]:
        """One document's chunks in order, ``limit`` of them from ``offset``: what was indexed, to read back."""
        rows = db.session.scalars(sa.select(Chunk).where(*self._scope(), Chunk.document_id == _uuid(document_id))
                                  .order_by(Chunk.position).offset(offset).limit(limit))
        return [{"id": str(chunk.id), "position": chunk.position, "text": chunk.text,
                 "token_count": chunk.token_count, "metadata": dict(chunk.metadata_ or {})} for chunk in rows]

    # -- reading ---------------------------------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` chunks. ``score_threshold`` (keyword argument, 0-1) drops chunks whose cosine
        similarity to the query is lower, in every mode that has a query embedding. ``one_per_document`` (keyword
        argument) keeps only each document's best chunk, so the hits are ``similarity_top_k`` different documents
        (as far as the candidates hold them): the ranking is the same, a document's lower chunks are left out."""
        threshold = kwargs.get("score_threshold")
        one_per_document = bool(kwargs.get("one_per_document"))
        # Every ranked candidate (at most 2 · _depth rows) when a document's lower chunks are dropped afterwards.
        limit = None if one_per_document else query.similarity_top_k
        mode = query.mode
        if mode in KEYWORD_MODES:
            if not (query.query_str or "").strip():
                return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
            rows = self._keyword(query, threshold, limit)
        elif mode == VectorStoreQueryMode.HYBRID:
            if query.query_embedding is None:
                raise ValueError("a hybrid query needs query_embedding")
            searched = self._hybrid if (query.query_str or "").strip() else self._vector
            rows = searched(query, threshold, limit)
        elif mode == VectorStoreQueryMode.DEFAULT:
            if query.query_embedding is None:
                raise ValueError("a vector query needs query_embedding")
            rows = self._vector(query, threshold, limit)
        else:
            raise ValueError(f"query mode {mode.value!r} is not supported by pgvector (use default, hybrid or "
                             f"text_search)")
        if one_per_document:
            rows = _best_per_document(rows)[:query.similarity_top_k]
        nodes = [_node(row.id, row.document_id, row.text, row.metadata, row.position, row.document_name)
                 for row in rows]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(row.score) for row in rows],
                                      ids=[str(row.id) for row in rows])

    def _scope(self):
        return Chunk.knowledge_base_id == self._kb, Chunk.workspace_id == self._ws

    # The searches' statements are built once per shape (mode, embedding size, depth, threshold or not, fusion
    # settings) with every value a bound parameter, and kept: on the path of every chat message, building the hybrid
    # statement and its cache key cost more CPU than PostgreSQL took to run it. A query with metadata filters or
    # document ids has literal conditions of its own, so its statement is built for it alone.

    def _statement(self, key: tuple, query: VectorStoreQuery, build):
        """The statement ``build(conditions)`` makes for ``query``: kept under ``key`` when ``query`` has no
        conditions of its own (filters, document ids)."""
        extra = self._extra_conditions(query)
        if extra:
            return build(extra)
        key = (key, self.embedding_dim, self._depth(query), FUSION, RRF_K, VECTOR_WEIGHT)
        statement = _STATEMENTS.get(key)
        if statement is None:
            statement = _STATEMENTS.setdefault(key, build([]))
        return statement

    @staticmethod
    def _extra_conditions(query: VectorStoreQuery) -> list:
        conditions = []
        if query.filters:
            conditions.append(_filters(query.filters))
        if query.doc_ids:
            conditions.append(Chunk.document_id.in_([_uuid(doc_id) for doc_id in query.doc_ids]))
        return conditions

    def _params(self, query: VectorStoreQuery, limit: int | None, **values) -> dict:
        """The statements' parameters; ``limit`` None returns every ranked candidate (``LIMIT NULL``)."""
        return {"kb": self._kb, "ws": self._ws, "top_k": limit,
                "query_embedding": query.query_embedding, **values}

    def _indexed_dimension(self):
        """``embedding_dim = N`` as a literal, as the partial HNSW indexes' predicates have it (see ``_SCOPE``;
        the statements are kept per dimension)."""
        return Chunk.embedding_dim == sa.literal_column(str(self.embedding_dim))

    def _distance(self):
        """Cosine distance on ``embedding::vector(N)``: the expression the partial HNSW index is built on."""
        vector = Vector(self.embedding_dim)
        return sa.cast(Chunk.embedding, vector).cosine_distance(sa.cast(
            sa.bindparam("query_embedding", type_=QueryVector(self.embedding_dim)), vector))

    def _run(self, statement, params: dict, depth: int, *, hnsw: bool = True):
        """Rows of ``statement`` (run on the session's connection: plain columns need no ORM loading)."""
        connection = db.session.connection()
        if not connection.info.get(_BINARY_VECTORS):  # once per pooled connection: its psycopg dumps them
            connection.connection.dbapi_connection.adapters.register_dumper(BinaryVector, _BinaryVectorDumper)
            connection.info[_BINARY_VECTORS] = True
        if hnsw:
            # Filtered HNSW: keep walking the graph until enough rows pass the knowledge-base filter (pgvector 0.8).
            # A pooled connection gets the settings once, when it is checked out (``_configure``); this round trip
            # is left for a connection checked out before that hook was in place, or a deeper search than usual.
            _hook(connection.engine)
            ef_search = _ef_search(depth)
            if connection.info.get(_CONFIGURED) != ef_search:
                connection.execute(_HNSW_SETTINGS, {"ef_search": str(ef_search)})
        return connection.execute(statement, params).all()

    @staticmethod
    def _depth(query: VectorStoreQuery) -> int:
        """How many candidates each side of a query ranks: a constant, so the first hits of a question are the
        same whatever ``top_k`` asks for (as long as it is at most ``CANDIDATES``)."""
        return max(CANDIDATES, query.similarity_top_k)

    def _vector(self, query: VectorStoreQuery, threshold, limit):
        depth = self._depth(query)

        def build(extra):
            distance = self._distance()
            nearest = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                                 Chunk.position, (1 - distance).label("score"))
                       .where(*_SCOPE, *extra, self._indexed_dimension())
                       .order_by(distance, Chunk.id).limit(depth).subquery())
            statement = (sa.select(nearest, Document.name.label("document_name"))
                         .join(Document, Document.id == nearest.c.document_id)
                         .order_by(nearest.c.score.desc(), nearest.c.id).limit(_TOP_K))
            if threshold is not None:
                statement = statement.where(nearest.c.score >= _THRESHOLD)
            return statement

        statement = self._statement(("vector", threshold is not None), query, build)
        return self._run(statement, self._params(query, limit, threshold=threshold), depth)

    def _question(self, text: str) -> dict | None:
        """The question's terms as the keyword statements' parameters (``_QUESTION``: the statement itself looks up
        their statistics, weighs them and chooses which chunks to score); None when it has no words to search.

        The first keyword search of a knowledge base in a process fills in its chunks still without keyword data
        (``keywords.fill``), so its scores count every chunk; chunks are stored with it ever after."""
        counts = bm25.term_counts(text)
        if not counts:
            return None
        if self._kb not in _FILLED:
            if keywords.unfilled(self._kb):
                keywords.fill(self._kb)
            if len(_FILLED) > 100_000:
                _FILLED.clear()
            _FILLED.add(self._kb)
        terms = sorted(counts)
        return {"asked_terms": terms, "asked_counts": [counts[term] for term in terms], "kb_id": self._kb,
                "budget": KEYWORD_BUDGET, "candidates": CANDIDATES}

    @staticmethod
    def _keyword_candidates(conditions: list, depth: int):
        """The ``depth`` best chunks by BM25 among those holding the chosen terms: (id, score)."""
        distance_to = Chunk.term_weights.max_inner_product(_QUESTION_TERMS)
        return (sa.select(Chunk.id, (-distance_to).label("score"))
                .where(*_SCOPE, *conditions, Chunk.terms.overlap(_CHOSEN_TERMS))
                .order_by(distance_to, Chunk.id).limit(depth))

    def _keyword(self, query: VectorStoreQuery, threshold, limit):
        question = self._question(query.query_str)
        if question is None:
            return []
        depth = self._depth(query)
        thresholded = threshold is not None and query.query_embedding is not None

        def build(extra):
            best = self._keyword_candidates(extra, depth).subquery("best")
            statement = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                                   Chunk.position, best.c.score, Document.name.label("document_name"))
                         .join(best, best.c.id == Chunk.id).join(Document, Document.id == Chunk.document_id)
                         .order_by(best.c.score.desc(), Chunk.id).limit(_TOP_K))
            if thresholded:
                statement = statement.where(Chunk.embedding_dim == self.embedding_dim,
                                            1 - self._distance() >= _THRESHOLD)
            return statement

        statement = self._statement(("keyword", thresholded), query, build)
        return self._run(statement, self._params(query, limit, threshold=threshold, **question), depth,
                         hnsw=False)

    def _hybrid(self, query: VectorStoreQuery, threshold, limit):
        """Score fusion: the ``_depth`` nearest chunks and the ``_depth`` best by BM25 are pooled; each pooled
        chunk gets both its cosine similarity and its BM25 score (exact, also for a chunk only one side found),
        each min-max normalised over the pool, and ``VECTOR_WEIGHT · cosine + (1 − VECTOR_WEIGHT) · bm25`` ranks
        them. Ties go to the nearer chunk, then to the smaller id. A question none of whose words is in the knowledge
        base ranks as a vector search does, with the cosine similarity as its score."""
        question = self._question(query.query_str)
        if question is None:
            return self._vector(query, threshold, limit)
        depth = self._depth(query)

        def build(extra):
            distance = self._distance()
            nearest = (sa.select(Chunk.id).where(*_SCOPE, *extra, self._indexed_dimension())
                       .order_by(distance, Chunk.id).limit(depth))
            keyword_ids = sa.select(self._keyword_candidates(extra, depth).subquery("best").c.id)
            pool = sa.union(nearest, keyword_ids).subquery("pool")
            bm25_score = sa.func.coalesce(-Chunk.term_weights.max_inner_product(_QUESTION_TERMS), 0.0)
            # OFFSET 0 keeps PostgreSQL from pulling this subquery up into the next one, which would compute each
            # pooled chunk's cosine similarity and BM25 score (reading its embedding and weights) once per use.
            scored = (sa.select(Chunk.id, (1 - distance).label("cosine"), bm25_score.label("bm25"))
                      .join(pool, pool.c.id == Chunk.id).offset(0).subquery("scored"))

            def normalised(column):
                if FUSION == "rrf":
                    return 1.0 / (RRF_K + sa.func.rank().over(order_by=column.desc()))
                low, high = sa.func.min(column).over(), sa.func.max(column).over()
                return sa.func.coalesce((column - low) / sa.func.nullif(high - low, 0), 0.0)

            fused = sa.select(scored.c.id, scored.c.cosine, sa.case(
                (_CHOSEN_TERMS.is_(None), scored.c.cosine),
                else_=VECTOR_WEIGHT * normalised(scored.c.cosine) + (1 - VECTOR_WEIGHT) * normalised(scored.c.bm25),
            ).label("score")).subquery("fused")
            statement = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                                   Chunk.position, fused.c.score, Document.name.label("document_name"))
                         .join(fused, fused.c.id == Chunk.id).join(Document, Document.id == Chunk.document_id)
                         .order_by(fused.c.score.desc(), fused.c.cosine.desc(), Chunk.id).limit(_TOP_K))
            if threshold is not None:
                statement = statement.where(fused.c.cosine >= _THRESHOLD)
            return statement

        statement = self._statement(("hybrid", threshold is not None), query, build)
        return self._run(statement, self._params(query, limit, threshold=threshold, **question), depth)


# What the searches' statements are built from: the tenant and the question as bound parameters (``_params``). The
# knowledge base is named as a literal (rendered into the SQL at execution, so one cached statement serves every
# knowledge base): the planner proves a per-knowledge-base partial index's predicate (HNSW or GIN, ``indexes``) from a
# literal, not from a parameter of a generic plan (psycopg prepares a statement on its fifth execution, and
# PostgreSQL may then plan it once for any value).
_SCOPE = (Chunk.knowledge_base_id == sa.bindparam("kb", type_=Chunk.knowledge_base_id.type, literal_execute=True),
          Chunk.workspace_id == sa.bindparam("ws", type_=Chunk.workspace_id.type))
_TOP_K = sa.bindparam("top_k", type_=sa.Integer)
_THRESHOLD = sa.bindparam("threshold", type_=sa.Float)
# The question as BM25 sees it in the knowledge base, worked out inside each keyword statement from the question's
# term ids and their occurrences (``_question``), so a search is one round trip: ``weights`` is the question's vector
# (IDF from the knowledge base's statistics, times the term's occurrences in the question), ``chosen`` the terms
# whose chunks are scored. Those are the question's rarest, taken while the chunks holding them add up to at most
# ``KEYWORD_BUDGET`` (0: all), and always enough to hold ``CANDIDATES`` chunks when the knowledge base has that many:
# a chunk holding none of them can only score on the question's common words, whose IDF is low. Both are NULL when
# no word of the question is in any chunk. (Terms are 0-based, sparsevec's text 1-based.)
_QUESTION = sa.text(f"""
    WITH asked AS (
        SELECT u.term, u.occurrences, f.chunks AS df
        FROM unnest(CAST(:asked_terms AS int[]), CAST(:asked_counts AS int[])) AS u(term, occurrences)
        JOIN {keywords.FREQUENCIES} f ON f.knowledge_base_id = :kb_id AND f.term = u.term AND f.chunks > 0),
    ranked AS (
        SELECT term, occurrences, df, sum(df) OVER w AS total, row_number() OVER w AS n
        FROM asked WINDOW w AS (ORDER BY df, term)),
    marked AS (
        SELECT term, occurrences, df, bool_or(n > 1 AND CAST(:budget AS int) > 0 AND total > CAST(:budget AS int)
                                              AND total - df >= CAST(:candidates AS int)) OVER (ORDER BY df, term) AS past
        FROM ranked)
    SELECT (SELECT array_agg(term ORDER BY df, term) FROM marked WHERE NOT past) AS chosen,
           CAST((SELECT '{{' || string_agg((term + 1)::text || ':' || (occurrences * ln(
                     1 + (s.chunks - df + 0.5::float8) / (df + 0.5::float8)))::text, ',' ORDER BY term)
                     || '}}/{bm25.DIMENSIONS}' FROM marked) AS sparsevec) AS weights
    FROM {keywords.STATISTICS} s WHERE s.knowledge_base_id = :kb_id
""").columns(sa.column("chosen", ARRAY(sa.Integer)), sa.column("weights", SPARSEVEC())).cte("question")
_QUESTION_TERMS = sa.select(_QUESTION.c.weights).scalar_subquery()
_CHOSEN_TERMS = sa.select(_QUESTION.c.chosen).scalar_subquery()
_FILLED: set = set()  # knowledge bases this process has seen with keyword data for every chunk
# For one transaction (like SET LOCAL), both in one statement.
_HNSW_SETTINGS = sa.text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                         "set_config('hnsw.ef_search', :ef_search, true)")
_CONFIGURED = "privex_pgvector_ef_search"  # key of a pooled connection's ``info``: the ef_search its session has
_hooked: "weakref.WeakSet" = weakref.WeakSet()


class BinaryVector(bytes):
    """A vector in pgvector's binary format (its dimension and 0 as two big-endian 16-bit integers, then each value
    as a big-endian 4-byte float), sent by psycopg as a binary parameter: writing 384 floats as text (pgvector's
    ``Vector._to_db``) was the costliest Python of a search, about 0.15 ms, and PostgreSQL parsed them back."""

    @classmethod
    def of(cls, values) -> "BinaryVector":
        array = np.asarray(values, dtype=">f4")
        if array.ndim != 1:
            raise ValueError(f"a query embedding is one list of numbers, not an array of shape {array.shape}")
        return cls(struct.pack(">HH", array.shape[0], 0) + array.tobytes())


class _BinaryVectorDumper(Dumper):
    format = Format.BINARY  # no oid: the statement casts the parameter to vector(N), which types it

    def dump(self, obj: BinaryVector) -> bytes:
        return obj


# Key of a pooled connection's ``info``: its psycopg has the dumper (registered by ``_run``, which runs every statement
# binding a query vector, rather than in psycopg's global adapters, which every connection the process opens copies).
_BINARY_VECTORS = "privex_pgvector_binary_vectors"


class QueryVector(Vector):
    """pgvector's SQLAlchemy type for a query's embedding, bound as a ``BinaryVector``."""

    cache_ok = True

    def bind_processor(self, dialect):
        return lambda value: None if value is None else BinaryVector.of(value)


def _ef_search(depth: int) -> int:
    """HNSW's candidate list for a search of ``depth`` rows: ``EF_SEARCH`` or ``depth`` if more (pgvector's maximum
    is 1000)."""
    return min(1000, max(EF_SEARCH, depth))


def _hook(engine) -> None:
    """Configure each of ``engine``'s pooled connections once, as it is checked out (once per engine)."""
    if engine not in _hooked:
        sa.event.listen(engine, "checkout", _configure)
        _hooked.add(engine)


def _configure(dbapi_connection, record, proxy) -> None:
    """Pool checkout: give the connection's session the HNSW settings every vector search uses (the iterative
    scan, ``EF_SEARCH``), committed so a rolled-back request does not undo them: the searches then
    need no ``set_config`` round trip of their own. Once per connection (``record.info``)."""
    ef_search = _ef_search(CANDIDATES)
    if record.info.get(_CONFIGURED) == ef_search:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {ef_search}")
        dbapi_connection.commit()
    except Exception:  # noqa: BLE001 - a search then sets them for its transaction (``_run``); the checkout goes on
        log.warning("pgvector: could not set the HNSW settings of a pooled connection", exc_info=True)
        dbapi_connection.rollback()
        return
    record.info[_CONFIGURED] = ef_search
_STATEMENTS: dict = {}


def _best_per_document(rows) -> list:
    """``rows`` (best first) keeping only the first of each document."""
    seen, kept = set(), []
    for row in rows:
        if row.document_id not in seen:
            seen.add(row.document_id)
            kept.append(row)
    return kept


def _node(chunk_id, document_id, text, metadata, position, document_name=None) -> TextNode:
    metadata = dict(metadata or {})
    metadata["position"] = position
    metadata["document_id"] = str(document_id)
    if document_name is not None:  # a search's hits: what a citation shows, read with them (no second round trip)
        metadata["document_name"] = document_name
    return TextNode(id_=str(chunk_id), text=text, metadata=metadata,
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document_id))})


def _filters(filters: MetadataFilters):
    """LlamaIndex metadata filters as a SQL condition on the JSONB ``metadata`` column (``document_id`` is the
    column of that name)."""
    parts = []
    for item in filters.filters:
        parts.append(_filters(item) if isinstance(item, MetadataFilters) else _filter(item))
    if filters.condition == FilterCondition.OR:
        return sa.or_(*parts)
    if filters.condition == FilterCondition.NOT:
        return sa.not_(sa.and_(*parts))
    return sa.and_(*parts)


def _filter(item):
    op, value = item.operator, item.value
    if item.key == "document_id":
        column = Chunk.document_id
        values = value if isinstance(value, list) else [value]
        ids = [_uuid(v) for v in values]
        if op in (FilterOperator.EQ, FilterOperator.IN):
            return column.in_(ids)
        if op in (FilterOperator.NE, FilterOperator.NIN):
            return column.not_in(ids)
        raise ValueError(f"filter operator {op.value!r} does not apply to document_id")
    field = Chunk.metadata_[item.key]
    text = field.astext
    if op == FilterOperator.EQ:
        return Chunk.metadata_.contains({item.key: value})
    if op == FilterOperator.NE:
        return sa.not_(Chunk.metadata_.contains({item.key: value}))
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        if not isinstance(value, (int, float)):
            raise ValueError(f"filter {item.key} {op.value} needs a number")
        number = sa.case((sa.func.jsonb_typeof(field) == "number", text.cast(sa.Float)), else_=None)
        return {FilterOperator.GT: number > value, FilterOperator.GTE: number >= value,
                FilterOperator.LT: number < value, FilterOperator.LTE: number <= value}[op]
    if op in (FilterOperator.IN, FilterOperator.NIN):
        # Containment, as for EQ: comparing the values' JSON text missed 1 against 1.0 and any non-ASCII string
        # (json.dumps escapes it, PostgreSQL prints it as is).
        values = value if isinstance(value, list) else [value]
        matched = sa.or_(*(Chunk.metadata_.contains({item.key: v}) for v in values))
        return matched if op == FilterOperator.IN else sa.not_(matched)
    if op == FilterOperator.CONTAINS:
        return Chunk.metadata_.contains({item.key: [value]})
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        values = value if isinstance(value, list) else [value]
        checks = [Chunk.metadata_.contains({item.key: [v]}) for v in values]
        return sa.or_(*checks) if op == FilterOperator.ANY else sa.and_(*checks)
    if op == FilterOperator.TEXT_MATCH:
        return text.like(f"%{value}%")
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return text.ilike(f"%{value}%")
    if op == FilterOperator.IS_EMPTY:
        return sa.or_(field.is_(None), sa.func.jsonb_typeof(field) == "null", field == sa.text("'[]'::jsonb"))
    raise ValueError(f"filter operator {op.value!r} is not supported")
