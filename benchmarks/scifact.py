"""Retrieval quality on SciFact's training claims, through the real pipeline: nDCG@10, recall@10, MRR@10 per mode.

A knowledge base is built as a user's upload would be: one ``<id>.txt`` document per abstract (its title on the first
line, the abstract after it), the service layer's ``add_uploads`` and Celery (eager) running ``ingest_document`` for
each, with the knowledge base's defaults (chunker, embedding model, store) unless ``--chunker``/``--chunk-size``/
``--chunk-overlap`` say otherwise. Then each claim goes through ``privex.services.evaluation.evaluate`` (the
function behind ``privex eval``), relevant documents named ``<id>.txt``.

The embedded PostgreSQL lives in ``--folder`` (``SCIFACT_FOLDER``, default ``/tmp/privex-scifact``) and is kept: a
database per corpus and chunking (``scifact_<sample>_<chunker>_<size>_<overlap>``), so a second run with the same
chunking only measures (embedding 5,183 abstracts takes 3-4 minutes on 2 cores). A build cut short resumes where it
stopped.

- ``--sample N`` (default 100): the first N claims (by id), their relevant abstracts and ``--distractors`` (default
  2,000) other abstracts drawn with a fixed seed: about a minute once built;
- ``--full``: every one of the 809 training claims over all 5,183 abstracts;
- ``--half a|b``: only the claims with an even (a) or odd (b) id, to tune on one half and check on the other;
- ``--vector-weight`` / ``--candidates`` / ``--budget``: override the store's fusion settings for a run (tuning);
- ``--one-hit-per-document``: measure with the knowledge base's ``one_hit_per_document`` query setting on (for this
  run only: it is not saved).

``python -m benchmarks.scifact --full`` prints the table; ``markdown(results)`` is the section for BENCHMARKS.md and
``run()`` builds, measures and returns it (``make eval``).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(os.environ.get("SCIFACT_DATA", Path(__file__).resolve().parent.parent.parent / "shared/data/scifact"))
if not DATA.exists():
    DATA = Path("/work/shared/data/scifact")
FOLDER = Path(os.environ.get("SCIFACT_FOLDER", "/tmp/privex-scifact"))
MODES = ("vector", "keyword", "hybrid")
K = 10
UPLOAD_BATCH = 100
REFERENCE = {"vector": "all-MiniLM-L6-v2 0.660", "keyword": "BM25 (bm25s) 0.667",
             "hybrid": "RRF k=60 0.698, min-max fusion 0.719"}


def _progress(message: str) -> None:
    print(f"[scifact] {message}", file=sys.stderr, flush=True)


def load(sample: int | None, distractors: int = 2000, half: str | None = None):
    """(corpus {id: (title, text)}, claims [(id, text, relevant ids)]) for the full set or a sample."""
    corpus = {}
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as stream:
        for line in stream:
            item = json.loads(line)
            corpus[item["_id"]] = (item.get("title") or "", item.get("text") or "")
    relevant: dict[str, set[str]] = {}
    with open(DATA / "qrels-train.tsv") as stream:
        for line in stream:
            parts = line.split()
            if len(parts) == 3 and parts[0] != "query-id" and int(parts[2]) > 0:
                relevant.setdefault(parts[0], set()).add(parts[1])
    claims = []
    with open(DATA / "queries-train.jsonl") as stream:
        for line in stream:
            item = json.loads(line)
            if item["_id"] in relevant:
                claims.append((item["_id"], item["text"], relevant[item["_id"]]))
    claims.sort(key=lambda claim: int(claim[0]))
    if sample:
        claims = claims[:sample]
        wanted = set().union(*(claim[2] for claim in claims))
        others = sorted(set(corpus) - wanted, key=int)
        wanted |= set(random.Random(11).sample(others, min(distractors, len(others))))
        corpus = {key: value for key, value in corpus.items() if key in wanted}
    if half:
        claims = [claim for claim in claims if int(claim[0]) % 2 == (0 if half == "a" else 1)]
    return corpus, claims


def database_name(sample: int | None, chunker: str, config: dict, distractors: int) -> str:
    corpus = "full" if not sample else f"s{sample}d{distractors}"
    config = {**_chunker_defaults(chunker), **config}
    settings = "_".join(str(config[key]) for key in sorted(config)) or "defaults"
    return f"scifact_{corpus}_{chunker}_{settings}".lower()


def _chunker_defaults(chunker: str) -> dict:
    """The chunker's own defaults (so a database built with them is reused when they are given explicitly)."""
    from privex_parsers import chunkers

    for item in vars(chunkers).values():
        if isinstance(item, type) and getattr(item, "name", None) == ("sentence" if chunker == "default" else chunker):
            return {key: value.get("default") for key, value in item.config_schema.get("properties", {}).items()}
    return {}


