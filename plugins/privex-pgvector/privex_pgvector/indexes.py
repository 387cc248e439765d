"""A partial HNSW index of its own for each large knowledge base, kept by the housekeeping (``PGVector.upkeep``).

The table-wide index of a dimension (``store.ensure_index``) holds every knowledge base's chunks, so a query of one
knowledge base walks a graph in which most neighbours belong to others: pgvector's iterative scan keeps going until
enough rows pass the filter. At 100k chunks in 10 knowledge bases that was ~2,400 index tuples and ~13,800 buffer
hits for 50 rows of the queried one (~15 ms, most of a hybrid query), and the nearest 50 it found overlapped the
exact nearest 50 by a third. A knowledge base of ``THRESHOLD`` chunks or more gets an index of its own::

    CREATE INDEX plg_pgvector_hnsw_<dim>_kb_<id hex> ON chunks USING hnsw ((embedding::vector(dim)) vector_cosine_ops)
        WHERE embedding_dim = dim AND knowledge_base_id = '<id>'

which the planner chooses (it is smaller) when the query names the knowledge base as a literal (``store._distance``'s
statements render it so: a bound parameter does not prove a partial index's predicate in a generic plan). Its graph
holds that knowledge base alone: about a tenth of the tuples and buffers, and better recall (BENCHMARKS.md).

The indexes are built with ``CREATE INDEX CONCURRENTLY`` (ingestion and queries go on while one is built) in a
connection of their own, right after the transaction that stored the chunks taking a knowledge base past the
threshold commits (``grown``) or else by the worker's housekeeping, and dropped the same way once their knowledge base is deleted
or has shrunk below half the threshold (so one that hovers around it is not rebuilt again and again). A chunk of such
a knowledge base is written to both indexes; ingestion's cost is dominated by embedding, which this does not change.
Below the threshold the table-wide index (or, for a small knowledge base, an exact scan the planner prefers) is
fast enough, and every partial index adds a little to the planning of each query on ``chunks``.

The same knowledge bases get a partial GIN index of their own on ``terms`` (``plg_pgvector_terms_kb_<id hex>``),
for the keyword side: the table-wide ``ix_chunks_terms`` holds a word's chunks in every knowledge base, so a question
of one knowledge base whose rarest word is common decoded the whole table's posting list (25,700 entries, 4.1 ms at
100k chunks in 10 knowledge bases) and intersected it with the knowledge base's 10,000 rows to keep 3,076; its own
index holds those 3,076 (0.4 ms; BENCHMARKS.md). The keyword statements name the knowledge base as a literal too.
"""

from __future__ import annotations

import logging
import re
import uuid

import sqlalchemy as sa

from privex.extensions import db

log = logging.getLogger(__name__)

THRESHOLD = 5000  # chunks a knowledge base has before it gets an HNSW index of its own
PREFIX = "plg_pgvector_hnsw_"
TERMS_PREFIX = "plg_pgvector_terms_kb_"
BUILD_MEMORY = "256MB"  # maintenance_work_mem of a build: the graph of ~100k chunks of 384 dimensions fits
_PENDING = "privex_pgvector_index_pending"  # a session's info key: a build waits for its commit
LOCK = "privex_pgvector_own_indexes"  # the advisory lock of the process doing the upkeep
_NAME = re.compile(rf"^(?:{PREFIX}(\d+)_kb_|{TERMS_PREFIX})([0-9a-f]{{32}})$")


def name(dimension: int, kb: uuid.UUID) -> str:
    """The knowledge base's own HNSW index for embeddings of ``dimension``."""
    return f"{PREFIX}{int(dimension)}_kb_{uuid.UUID(str(kb)).hex}"


def terms_name(kb: uuid.UUID) -> str:
    """The knowledge base's own GIN index on ``terms``."""
    return f"{TERMS_PREFIX}{uuid.UUID(str(kb)).hex}"


