"""``PGVectorStore``: LlamaIndex's vector store interface over PrivexBot's ``chunks`` table, for one knowledge base.

Every statement is limited to the store's knowledge base and workspace. Embeddings of any size share the table:
each dimension gets its own partial HNSW index on ``embedding::vector(N) WHERE embedding_dim = N`` (pgvector's way
to mix sizes), and queries repeat that expression so the planner uses it. Modes:

- ``default`` (vector): cosine similarity, HNSW with iterative scans so the knowledge-base filter keeps recall;
- ``text_search`` / ``sparse`` (keyword): PostgreSQL full text on the generated ``text_search`` column, any word
  of the query matching (a question rarely contains every word of its answer), ranked by ``ts_rank_cd``. In a large
  knowledge base only the chunks holding the question's *rare* words are ranked (see ``KEYWORD_BUDGET``);
- ``hybrid`` (the default of the retrieval service): reciprocal rank fusion of both, in one statement.

Writes go through the Flask-SQLAlchemy session, so they commit or roll back with the caller's transaction
(deleting a document and its vectors is one transaction).
"""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any, Sequence

import sqlalchemy as sa
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (BasePydanticVectorStore, FilterCondition, FilterOperator,
                                                  MetadataFilters, VectorStoreQuery, VectorStoreQueryMode,
                                                  VectorStoreQueryResult)
from pgvector.sqlalchemy import Vector
from pydantic import PrivateAttr
from sqlalchemy.dialects.postgresql import TSQUERY, insert

from privex.extensions import db
from privex.models import Chunk

RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al.): 1 / (60 + rank)
MIN_CANDIDATES = 20  # each side of a hybrid query contributes at least this many candidates (and top_k × 4)
INDEX_PREFIX = "plg_pgvector_hnsw_"  # plugin-owned objects start with plg_, which migrations leave alone
KEYWORD_MODES = {VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE}
ADD_BATCH = 1000  # rows per INSERT (11 parameters each)
# Ranking is what full text costs: every chunk a word of the question matches is read from TOAST and scored, and in
# a large knowledge base common words ("take", "account") match most of it (~7,600 of 10,000 chunks, 60-90 ms). So
# only the chunks holding the question's rarest words are ranked, as long as those words are in at most this many
# chunks in all (their document frequency in the knowledge base, counted up to the budget and cached); when every
# word is common, the chunks holding all of them, at most this many. Ranking still scores every word of the question.
# Below the budget nothing changes. 0 ranks every match.
KEYWORD_BUDGET = 400
FREQUENCY_SECONDS = 300.0  # how long a counted document frequency is trusted
_frequencies: dict[tuple[uuid.UUID, str], tuple[int, float]] = {}
_frequencies_lock = threading.Lock()
_indexed: set[int] = set()


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
        table = Chunk.__table__
        # One statement per batch: PostgreSQL takes at most 65,535 parameters per statement, so one INSERT of every
        # row failed for a document of more than ~5,900 chunks (a PDF of about 10 MB of text, default chunking).
        for start in range(0, len(rows), ADD_BATCH):
            statement = insert(table).values(rows[start:start + ADD_BATCH])
            replaced = {name: statement.excluded[name] for name in
                        ("text", "content_hash", "metadata", "embedding", "embedding_dim", "position",
                         "token_count")}
            replaced["updated_at"] = sa.func.now()
            db.session.execute(statement.on_conflict_do_update(index_elements=[table.c.id], set_=replaced))
        return [str(row["id"]) for row in rows]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every chunk of one document."""
        db.session.execute(sa.delete(Chunk).where(*self._scope(), Chunk.document_id == _uuid(ref_doc_id)))

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        conditions = list(self._scope())
        if node_ids:
            conditions.append(Chunk.id.in_([_uuid(node_id) for node_id in node_ids]))
        if filters:
            conditions.append(_filters(filters))
        if len(conditions) == 2:
            raise ValueError("delete_nodes needs node_ids or filters; use clear() to delete everything")
        db.session.execute(sa.delete(Chunk).where(*conditions))

    def clear(self) -> None:
        db.session.execute(sa.delete(Chunk).where(*self._scope()))

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
        similarity to the query is lower, in every mode that has a query embedding."""
        threshold = kwargs.get("score_threshold")
        mode = query.mode
        if mode in KEYWORD_MODES:
            if not (query.query_str or "").strip():
                return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
            rows = self._keyword(query, threshold)
        elif mode == VectorStoreQueryMode.HYBRID:
            if query.query_embedding is None:
                raise ValueError("a hybrid query needs query_embedding")
            rows = self._hybrid(query, threshold) if (query.query_str or "").strip() else self._vector(query,
                                                                                                     threshold)
        elif mode == VectorStoreQueryMode.DEFAULT:
            if query.query_embedding is None:
                raise ValueError("a vector query needs query_embedding")
            rows = self._vector(query, threshold)
        else:
            raise ValueError(f"query mode {mode.value!r} is not supported by pgvector (use default, hybrid or "
                             f"text_search)")
        nodes = [_node(row.id, row.document_id, row.text, row.metadata, row.position) for row in rows]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(row.score) for row in rows],
                                      ids=[str(row.id) for row in rows])

    def _scope(self):
        return Chunk.knowledge_base_id == self._kb, Chunk.workspace_id == self._ws

    def _conditions(self, query: VectorStoreQuery) -> list:
        """What every mode shares: the tenant, the metadata filters, the document ids."""
        conditions = list(self._scope())
        if query.filters:
            conditions.append(_filters(query.filters))
        if query.doc_ids:
            conditions.append(Chunk.document_id.in_([_uuid(doc_id) for doc_id in query.doc_ids]))
        return conditions

    def _distance(self, query: VectorStoreQuery):
        """Cosine distance on ``embedding::vector(N)``: the expression the partial HNSW index is built on."""
        vector = Vector(self.embedding_dim)
        return sa.cast(Chunk.embedding, vector).cosine_distance(sa.cast(
            sa.bindparam("query_embedding", query.query_embedding, type_=vector), vector))

    def _run(self, statement, query: VectorStoreQuery, *, hnsw: bool = True):
        if hnsw:
            # Filtered HNSW: keep walking the graph until enough rows pass the knowledge-base filter (pgvector 0.8).
            # Both settings in one statement, for the transaction (like SET LOCAL): one round trip, not two.
            db.session.execute(sa.text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                                       "set_config('hnsw.ef_search', :ef_search, true)"),
                               {"ef_search": str(min(1000, max(40, self._candidates(query))))})
        return db.session.execute(statement).all()

    @staticmethod
    def _candidates(query: VectorStoreQuery) -> int:
        return max(MIN_CANDIDATES, query.similarity_top_k * 4)

    def _vector(self, query: VectorStoreQuery, threshold):
        distance = self._distance(query)
        nearest = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                             Chunk.position, (1 - distance).label("score"))
                   .where(*self._conditions(query), Chunk.embedding_dim == self.embedding_dim)
                   .order_by(distance).limit(query.similarity_top_k).subquery())
        statement = sa.select(nearest).order_by(nearest.c.score.desc())
        if threshold is not None:
            statement = statement.where(nearest.c.score >= threshold)
        return self._run(statement, query)

    def _keyword(self, query: VectorStoreQuery, threshold):
        words = _any_word(query.query_str)
        rank = sa.func.ts_rank_cd(Chunk.text_search, words)
        selective = self._selective_words(query.query_str)

        def ranked(matching):
            statement = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                                   Chunk.position, rank.label("score"))
                         .where(*self._conditions(query), matching)
                         .order_by(rank.desc(), Chunk.position).limit(query.similarity_top_k))
            if threshold is not None and query.query_embedding is not None:
                statement = statement.where(Chunk.embedding_dim == self.embedding_dim,
                                            1 - self._distance(query) >= threshold)
            return self._run(statement, query, hnsw=False)  # full text only: the HNSW index is not used

        every_match = Chunk.text_search.op("@@")(words)
        rows = ranked(every_match if selective is None else self._within_budget(query, selective))
        if selective is not None and len(rows) < query.similarity_top_k:
            # The rare words found too few: the rest come from every match, after them (a chunk without the
            # question's rare words does not rank above one with them; its score is capped to keep the order).
            found = {row.id for row in rows}
            floor = min((float(row.score) for row in rows), default=None)
            for row in ranked(every_match):
                if row.id in found or len(rows) >= query.similarity_top_k:
                    continue
                score = float(row.score) if floor is None else min(float(row.score), floor)
                rows.append(SimpleNamespace(**{**row._asdict(), "score": score}))
        return rows

    def _within_budget(self, query: VectorStoreQuery, selective):
        """The chunks matching ``selective``, at most ``KEYWORD_BUDGET`` of them: when every word of the question is
        common, even the chunks holding all of them can be thousands, and ranking them all is what the budget avoids
        (which ones is then the table's order: such a question says little a ranking could use)."""
        return Chunk.id.in_(sa.select(Chunk.id).where(*self._conditions(query), Chunk.text_search.op("@@")(selective))
                            .limit(KEYWORD_BUDGET))

    def _selective_words(self, text: str):
        """The tsquery choosing which chunks a keyword query ranks, or None for every chunk matching any word.

        The question's words (lexemes), rarest first, are taken while the chunks holding them add up to at most
        ``KEYWORD_BUDGET``; they are OR-ed. When even the rarest is more common than that, all the words are AND-ed.
        None when the budget is off or every word fits in it (ranking every match is then cheap anyway)."""
        if KEYWORD_BUDGET <= 0:
            return None
        lexemes = db.session.execute(sa.text(
            "SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', :text)))"), {"text": text}).scalars().all()
        if not lexemes:
            return None
        counts = self._frequencies(lexemes)
        lexemes.sort(key=lambda lexeme: (counts[lexeme], lexeme))
        chosen, total = [], 0
        for lexeme in lexemes:
            if total + counts[lexeme] > KEYWORD_BUDGET:
                break
            chosen.append(lexeme)
            total += counts[lexeme]
        if len(chosen) == len(lexemes):
            return None
        joiner = " | " if chosen else " & "
        # Lexemes are quoted as tsquery literals (a quote inside one is doubled), so no word is read as an operator.
        words = joiner.join("'" + lexeme.replace("'", "''") + "'" for lexeme in (chosen or lexemes))
        return sa.cast(sa.bindparam("selective_words", words, type_=sa.Text), TSQUERY)

    def _frequencies(self, lexemes: list[str]) -> dict[str, int]:
        """In how many of the knowledge base's chunks each lexeme is, counted up to ``KEYWORD_BUDGET + 1`` (enough to
        know a word is too common) and cached for ``FREQUENCY_SECONDS`` per process."""
        now = time.monotonic()
        counts: dict[str, int] = {}
        with _frequencies_lock:
            for lexeme in lexemes:
                cached = _frequencies.get((self._kb, lexeme))
                if cached is not None and cached[1] > now:
                    counts[lexeme] = cached[0]
        missing = [lexeme for lexeme in lexemes if lexeme not in counts]
        if missing:
            rows = db.session.execute(sa.text(
                "SELECT lexeme, (SELECT count(*) FROM (SELECT 1 FROM chunks WHERE knowledge_base_id = :kb "
                "AND workspace_id = :ws AND text_search @@ quote_literal(lexeme)::tsquery LIMIT :cap) AS found) "
                "FROM unnest(CAST(:lexemes AS text[])) AS lexeme"),
                {"kb": self._kb, "ws": self._ws, "cap": KEYWORD_BUDGET + 1, "lexemes": missing}).all()
            counts.update((lexeme, count) for lexeme, count in rows)
            with _frequencies_lock:
                if len(_frequencies) > 100_000:
                    _frequencies.clear()
                _frequencies.update(((self._kb, lexeme), (counts[lexeme], now + FREQUENCY_SECONDS))
                                    for lexeme in missing)
        return counts

    def _hybrid(self, query: VectorStoreQuery, threshold):
        candidates = self._candidates(query)
        conditions = self._conditions(query)
        distance = self._distance(query)
        nearest = (sa.select(Chunk.id, distance.label("distance"))
                   .where(*conditions, Chunk.embedding_dim == self.embedding_dim)
                   .order_by(distance).limit(candidates).subquery("nearest"))
        vector_hits = sa.select(nearest.c.id, sa.func.row_number().over(order_by=nearest.c.distance).label("rank"))
        words = _any_word(query.query_str)
        rank = sa.func.ts_rank_cd(Chunk.text_search, words)
        selective = self._selective_words(query.query_str)
        matching = (sa.select(Chunk.id, rank.label("text_rank"))
                    .where(*conditions, Chunk.text_search.op("@@")(words) if selective is None
                           else self._within_budget(query, selective))
                    .order_by(rank.desc(), Chunk.id).limit(candidates).subquery("matching"))
        # Chunks the text ranking cannot tell apart share a rank (rank(), not row_number()), so an arbitrary order
        # among them does not decide the fused result; the query's meaning then does.
        keyword_hits = sa.select(matching.c.id, sa.func.rank().over(
            order_by=matching.c.text_rank.desc()).label("rank"))
        hits = sa.union_all(vector_hits, keyword_hits).subquery("hits")
        fused = (sa.select(hits.c.id, sa.func.sum(1.0 / (RRF_K + hits.c.rank)).label("score"))
                 .group_by(hits.c.id).subquery("fused"))
        statement = (sa.select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.metadata_.label("metadata"),
                               Chunk.position, fused.c.score)
                     .join(fused, fused.c.id == Chunk.id)
                     .order_by(fused.c.score.desc(), distance, Chunk.id).limit(query.similarity_top_k))
        if threshold is not None:
            statement = statement.where(1 - self._distance(query) >= threshold)
        return self._run(statement, query)


def _any_word(text: str):
    """A tsquery matching any word of ``text``: plainto_tsquery joins its lexemes with AND, questions want OR."""
    every_word = sa.cast(sa.func.plainto_tsquery("english", text), sa.Text)
    return sa.cast(sa.func.replace(every_word, "&", "|"), TSQUERY)


def _node(chunk_id, document_id, text, metadata, position) -> TextNode:
    metadata = dict(metadata or {})
    metadata["position"] = position
    metadata["document_id"] = str(document_id)
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
