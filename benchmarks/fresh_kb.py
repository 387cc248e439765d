"""A knowledge base searched right after it was filled, before autovacuum has analysed the table, against the same
one after ``ANALYZE``: keyword and hybrid ``store.query`` latency (issue 11 saw 2.4 s fresh against 28 / 70 ms
minutes later, with the ``ts_rank_cd`` ranking that this branch replaced).

In a child process against a fresh embedded PostgreSQL in a temporary folder: 1,000 SciFact abstracts are stored as
one chunk each through the store's ``add`` (its keyword statistics written in the same transaction, as ingestion
does; embeddings are random unit vectors, the model is not what is measured) into a table where autovacuum is
switched off, so the planner knows nothing of the new rows; 50 claims are then asked in each mode, the table is
analysed and the same claims asked again.

``python -m benchmarks.fresh_kb`` runs it alone.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import child_env
from benchmarks.retrieval import _ms

ABSTRACTS = 1000
QUESTIONS = 50
DATA = Path("/work/shared/data/scifact")
DIMENSION = 384


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="privex-bench-fresh-") as folder:
        subprocess.run([sys.executable, "-m", "benchmarks.fresh_kb", "--child", folder], check=True,
                       env=child_env(), cwd=Path(__file__).resolve().parent.parent)
        result = json.loads((Path(folder) / "result.json").read_text())
    lines = [f"\n### A fresh knowledge base against an analysed one ({ABSTRACTS:,} abstracts, {QUESTIONS} claims, "
             f"`store.query`, top 10)\n\n",
             "Right after the chunks were stored (autovacuum off for `chunks`, so the planner has no statistics of "
             "them), then after `ANALYZE chunks`. Command: `python -m benchmarks.fresh_kb`.\n\n",
             "| mode | fresh p50 | fresh p95 | analysed p50 | analysed p95 |\n|---|---|---|---|---|\n"]
    for mode, values in result.items():
        lines.append(f"| {mode} | {values['fresh'][0]:.1f} ms | {values['fresh'][1]:.1f} ms | "
                     f"{values['analysed'][0]:.1f} ms | {values['analysed'][1]:.1f} ms |\n")
    return "".join(lines)


def child(folder: Path) -> None:
    import numpy as np
    import sqlalchemy as sa
    from flask_migrate import upgrade
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    from privex import embedded
    from privex.app import create_app
    from privex.extensions import db
    from privex.models import Document, KnowledgeBase, Organization, Workspace
    from privex_pgvector import PGVector

    url = embedded.postgres_url(folder / "pgdata", "fresh")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / "instance"),
                      "SECRET_KEY": "benchmark-secret-key", "LOG_LEVEL": "WARNING"})
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as stream:
        abstracts = [json.loads(line) for _, line in zip(range(ABSTRACTS), stream)]
    with open(DATA / "queries-train.jsonl") as stream:
        claims = [json.loads(line)["text"] for _, line in zip(range(QUESTIONS), stream)]
    rng = np.random.default_rng(3)

    def unit():
        vector = rng.normal(size=DIMENSION)
        return (vector / np.linalg.norm(vector)).tolist()

    result = {}
    with app.app_context():
        upgrade()
        db.session.execute(sa.text("ALTER TABLE chunks SET (autovacuum_enabled = false)"))
        organization = Organization(name="Bench")
        workspace = Workspace(name="bench", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.flush()
        kb = KnowledgeBase(workspace_id=workspace.id, name="fresh", embedding_dim=DIMENSION)
        db.session.add(kb)
        db.session.flush()
        store = PGVector().create(kb, DIMENSION)
        from privex_pgvector.store import ensure_index
        ensure_index(DIMENSION)
        for abstract in abstracts:
            document = Document(workspace_id=workspace.id, knowledge_base_id=kb.id, name=f"{abstract['_id']}.txt")
            document.id = uuid.uuid4()
            db.session.add(document)
            db.session.flush()
            store.add([TextNode(text=f"{abstract['title']}\n{abstract['text']}", embedding=unit(),
                                metadata={"position": 0},
                                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))})])
            db.session.commit()  # one document per transaction, as ingestion does
        embeddings = [unit() for _ in claims]

        def clock(mode):
            durations = []
            for claim, embedding in zip(claims, embeddings):
                started = time.perf_counter()
                store.query(VectorStoreQuery(query_str=claim, query_embedding=embedding, similarity_top_k=10,
                                             mode=mode))
                durations.append(time.perf_counter() - started)
                db.session.rollback()
            return _ms(durations)[:2]  # p50, p95

        modes = {"keyword": VectorStoreQueryMode.TEXT_SEARCH, "hybrid": VectorStoreQueryMode.HYBRID,
                 "vector": VectorStoreQueryMode.DEFAULT}
        fresh = {name: clock(mode) for name, mode in modes.items()}
        db.session.execute(sa.text("ANALYZE chunks"))
        db.session.commit()
        analysed = {name: clock(mode) for name, mode in modes.items()}
        result = {name: {"fresh": fresh[name], "analysed": analysed[name]} for name in modes}
        db.session.remove()
        db.engine.dispose()
    (folder / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        print(run())
