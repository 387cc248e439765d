"""Ingestion of many small documents through the API: SciFact abstracts uploaded to a real ``privex serve`` and
``privex worker``, against the raw throughput of the model on the same chunk texts, measured in the same run.

Method:

- ``privex serve`` (migrations, gunicorn and its ``privex worker``: Celery at ``PRIVEX_WORKER_CONCURRENCY``, 2 by
  default) runs in a child process, started the way ``benchmarks.chat`` starts it (its helpers: a free port, a fresh
  temporary ``PRIVEX_INSTANCE_PATH`` whose embedded PostgreSQL and Redis start in it, no
  ``PRIVEX_RATELIMIT_DEFAULT``).
- Through the API: sign up, create a knowledge base with the defaults (sentence chunker, all-MiniLM-L6-v2 on the
  CPU, pgvector), upload one abstract alone and wait until it is indexed (it creates the vector index and warms the
  path; not timed), then upload the first ``BENCH_SMALL_DOCS`` abstracts of SciFact (1,000 by default; by id order)
  as a browser would: ``<id>.txt`` files (title on the first line, the abstract after it) in multipart requests of
  ``BENCH_SMALL_BATCH`` files (100), sent one after another, polling ``GET /knowledge-bases/<id>/analytics`` every
  half second until every document is indexed. Time: from the first upload request to the last document's
  ``indexed_at`` (read from the database).
- Raw: as many processes as the worker has (``PRIVEX_WORKER_CONCURRENCY``), each on the threads a worker process
  gets (cores ÷ processes, as ``privex worker`` sets ``OMP_NUM_THREADS``), open the app on the same instance
  (joining its PostgreSQL), parse and chunk the same files with the knowledge base's own parser and chunker
  (untimed), load the model and embed their share of the texts as the pipeline hands them to the model, in one call
  of the worker's batch size (``embed(texts, batch_size=64)``), all started together, once before the uploads and
  once after the last document is indexed (the slowest process's time; the mean of the two is the raw throughput).
  On a busy machine one process on every core is no fair reference: its threads wait for each other. The ratio of
  the API's throughput to it is the pipeline's efficiency (the issue aims at 0.8).
- The load average before the run is reported: the machine is shared, so compare ratios of one run.

``BENCH_SMALL_FOLDER`` keeps the instance, the files and ``serve.log`` in that folder instead of a temporary one.
``python -m benchmarks.small_documents`` runs it alone (about 3 minutes with the defaults).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.chat import API, PASSWORD, PRIVEX, ROOT, _database, _free_port, _stop, _wait_for, api_call

DOCUMENTS = int(os.environ.get("BENCH_SMALL_DOCS", "1000"))
UPLOAD_BATCH = int(os.environ.get("BENCH_SMALL_BATCH", "100"))
FOLDER = os.environ.get("BENCH_SMALL_FOLDER")
RAW_BATCH = 64  # the local model's batch size, which the worker uses


def abstracts(count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` + 1 SciFact abstracts by id, as uploaded files: (``<id>.txt``, title and text)."""
    from benchmarks.scifact import DATA

    corpus = {}
    with gzip.open(DATA / "corpus.jsonl.gz", "rt") as stream:
        for line in stream:
            item = json.loads(line)
            corpus[item["_id"]] = f"{item.get('title') or ''}\n{item.get('text') or ''}".encode()
    keys = sorted(corpus, key=int)[:count + 1]
    return [(f"{key}.txt", corpus[key]) for key in keys]


# -- the raw model, in a process of its own ----------------------------------------------------------------------