def existing(connection) -> dict[str, bool]:
    """The per-knowledge-base indexes on ``chunks`` (both kinds): name -> valid (a concurrent build that failed
    leaves an invalid one behind, which is dropped and built again)."""
    rows = connection.execute(sa.text(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'chunks'::regclass AND c.relname LIKE 'plg\\_pgvector\\_%\\_kb\\_%'")).all()
    return {row.relname: bool(row.indisvalid) for row in rows if _NAME.match(row.relname)}


def wanted(connection, threshold: int) -> dict[str, str]:
    """The indexes the knowledge bases of ``threshold`` chunks or more should have: name -> the ``CREATE INDEX``
    statement's text after the name. The chunk counts are the keyword statistics' (kept exact by every writer), not
    a count over ``chunks``."""
    rows = connection.execute(sa.text(
        "SELECT kb.id, kb.embedding_dim FROM knowledge_bases kb "
        "JOIN plg_pgvector_keyword_statistics s ON s.knowledge_base_id = kb.id "
        "WHERE s.chunks >= :threshold AND kb.vector_store = 'pgvector'"), {"threshold": threshold}).all()
    indexes = {}
    for row in rows:
        kb = f"knowledge_base_id = '{uuid.UUID(str(row.id))}'"
        indexes[terms_name(row.id)] = f"ON chunks USING gin (terms) WHERE {kb}"
        if row.embedding_dim:
            dimension = int(row.embedding_dim)
            indexes[name(dimension, row.id)] = (
                f"ON chunks USING hnsw ((embedding::vector({dimension})) vector_cosine_ops) "
                f"WHERE embedding_dim = {dimension} AND {kb}")
    return indexes


def upkeep(threshold: int | None = None) -> int:
    """Build the missing indexes of large knowledge bases and drop those no longer needed; how many it changed."""
    db.session.commit()  # CREATE / DROP INDEX CONCURRENTLY wait for every open transaction, the caller's too
    return _on(db.session.get_bind(), THRESHOLD if threshold is None else threshold)


def grown(session, kb: uuid.UUID, dimension: int) -> None:
    """``add`` calls this in its transaction: a knowledge base that now has ``THRESHOLD`` chunks or more and no index
    of its own gets it as soon as that transaction commits, built by the process that stored the chunks (the
    ingestion worker), so a knowledge base grown by one upload is not searched through the table-wide index until
    the next housekeeping run. Two cheap reads per stored batch otherwise."""
    if session.info.get(_PENDING):
        return
    chunks = session.execute(sa.text("SELECT chunks FROM plg_pgvector_keyword_statistics WHERE knowledge_base_id = :kb"),
                             {"kb": kb}).scalar()
    if (chunks or 0) < THRESHOLD or not session.execute(
            sa.text("SELECT to_regclass(:vectors) IS NULL OR to_regclass(:terms) IS NULL"),
            {"vectors": name(dimension, kb), "terms": terms_name(kb)}).scalar():
        return
    session.info[_PENDING] = True
    bind = session.get_bind()

    def build(committed) -> None:
        committed.info.pop(_PENDING, None)
        if isinstance(bind, sa.engine.Connection):
            return  # inside someone else's transaction (the tests'): nothing is committed yet, the upkeep builds it
        try:
            _on(bind, THRESHOLD)
        except Exception:  # noqa: BLE001 - the chunks are stored; the housekeeping's upkeep tries again
            log.exception("pgvector: building the index of knowledge base %s failed", kb)

    sa.event.listen(session, "after_commit", build, once=True)


def _on(bind, threshold: int) -> int:
    if isinstance(bind, sa.engine.Connection):
        # Bound to a connection inside a transaction of someone else's (the tests' rolled-back one): CONCURRENTLY
        # cannot run in a transaction, the plain statements can.
        return _upkeep(bind, threshold, "")
    with bind.connect() as connection:
        return _upkeep(connection.execution_options(isolation_level="AUTOCOMMIT"), threshold, "CONCURRENTLY")


def _upkeep(connection, threshold: int, concurrently: str) -> int:
    # One process at a time (every worker runs the housekeeping as it starts): a second one would find the first's
    # index half built (invalid) and drop it. The others leave the work to it.
    if not connection.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"), {"name": LOCK}).scalar():
        return 0
    try:
        return _build_and_drop(connection, threshold, concurrently)
    finally:
        connection.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": LOCK})


def _build_and_drop(connection, threshold: int, concurrently: str) -> int:
    changed = 0
    have = existing(connection)
    want = wanted(connection, threshold)
    keep = set(want) | set(wanted(connection, max(1, threshold // 2)))  # shrunk ones: down to half the threshold
    for index, valid in have.items():
        if index not in keep or not valid:
            connection.execute(sa.text(f"DROP INDEX {concurrently} IF EXISTS {index}"))
            have[index] = False
            log.info("pgvector: dropped %s", index)
            changed += 1
    for index, definition in want.items():
        if have.get(index):
            continue
        connection.execute(sa.text(f"SET maintenance_work_mem = '{BUILD_MEMORY}'"))
        connection.execute(sa.text(f"CREATE INDEX {concurrently} IF NOT EXISTS {index} {definition}"))
        connection.execute(sa.text("RESET maintenance_work_mem"))
        log.info("pgvector: built %s", index)
        changed += 1
    return changed