def build(app, corpus: dict, chunker: str, config: dict, shard: tuple[int, int] = (0, 1)):
    """The knowledge base holding ``corpus`` (created, or completed where an earlier build stopped). ``shard``
    (i, n): index only the i-th of every n abstracts, so n processes can build one knowledge base together (the
    first must have created it)."""
    import sqlalchemy as sa
    from werkzeug.datastructures import FileStorage

    from privex.extensions import db
    from privex.models import Document, KnowledgeBase, Organization, Workspace
    from privex.services import knowledge

    knowledge_base = db.session.scalar(sa.select(KnowledgeBase).where(KnowledgeBase.name == "scifact"))
    if knowledge_base is None:
        organization = Organization(name="SciFact")
        workspace = Workspace(name="scifact", organization=organization)
        db.session.add_all([organization, workspace])
        db.session.commit()
        payload = {"name": "scifact"}
        if chunker != "default":
            payload["chunking_strategy"] = chunker
        if config:
            payload["chunking_config"] = config
        knowledge_base = knowledge.create(workspace, None, payload)
    indexed = set(db.session.scalars(sa.select(Document.name).where(
        Document.knowledge_base_id == knowledge_base.id, Document.status == "indexed")))
    keys = sorted(corpus, key=int)[shard[0]::shard[1]]
    names = {f"{key}.txt" for key in keys}
    stale = [document for document in db.session.scalars(sa.select(Document).where(
        Document.knowledge_base_id == knowledge_base.id, Document.status != "indexed")) if document.name in names]
    if stale:
        knowledge.delete_documents(knowledge_base, stale)
    missing = [key for key in keys if f"{key}.txt" not in indexed]
    if missing:
        _progress(f"indexing {len(missing)} of {len(corpus)} abstracts")
    started = time.perf_counter()
    for start in range(0, len(missing), UPLOAD_BATCH):
        files = []
        for key in missing[start:start + UPLOAD_BATCH]:
            title, text = corpus[key]
            files.append(FileStorage(io.BytesIO(f"{title}\n{text}".encode()), filename=f"{key}.txt",
                                     content_type="text/plain"))
        knowledge.add_uploads(knowledge_base, files)  # eager Celery: ingested before it returns
        db.session.expire_all()
        done = start + len(files)
        rate = done / (time.perf_counter() - started)
        _progress(f"{done}/{len(missing)} indexed ({rate:.1f} per second)")
    failed = db.session.scalar(sa.select(sa.func.count()).select_from(Document).where(
        Document.knowledge_base_id == knowledge_base.id, Document.status != "indexed"))
    if failed and shard[1] == 1:
        raise RuntimeError(f"{failed} abstracts were not indexed")
    return knowledge_base


def measure(knowledge_base, claims, modes=MODES) -> dict:
    from privex.services.evaluation import Question, evaluate

    questions = [Question(text=text, document_names=frozenset(f"{key}.txt" for key in relevant))
                 for _, text, relevant in claims]
    return evaluate(knowledge_base, questions, modes=modes, k_recall=K, k_rank=K)


def open_app(name: str, folder: Path):
    from flask_migrate import upgrade

    from privex import embedded
    from privex.app import create_app

    url = embedded.postgres_url(folder / "pgdata", name)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / f"instance-{name}"),
                      "SECRET_KEY": "scifact-benchmark-key", "LOG_LEVEL": "WARNING",
                      "CELERY_TASK_ALWAYS_EAGER": True})
    with app.app_context():
        upgrade()
    return app