def raw_child(files_folder: Path, knowledge_base_id: str, share: int = 0, shares: int = 1) -> None:
    """Work out the chunk texts of the files as the pipeline would, keep every ``shares``-th from ``share``, then on
    each line read from stdin embed them all once and print the seconds it took (a JSON line, the first also giving
    the texts' count and size)."""
    from llama_index.core.ingestion import IngestionPipeline

    from privex.app import create_app
    from privex.extensions import db
    from privex.models import KnowledgeBase
    from privex.services import components
    from privex.services.ingestion import parser_for
    from privex_llms.embeddings.local import embed

    app = create_app({"LOG_LEVEL": "WARNING"})
    with app.app_context():
        knowledge_base = db.session.get(KnowledgeBase, knowledge_base_id)
        chunker = components.chunker_of(knowledge_base)
        texts = []
        for path in sorted(files_folder.iterdir(), key=lambda path: int(path.stem)):
            with path.open("rb") as stream:
                parts = parser_for(path.name).parse(stream, path.name)
            for part in parts:
                part.metadata.setdefault("file_name", path.name)
            nodes = IngestionPipeline(transformations=[chunker]).run(documents=parts)
            texts += [node.get_content(metadata_mode="embed") for node in nodes]
        db.session.remove()
    texts = texts[share::shares]
    embed(texts[:RAW_BATCH], batch_size=RAW_BATCH)  # load and warm the model
    first = True
    for _ in sys.stdin:
        started = time.perf_counter()
        embed(texts, batch_size=RAW_BATCH)
        result = {"seconds": time.perf_counter() - started}
        if first:
            result.update(texts=len(texts), characters=sum(map(len, texts)))
            first = False
        print(json.dumps(result), flush=True)


