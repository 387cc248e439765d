"""Retrieval latency of ``privex.services.retrieval.retrieve`` per mode (vector, keyword, hybrid), 10k and 100k chunks.

Set-up, per size, in a child process against a fresh embedded PostgreSQL in a temporary folder (never ``instance/``),
with the app built by ``create_app`` and the migrations applied:

- one workspace holding 10 knowledge bases with the chunks spread evenly (documents of 50 chunks each); the queries
  go to one knowledge base, so every query filters 10% of the table;
- chunk texts are generated: 150-350 words of sentences from templates filled with Zipf-weighted words (a topic
  per knowledge base with a few dozen core words and a tail of 600 English words, general words, names, product
  codes), each followed by a clause of English words drawn by their real frequency (the whole words of the local
  model's WordPiece vocabulary, listed by frequency), so full-text search has realistic work to do: common words
  match most chunks, rare ones few (the output reports how many chunks the questions match);
- embeddings: a pool of real all-MiniLM-L6-v2 embeddings of generated chunks (``BENCH_RETRIEVAL_POOL``, 2000 by
  default, 200 per knowledge base) is stored as is; every other chunk gets a pool vector of its own knowledge base
  plus Gaussian noise, renormalised (embedding 100k texts with the model would take ~45 minutes on 2 cores);
- rows are loaded with binary ``COPY`` into ``chunks`` (``embedding_dim`` 384), then the store's ``ensure_index(384)``
  builds the HNSW index after the load (timed), the keyword data is filled in and ``VACUUM ANALYZE chunks`` runs;
  then ``indexes.upkeep()`` (what the worker's housekeeping runs) gives each knowledge base of ``indexes.THRESHOLD``
  chunks or more an HNSW index of its own and a GIN index on its terms (timed): at 100k chunks all ten get them, at
  10k none. With the table-wide index alone the queried knowledge base's 50 nearest took pgvector's iterative scan
  ~3,900 buffer hits at 100k chunks; with its own index ~780 (see
  ``privex_pgvector.indexes`` and BENCHMARKS.md). ``BENCH_RETRIEVAL_FOLDER`` keeps the database for ``EXPLAIN
  (ANALYZE, BUFFERS)`` of the store's statements afterwards (buffer counts do not depend on the machine's load).

Measured per mode, after a warm-up: ``retrieve()`` end to end (the query embedded by the real local model, the store's
SQL, the document names), the store's ``query()`` alone with a precomputed embedding (SQL plus result building), and
the query embedding alone (``embed_model.get_query_embedding``). Questions are built from the queried knowledge
base's vocabulary; the same questions are used for every mode. The HNSW settings reported are read back from the
session after one of the store's queries. Other load on the machine shows in every figure, the query embedding most
(PyTorch's threads compete for the cores): the load average is printed beside the results.

Environment variables (defaults are the issue's sizes):

- ``BENCH_RETRIEVAL_SIZES``: comma-separated chunk counts, default ``10000,100000``;
- ``BENCH_RETRIEVAL_QUERIES``: timed queries per mode, default 200 (plus 20 warm-up queries);
- ``BENCH_RETRIEVAL_POOL``: chunks embedded with the real model, default 2000;
- ``BENCH_RETRIEVAL_FOLDER``: a folder to work in and keep (the embedded PostgreSQL in ``pgdata/``, one database
  ``bench_<size>`` per size, for ``EXPLAIN ANALYZE`` afterwards), instead of a temporary one.

``python -m benchmarks.retrieval`` runs it alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import child_env
from benchmarks.corpus import TOPICS, SentencePool, vocabularies

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIZES = [int(size) for size in os.environ.get("BENCH_RETRIEVAL_SIZES", "10000,100000").split(",") if size.strip()]
QUERIES = int(os.environ.get("BENCH_RETRIEVAL_QUERIES", "200"))
POOL = int(os.environ.get("BENCH_RETRIEVAL_POOL", "2000"))
WARM_UP = 20
KNOWLEDGE_BASES = 10
CHUNKS_PER_DOCUMENT = 50
QUERIED = 3  # index of the knowledge base the queries go to
TOP_K = 5
NOISE = 0.025  # standard deviation of the noise added per dimension to a pool vector (unit length, 384 dimensions)
MODES = ("vector", "keyword", "hybrid")
DIMENSION = 384

# -- the parent: one child process per size ---------------------------------------------------------------------

def run() -> str:
    started = time.perf_counter()
    results = []
    kept = os.environ.get("BENCH_RETRIEVAL_FOLDER")
    with tempfile.TemporaryDirectory(prefix="privex-bench-retrieval-") as temporary:
        folder = kept or temporary
        Path(folder).mkdir(parents=True, exist_ok=True)
        for size in SIZES:
            output = Path(folder) / f"result-{size}.json"
            subprocess.run([sys.executable, "-m", "benchmarks.retrieval", "--child", folder, str(size)],
                           check=True, env=child_env(), cwd=Path(__file__).resolve().parent.parent)
            results.append(json.loads(output.read_text()))
    return _markdown(results, time.perf_counter() - started)


def _ms(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered) * 1000, p95 * 1000, statistics.mean(ordered) * 1000


def _markdown(results: list[dict], seconds: float) -> str:
    first = results[0]
    lines = [
        f"\n### Retrieval latency (`retrieve()`, top {TOP_K}, {KNOWLEDGE_BASES} knowledge bases in one workspace, "
        f"one queried)\n\n",
        f"PostgreSQL {first['server']['postgres']}, pgvector {first['server']['pgvector']}; HNSW (cosine, partial "
        f"index per dimension) with "
        f"{first['server']['index_options'] or 'no index options, so m = 16 and ef_construction = 64'}; the store's "
        f"queries run with hnsw.ef_search = {first['hnsw']['ef_search']}, hnsw.iterative_scan = "
        f"{first['hnsw']['iterative_scan']} and hnsw.max_scan_tuples = {first['hnsw']['max_scan_tuples']} (read back "
        f"from the session after one of them). Index built after the bulk "
        f"load with maintenance_work_mem = {first['server']['maintenance_work_mem_build']} "
        f"(server default {first['server']['maintenance_work_mem']}), shared_buffers = "
        f"{first['server']['shared_buffers']}, work_mem = {first['server']['work_mem']}.\n\n",
        f"Method: chunk texts of 150-350 words (mean {first['words_per_chunk']:.0f}) generated from sentence "
        f"templates filled with Zipf-weighted words (a topic per knowledge base: a few dozen core words and a tail "
        f"of 600 English words) each followed by a clause of English words drawn by their real frequency (the "
        f"~20k whole words of the model's WordPiece vocabulary, which lists them by frequency); {first['pool']} of "
        f"them embedded with all-MiniLM-L6-v2, every other chunk given a pool vector of its knowledge base plus "
        f"Gaussian noise "
        f"(σ = {NOISE} per dimension, mean cosine to its pool vector {first['noise_cosine']:.2f}) renormalised; "
        f"rows loaded with binary COPY, then `ensure_index(384)`, the keyword data filled in and `VACUUM ANALYZE chunks`. {first['queries']} questions "
        f"per mode built from the queried knowledge base's vocabulary, after {WARM_UP} warm-up queries; the same "
        f"questions in every mode. *retrieve()* is end to end (query embedding by the local model on the CPU, "
        f"the store's SQL, document names); *store query* is `PGVectorStore.query()` with a precomputed embedding "
        f"(SQL round trips plus building the results); *embedding* is `get_query_embedding` alone.\n\n",
        f"Knowledge bases of {first.get('own_index_threshold', 0):,} chunks or more get an HNSW index of their own "
        f"(`privex_pgvector.indexes`, built by the housekeeping's `upkeep()`, here right after the load).\n\n",
        "| chunks (queried KB) | load (COPY) | HNSW build | index size | own indexes: count, build, size | "
        "table size (with TOAST) |\n|---|---|---|---|---|---|\n",
    ]
    for result in results:
        lines.append(f"| {result['chunks']:,} ({result['kb_chunks']:,}) | {result['load_seconds']:.1f} s | "
                     f"{result['index_seconds']:.1f} s | {result['index_mb']:.0f} MB | "
                     f"{result.get('own_indexes', 0)}, {result.get('own_index_seconds', 0):.1f} s, "
                     f"{result.get('own_index_mb', 0):.0f} MB | {result['table_mb']:.0f} MB |\n")
    lines.append("\n| chunks | mode | retrieve() p50 / p95 / mean (ms) | store query p50 / p95 / mean (ms) | "
                 "retrieve() mean = embedding + store query + rest (ms) |\n|---|---|---|---|---|\n")
    for result in results:
        embedding_mean = result["embedding"][2]
        for mode in MODES:
            e2e, sql = result["modes"][mode]["retrieve"], result["modes"][mode]["store"]
            embedded = embedding_mean if mode != "keyword" else 0.0
            lines.append(f"| {result['chunks']:,} | {mode} | {e2e[0]:.1f} / {e2e[1]:.1f} / {e2e[2]:.1f} | "
                         f"{sql[0]:.1f} / {sql[1]:.1f} / {sql[2]:.1f} | {e2e[2]:.1f} = {embedded:.1f} + "
                         f"{sql[2]:.1f} + {e2e[2] - embedded - sql[2]:.1f} |\n")
    lines.append("\n| chunks | query embedding alone p50 / p95 / mean (ms) |\n|---|---|\n")
    for result in results:
        p50, p95, mean = result["embedding"]
        lines.append(f"| {result['chunks']:,} | {p50:.1f} / {p95:.1f} / {mean:.1f} |\n")
    lines.append("\nKeyword matches per question in the queried knowledge base (chunks holding any word of the "
                 "question): " + "; ".join(
                     f"{result['chunks']:,} chunks: median {result['matches'][0]:,.0f} "
                     f"({result['matches'][0] / result['kb_chunks'] * 100:.0f}%), p10 {result['matches'][1]:,}, "
                     f"p90 {result['matches'][2]:,}" for result in results) + f". BM25 scores those holding the "
                 f"question's rarest terms, as long as they add up to at most {results[0].get('keyword_budget', 0)} "
                 f"chunks (`KEYWORD_BUDGET`, from the knowledge base's exact term counts), and at least "
                 f"{results[0].get('candidates', 0)} (`CANDIDATES`). The chunks were loaded by COPY without keyword "
                 f"data; the store's `keywords.fill` gave every knowledge base its terms, weights and statistics "
                 f"afterwards in " + "; ".join(f"{result.get('fill_seconds', 0):.0f} s ({result['chunks']:,})"
                                               for result in results) + ".\n")
    lines.append("\nThe *rest* of `retrieve()` is what the two parts timed alone do not explain: building the hits "
                 "(the store reads their document names in its statement), and the SQL running right after the model "
                 "rather than on its own (the model's threads wind down after a forward pass; on few cores they "
                 "compete with PostgreSQL for the CPU).\n")
    largest = max(results, key=lambda result: result["chunks"])
    hybrid_p95 = largest["modes"]["hybrid"]["retrieve"][1]
    if largest["chunks"] >= 100_000:
        verdict = "met" if hybrid_p95 < 25 else "**not met**"
        target = f"{verdict}: {hybrid_p95:.1f} ms at {largest['chunks']:,} chunks"
    else:
        target = f"not measured (largest size {largest['chunks']:,} chunks, hybrid p95 {hybrid_p95:.1f} ms)"
    lines.append(f"\nTarget (hybrid p95 < 25 ms at 100k chunks, end to end): {target}. Timings depend on what else "
                 f"the machine runs; load average when each size started: "
                 f"{'; '.join(result['load'] for result in results)}. Benchmark wall time {seconds:.0f} s.\n")
    return "".join(lines)


# -- the child: one size, one database ----------------------------------------------------------------------------

def _progress(message: str) -> None:
    print(f"[retrieval] {message}", file=sys.stderr, flush=True)


def _pool_embeddings(folder: Path, pools: list[SentencePool]) -> tuple[list[list[str]], "object"]:
    """Texts of the real-embedded chunks per knowledge base and their embeddings (cached in ``folder``, so the
    second size reuses the first's)."""
    import numpy as np

    per_kb = max(1, POOL // KNOWLEDGE_BASES)
    texts = [[pool.chunk() for _ in range(per_kb)] for pool in pools]
    cache = folder / f"pool-{per_kb}.npy"
    if cache.exists():
        return texts, np.load(cache)
    from privex_llms.embeddings.local import embed

    _progress(f"embedding {per_kb * KNOWLEDGE_BASES} pool chunks with the real model")
    started = time.perf_counter()
    flat = [text for kb_texts in texts for text in kb_texts]
    vectors = np.asarray(embed(flat, batch_size=64), dtype=np.float32).reshape(KNOWLEDGE_BASES, per_kb, DIMENSION)
    _progress(f"pool embedded in {time.perf_counter() - started:.0f} s")
    np.save(cache, vectors)
    return texts, vectors


def child(folder: Path, size: int) -> None:
    import numpy as np
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from privex import embedded
    from privex.app import create_app
    from privex.extensions import db
    from privex.models import Document, KnowledgeBase, Organization, Workspace
    from privex.services import components
    from privex.services.retrieval import MODES as RETRIEVAL_MODES
    from privex.services.retrieval import retrieve
    from privex_pgvector import store as keyword_store
    from privex_pgvector.store import ensure_index

    vocab = vocabularies()
    pools = [SentencePool(vocabulary) for vocabulary in vocab]
    pool_texts, pool_vectors = _pool_embeddings(folder, pools)

    # Always a new database, also in a kept folder that holds one from an earlier run.
    embedded.postgres_url(folder / "pgdata", f"bench_{size}")
    embedded.drop_database(folder / "pgdata", f"bench_{size}")
    url = embedded.postgres_url(folder / "pgdata", f"bench_{size}")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / f"instance-{size}"),
                      "SECRET_KEY": "benchmark-secret-key", "LOG_LEVEL": "WARNING"})
    result: dict = {"load": " ".join(f"{value:.2f}" for value in os.getloadavg()), "chunks": size,
                    "pool": pool_vectors.shape[0] * pool_vectors.shape[1], "queries": QUERIES}
    with app.app_context():
        upgrade()
        organization = Organization(name="Bench")
        workspace = Workspace(name="bench", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.flush()
        bases = [KnowledgeBase(workspace_id=workspace.id, name=f"kb-{number}-{topic}")
                 for number, topic in enumerate(TOPICS)]
        db.session.add_all(bases)
        db.session.flush()
        per_kb = size // KNOWLEDGE_BASES
        documents: list[list[uuid.UUID]] = []
        rows = []
        for number, kb in enumerate(bases):
            ids = [uuid.uuid4() for _ in range((per_kb + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT)]
            documents.append(ids)
            rows += [{"id": doc_id, "workspace_id": workspace.id, "knowledge_base_id": kb.id,
                      "name": f"{kb.name}-{index:04d}.md", "status": "indexed", "source_type": "upload"}
                     for index, doc_id in enumerate(ids)]
        db.session.execute(sa.insert(Document), rows)
        db.session.commit()

        _progress(f"{size:,} chunks: generating texts and loading them")
        rng = np.random.default_rng(5)
        started = time.perf_counter()
        words, cosines = 0, []
        raw = db.engine.raw_connection()
        try:
            from pgvector.psycopg import register_vector
            from psycopg.types.json import Jsonb

            connection = raw.driver_connection
            register_vector(connection)
            with connection.cursor() as cursor:
                columns = "id, workspace_id, knowledge_base_id, document_id, position, text, metadata, embedding, " \
                          "embedding_dim"
                with cursor.copy(f"COPY chunks ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "uuid", "uuid", "uuid", "int4", "text", "jsonb", "vector", "int2"])
                    for number, kb in enumerate(bases):
                        real_texts, real = pool_texts[number], pool_vectors[number]
                        derived = per_kb - min(per_kb, len(real_texts))
                        picks = rng.integers(0, len(real), derived)
                        noisy = real[picks] + rng.normal(0, NOISE, (derived, DIMENSION)).astype(np.float32)
                        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                        cosines.append(float(np.mean(np.sum(noisy * real[picks], axis=1))) if derived else 1.0)
                        vectors = np.concatenate([real[:per_kb], noisy])
                        for index in range(per_kb):
                            text = real_texts[index] if index < len(real_texts) else pools[number].chunk()
                            words += text.count(" ") + 1
                            document = documents[number][index // CHUNKS_PER_DOCUMENT]
                            copy.write_row((uuid.uuid4(), workspace.id, kb.id, document,
                                            index % CHUNKS_PER_DOCUMENT, text,
                                            Jsonb({"file_name": f"{kb.name}-{index // CHUNKS_PER_DOCUMENT:04d}.md",
                                                   "source_type": "upload", "heading": f"Section {index % 7 + 1}"}),
                                            vectors[index], DIMENSION))
            connection.commit()
        finally:
            raw.close()
        result["load_seconds"] = time.perf_counter() - started
        result["words_per_chunk"] = words / (per_kb * KNOWLEDGE_BASES)
        result["noise_cosine"] = statistics.mean(cosines)
        result["kb_chunks"] = per_kb
        _progress(f"loaded in {result['load_seconds']:.0f} s; building the HNSW index")

        server = {
            "postgres": db.session.execute(sa.text("SHOW server_version")).scalar(),
            "pgvector": db.session.execute(sa.text(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar(),
            "maintenance_work_mem": db.session.execute(sa.text("SHOW maintenance_work_mem")).scalar(),
            "shared_buffers": db.session.execute(sa.text("SHOW shared_buffers")).scalar(),
            "work_mem": db.session.execute(sa.text("SHOW work_mem")).scalar(),
        }
        db.session.commit()
        started = time.perf_counter()
        # pgvector's advice for building an index over existing rows: enough memory for the whole graph.
        db.session.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))
        server["maintenance_work_mem_build"] = "1GB"
        ensure_index(DIMENSION)
        db.session.commit()
        result["index_seconds"] = time.perf_counter() - started
        _progress("filling in the keyword data (terms, BM25 weights, statistics)")
        started = time.perf_counter()
        from privex_pgvector import keywords
        for base in bases:
            keywords.fill(base.id)
        result["fill_seconds"] = time.perf_counter() - started
        # Filling in rewrote every row (COPY loaded them without keyword data, which ingestion writes with the row):
        # VACUUM takes the dead half away, as autovacuum soon would, so the queries do not meet the autovacuum
        # working through it meanwhile (at 10k chunks that doubled the vector p95) nor a table twice its size.
        db.session.commit()
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE chunks"))
        # What the worker's housekeeping does next: an HNSW index of its own for each knowledge base past
        # indexes.THRESHOLD chunks (CREATE INDEX CONCURRENTLY, one after the other).
        from privex_pgvector import indexes
        started = time.perf_counter()
        result["own_indexes"] = indexes.upkeep()
        result["own_index_seconds"] = time.perf_counter() - started
        result["own_index_threshold"] = indexes.THRESHOLD
        result["own_index_mb"] = float(db.session.execute(sa.text(
            "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) / 1048576.0 FROM pg_class c "
            "WHERE c.relname LIKE 'plg\\_pgvector\\_hnsw\\_%\\_kb\\_%'")).scalar())
        db.session.commit()
        server["index_options"] = db.session.execute(sa.text(
            "SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE relname = :name"),
            {"name": f"plg_pgvector_hnsw_{DIMENSION}"}).scalar()
        result["index_mb"] = db.session.execute(sa.text(
            "SELECT pg_relation_size(:name) / 1048576.0"), {"name": f"plg_pgvector_hnsw_{DIMENSION}"}).scalar()
        result["table_mb"] = db.session.execute(sa.text(
            "SELECT pg_table_size('chunks') / 1048576.0")).scalar()
        result["server"] = {key: str(value) if value is not None else None for key, value in server.items()}
        result["index_mb"], result["table_mb"] = float(result["index_mb"]), float(result["table_mb"])
        _progress(f"index built in {result['index_seconds']:.0f} s; querying")

        kb = bases[QUERIED]
        questions = [vocab[QUERIED].question() for _ in range(QUERIES + WARM_UP)]
        warm, timed = questions[:WARM_UP], questions[WARM_UP:]
        embed_model, store = components.searching(kb)
        # The HNSW settings the store's queries run with, read back in the transaction of one of them.
        store.query(VectorStoreQuery(query_str=questions[0], query_embedding=embed_model.get_query_embedding(
            questions[0]), similarity_top_k=TOP_K, mode=RETRIEVAL_MODES["hybrid"]))
        result["hnsw"] = {name: db.session.execute(sa.text(f"SHOW hnsw.{name}")).scalar()
                          for name in ("ef_search", "iterative_scan", "max_scan_tuples")}
        db.session.rollback()

        def clock(call) -> list[float]:
            for item in warm:
                call(item)
                db.session.rollback()
            durations = []
            for item in timed:
                # A request loads its knowledge base before it retrieves: reload it (the rollback expired it)
                # outside the clock, so the timed call does not pay for that query.
                kb.embedding_dim
                begun = time.perf_counter()
                call(item)
                durations.append(time.perf_counter() - begun)
                db.session.rollback()  # what the end of a request does
            return durations

        from privex_pgvector import terms as bm25

        counted = sorted(db.session.execute(sa.text(
            "SELECT count(*) FROM chunks WHERE knowledge_base_id = :kb AND terms && CAST(:terms AS int[])"),
            {"kb": kb.id, "terms": sorted(bm25.term_counts(question))}).scalar() for question in timed)
        result["matches"] = [statistics.median(counted), counted[int(0.1 * len(counted))],
                             counted[min(len(counted) - 1, int(0.9 * len(counted)))]]
        db.session.rollback()
        embeddings = {}
        for question in questions:
            embeddings[question] = embed_model.get_query_embedding(question)
        result["embedding"] = _ms(clock(embed_model.get_query_embedding))
        result["modes"] = {}
        result["keyword_budget"] = keyword_store.KEYWORD_BUDGET
        result["candidates"] = keyword_store.CANDIDATES
        for mode in MODES:
            end_to_end = clock(lambda question: retrieve(kb, question, mode=mode, top_k=TOP_K))

            def store_query(question, mode=mode):
                store.query(VectorStoreQuery(
                    query_str=question, query_embedding=None if mode == "keyword" else embeddings[question],
                    similarity_top_k=TOP_K, mode=RETRIEVAL_MODES[mode]))

            store_only = clock(store_query)
            result["modes"][mode] = {"retrieve": _ms(end_to_end), "store": _ms(store_only)}
            _progress(f"{mode}: retrieve p50 {result['modes'][mode]['retrieve'][0]:.1f} ms, p95 "
                      f"{result['modes'][mode]['retrieve'][1]:.1f} ms")
        db.session.remove()
        db.engine.dispose()
    (folder / f"result-{size}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        print(run())