def evaluate_scifact(sample: int | None = 100, *, distractors: int = 2000, half: str | None = None,
                     chunker: str = "default", config: dict | None = None, modes=MODES,
                     folder: Path = FOLDER, overrides: dict | None = None, shard=(0, 1),
                     retrieval: dict | None = None) -> dict:
    """Build (or reuse) the knowledge base and measure: {"modes": {mode: metrics}, "settings": ..., ...}.
    ``retrieval`` is merged into the knowledge base's ``retrieval_config`` for the measurement, never committed."""
    from privex_pgvector import store

    config = config or {}
    corpus, claims = load(sample, distractors, half)
    name = database_name(sample, chunker, config, distractors)
    folder.mkdir(parents=True, exist_ok=True)
    app = open_app(name, folder)
    for key, value in (overrides or {}).items():
        setattr(store, key, value)
    with app.app_context():
        started = time.perf_counter()
        knowledge_base = build(app, corpus, chunker, config, shard)
        if shard[1] > 1:
            return {"built": shard}
        built = time.perf_counter() - started
        from privex.extensions import db
        from privex.models import Chunk
        import sqlalchemy as sa
        chunks = db.session.scalar(sa.select(sa.func.count()).where(Chunk.knowledge_base_id == knowledge_base.id))
        if retrieval:
            knowledge_base.retrieval_config = {**(knowledge_base.retrieval_config or {}), **retrieval}
        used = dict(knowledge_base.retrieval_config or {})
        started = time.perf_counter()
        results = measure(knowledge_base, claims, modes)
        measured = time.perf_counter() - started
        settings = {"chunker": knowledge_base.chunking_strategy, "chunking_config": knowledge_base.chunking_config,
                    "model": knowledge_base.embedding_model, "candidates": store.CANDIDATES,
                    "vector_weight": store.VECTOR_WEIGHT, "keyword_budget": store.KEYWORD_BUDGET,
                    "retrieval_config": used}
        db.session.rollback()  # the measurement's own retrieval settings are not kept
    return {"modes": results, "claims": len(claims), "abstracts": len(corpus), "chunks": chunks,
            "settings": settings, "database": name, "build_seconds": built, "measure_seconds": measured,
            "sample": sample, "half": half}


def table(result: dict) -> str:
    lines = ["| mode | nDCG@10 | recall@10 | MRR@10 | reference (whole abstracts) |", "|---|---|---|---|---|"]
    for mode, metrics in result["modes"].items():
        lines.append(f"| {mode} | {metrics['ndcg@10']:.3f} | {metrics['recall@10']:.3f} | {metrics['mrr@10']:.3f} "
                     f"| {REFERENCE.get(mode, '')} |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    """The section for BENCHMARKS.md."""
    settings = result["settings"]
    scope = ("all 809 training claims over all 5,183 abstracts" if not result["sample"] else
             f"{result['claims']} training claims over {result['abstracts']} abstracts (a sample)")
    return (f"\n### Retrieval quality on SciFact (training claims)\n\n"
            f"{scope}, indexed through the real pipeline (one `<id>.txt` upload per abstract, title on the first "
            f"line; eager Celery ingestion) into {result['chunks']:,} chunks: chunker `{settings['chunker']}` "
            f"{json.dumps(settings['chunking_config'] or _chunker_defaults(settings['chunker']))}"
            f"{'' if settings['chunking_config'] else ' (its defaults)'}, "
            f"model `{settings['model']}`, pgvector store with {settings['candidates']} candidates a side, hybrid "
            f"vector weight {settings['vector_weight']}, keyword budget {settings['keyword_budget']}. Metrics by "
            f"`privex.services.evaluation.evaluate` (documents judged by name). Command: "
            f"`python -m benchmarks.scifact {'--full' if not result['sample'] else '--sample ' + str(result['sample'])}`."
            f"\n\n{table(result)}\n\nMeasuring took {result['measure_seconds']:.0f} s.\n")


def run() -> str:
    return markdown(evaluate_scifact(None))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--half", choices=("a", "b"))
    parser.add_argument("--chunker", default="default")
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--chunk-overlap", type=int)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--vector-weight", type=float)
    parser.add_argument("--candidates", type=int)
    parser.add_argument("--budget", type=int)
    parser.add_argument("--one-hit-per-document", action="store_true",
                        help="measure with retrieval_config one_hit_per_document (not saved)")
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    parser.add_argument("--shard", default="0/1", help="i/n: build only every n-th abstract from the i-th, then stop")
    args = parser.parse_args(argv)
    config = {key: value for key, value in (("chunk_size", args.chunk_size), ("chunk_overlap", args.chunk_overlap))
              if value is not None}
    overrides = {key: value for key, value in (("VECTOR_WEIGHT", args.vector_weight),
                                               ("CANDIDATES", args.candidates), ("KEYWORD_BUDGET", args.budget))
                 if value is not None}
    result = evaluate_scifact(None if args.full else args.sample, distractors=args.distractors, half=args.half,
                              chunker=args.chunker, config=config, modes=tuple(args.modes.split(",")),
                              folder=args.folder, overrides=overrides,
                              shard=tuple(int(part) for part in args.shard.split("/")),
                              retrieval={"one_hit_per_document": True} if args.one_hit_per_document else None)
    if "built" in result:
        return
    print(f"{result['claims']} claims, {result['abstracts']} abstracts, {result['chunks']} chunks "
          f"({result['database']}); settings {json.dumps(result['settings'])}; built in "
          f"{result['build_seconds']:.0f} s, measured in {result['measure_seconds']:.0f} s")
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