class Raw:
    """The raw model as the worker runs it: as many processes as the worker has (``PRIVEX_WORKER_CONCURRENCY``),
    each on cores ÷ processes threads and its share of the texts (every n-th), started together; the time is the
    slowest one's."""

    def __init__(self, files_folder: Path, knowledge_base_id: str, env: dict):
        self.processes = concurrency()
        threads = str(max(1, (os.cpu_count() or 1) // self.processes))
        self.children = [subprocess.Popen(
            [sys.executable, "-m", "benchmarks.small_documents", "--raw", str(files_folder), knowledge_base_id,
             str(share), str(self.processes)], env={**env, "OMP_NUM_THREADS": threads}, cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for share in range(self.processes)]

    def measure(self) -> dict:
        for child in self.children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in self.children:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"a raw model process exited with {child.wait()}")
            results.append(json.loads(line))
        return {"seconds": max(result["seconds"] for result in results),
                "texts": sum(result.get("texts", 0) for result in results),
                "characters": sum(result.get("characters", 0) for result in results)}

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.stdin.close()
                child.wait(timeout=60)


def concurrency() -> int:
    from privex.config import settings_from_env

    return settings_from_env({key: value for key, value in os.environ.items()
                              if key == "PRIVEX_WORKER_CONCURRENCY"})["WORKER_CONCURRENCY"]


# -- the run -------------------------------------------------------------------------------------------------------


def run() -> str:
    import httpx

    began = time.perf_counter()
    load_average = " ".join(f"{value:.2f}" for value in os.getloadavg())
    files = abstracts(DOCUMENTS)
    warm, timed = files[0], files[1:]
    with tempfile.TemporaryDirectory(prefix="privex-small-docs-bench-") as temporary:
        folder = Path(FOLDER or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        instance, files_folder = folder / "instance", folder / "files"
        files_folder.mkdir(exist_ok=True)
        for name, content in timed:
            (files_folder / name).write_bytes(content)
        port = _free_port()
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"PRIVEX_INSTANCE_PATH": str(instance), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        env.update({key: value for key, value in os.environ.items()
                    if key in ("PRIVEX_WORKER_CONCURRENCY", "PRIVEX_EMBEDDING_RUNTIME", "PRIVEX_INGEST_BATCH")})
        serve_log = (folder / "serve.log").open("w")
        serve = subprocess.Popen([PRIVEX, "serve", "--port", str(port)], env=env, cwd=folder, stdout=serve_log,
                                 stderr=subprocess.STDOUT)
        raw = None
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(f"{base}{API}/health", serve, 300, "privex serve")
            with httpx.Client(base_url=base + API, timeout=120) as client:
                call = functools.partial(api_call, client)

                def upload(batch):
                    call("POST", f"/knowledge-bases/{kb_id}/documents/upload", 202,
                         files=[("files", (name, io.BytesIO(content), "text/plain")) for name, content in batch])

                def wait(count: int, timeout: float) -> None:
                    deadline = time.monotonic() + timeout
                    while True:
                        documents = call("GET", f"/knowledge-bases/{kb_id}/analytics", 200)["documents"]
                        if documents["failed"]:
                            raise RuntimeError(f"{documents['failed']} documents failed to index")
                        if documents["indexed"] >= count:
                            return
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"not indexed after {timeout:.0f} s: {documents}")
                        time.sleep(0.5)

                account = call("POST", "/auth/email/signup", 201, json={
                    "email": "bench@example.com", "password": PASSWORD, "display_name": "Bench"})
                client.headers["Authorization"] = f"Bearer {account['access_token']}"
                kb_id = call("POST", "/knowledge-bases", 201, json={"name": "SciFact"})["id"]
                upload([warm])
                wait(1, 300)
                raw = Raw(files_folder, kb_id, env)
                raw_before = raw.measure()
                uploaded_at = time.time()
                started = time.perf_counter()
                for start in range(0, len(timed), UPLOAD_BATCH):
                    upload(timed[start:start + UPLOAD_BATCH])
                uploads_seconds = time.perf_counter() - started
                wait(len(timed) + 1, 1800)
                raw_after = raw.measure()
            with _database(instance / "pgdata") as connection:
                last, chunks = connection.execute(
                    "SELECT extract(epoch FROM max(indexed_at)), sum(chunks_total) FROM documents "
                    "WHERE knowledge_base_id = %s AND name <> %s", (kb_id, warm[0])).fetchone()
        finally:
            if raw is not None:
                raw.close()
            _stop(serve)
            serve_log.close()
    seconds = float(last) - uploaded_at
    raw_seconds = (raw_before["seconds"] + raw_after["seconds"]) / 2
    return _markdown({
        "documents": len(timed), "chunks": int(chunks), "texts": raw_before["texts"],
        "mean_chars": raw_before["characters"] / max(1, raw_before["texts"]), "seconds": seconds,
        "uploads_seconds": uploads_seconds, "raw_before": raw_before["seconds"], "raw_after": raw_after["seconds"],
        "raw_seconds": raw_seconds, "load": load_average, "wall": time.perf_counter() - began,
        "concurrency": concurrency(), "threads": max(1, (os.cpu_count() or 1) // concurrency())})


def _markdown(r: dict) -> str:
    rate, raw_rate = r["documents"] / r["seconds"], r["documents"] / r["raw_seconds"]
    ratio = rate / raw_rate
    verdict = "met" if ratio >= 0.8 else "**not met**"
    return (
        "\n### Ingestion of many small documents (SciFact abstracts through the API, `privex serve` + "
        "`privex worker`)\n\n"
        f"{r['documents']:,} abstracts uploaded as `<id>.txt` in multipart requests of {UPLOAD_BATCH} files "
        f"(uploads took {r['uploads_seconds']:.1f} s of it), default knowledge base ({r['chunks']:,} chunks, mean "
        f"{r['mean_chars']:.0f} characters as embedded), worker concurrency {r['concurrency']}; time from the first "
        f"upload to the last document indexed. Raw: the same {r['texts']:,} chunk texts embedded as the worker runs "
        f"the model ({r['concurrency']} processes × {r['threads']} threads, each its share), `embed(texts, "
        f"batch_size={RAW_BATCH})`, mean of before the uploads and after the last document "
        f"was indexed ({r['raw_before']:.1f} s, {r['raw_after']:.1f} s). Load average before the run: "
        f"{r['load']}.\n\n"
        "| | seconds | documents/s | chunks/s |\n|---|---|---|---|\n"
        f"| uploaded through the API until indexed | {r['seconds']:.1f} | {rate:.1f} | "
        f"{r['chunks'] / r['seconds']:.1f} |\n"
        f"| raw model, same texts | {r['raw_seconds']:.1f} | {raw_rate:.1f} | {r['texts'] / r['raw_seconds']:.1f} |\n"
        f"\nRatio API / raw: **{ratio:.2f}** (target ≥ 0.8: {verdict}). Benchmark wall time {r['wall']:.0f} s.\n")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--raw":
        raw_child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        print(run())
