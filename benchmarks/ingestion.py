"""Ingestion: throughput of the real pipeline against the raw model, and peak memory of ingesting a large PDF.

Everything runs in child processes against a fresh embedded PostgreSQL in a temporary folder (never ``instance/``),
with the app built by ``create_app`` and the migrations applied; the knowledge bases use the defaults (sentence
chunker of 512 tokens with 64 of overlap, all-MiniLM-L6-v2 on the CPU, pgvector).

1. Throughput: a generated Markdown corpus (``BENCH_INGEST_MB``, 2.5 MB by default, documents of 8-60 KB with
   headings, paragraphs and lists, text from the retrieval benchmark's vocabulary) is ingested document by document
   through ``ingest_document`` (parse -> chunk -> embed -> store, committed per document), after the model is loaded
   and warmed up. The texts the pipeline hands the model are recorded on the way (a wrapper around
   ``privex_llms.embeddings.local.embed``, which also times the model's share) and must equal the texts worked out
   beforehand by parsing and chunking the same documents (untimed). Those texts are embedded in one call,
   ``embed(texts, batch_size=64)``, once before the pipeline and once after it: the mean is the raw throughput of
   the same model on the same chunk texts, taken on both sides so that a change in the load of a shared machine
   evens out. The ratio of the pipeline's throughput to that raw one is its efficiency (the issue aims for at
   least 0.8).
2. Peak memory: a PDF is generated (hand-written PDF objects, Helvetica text pages) and ingested by a fresh process
   that loads the model first; its ``ru_maxrss`` after the ingestion is the peak resident memory of model + app +
   pipeline (PostgreSQL's own processes are not counted). Three files:

   - ``BENCH_PDF_MB`` (50 by default): the issue's size. Like many PDFs that large, its bytes are mostly images:
     ``BENCH_PDF_PAGES`` pages (400) with a full page of text each and an uncompressed RGB image making up the rest;
   - ``BENCH_PDF_TEXT_MB`` (3 by default): text pages only, as many as that size holds, with the real model;
   - ``BENCH_PDF_STUB_MB`` (50 by default, 0 skips it): text pages only at the issue's size, about 30,000 chunks,
     which the model would take some 25 minutes to embed on 2 cores: too long for ``make bench``. This process does
     not load the model; its calls are answered with random unit vectors of the model's size and type, so its peak
     is the app's and the pipeline's alone. The output adds that growth to the model's working memory measured in
     the other processes, as an estimate of the real peak, and says so. ``BENCH_PDF_TEXT_MB=50`` measures the real
     thing (40 minutes on a busy 2-core machine); once, it peaked at 1,624 MB where the estimate said 1,618 MB.

   The peak before the ingestion (app + model after one full batch; the app alone in the stubbed process) is
   reported beside the peak after it, so the pipeline's own share shows.

``python -m benchmarks.ingestion`` runs it alone.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import child_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CORPUS_MB = float(os.environ.get("BENCH_INGEST_MB", "2.5"))
PDF_MB = float(os.environ.get("BENCH_PDF_MB", "50"))
PDF_PAGES = int(os.environ.get("BENCH_PDF_PAGES", "400"))
PDF_TEXT_MB = float(os.environ.get("BENCH_PDF_TEXT_MB", "3"))
PDF_STUB_MB = float(os.environ.get("BENCH_PDF_STUB_MB", "50"))
DATABASE = "bench_ingest"
LINES_PER_PAGE = 46
LINE_CHARS = 95
# About 330 words: longer than the model's 256-token window, like the default chunker's 512-token chunks.
WARM_UP_TEXT = " ".join(["The refund for a damaged parcel is paid back to the original card within five working days."]
                        * 20)


# -- generated files -------------------------------------------------------------------------------------------

def markdown_corpus(folder: Path, megabytes: float, seed: int = 3) -> list[Path]:
    """Markdown documents of 8-60 KB totalling about ``megabytes``."""
    from benchmarks.corpus import SentencePool, vocabularies

    rng = random.Random(seed)
    pools = [SentencePool(vocabulary) for vocabulary in vocabularies(seed)]
    folder.mkdir(parents=True, exist_ok=True)
    paths, total, number = [], 0, 0
    while total < megabytes * 1_000_000:
        pool = rng.choice(pools)
        target = rng.randint(8_000, 60_000)
        parts = [f"# {pool.sentences[rng.randrange(len(pool.sentences))].rstrip('.')}\n"]
        size = 0
        while size < target:
            parts.append(f"\n## Section {len(parts)}: {' '.join(pool.chunk(3, 6).split()[:6])}\n")
            for _ in range(rng.randint(2, 5)):
                if rng.random() < 0.2:
                    parts.append("\n" + "".join(f"- {pool.chunk(5, 15)}\n" for _ in range(rng.randint(3, 6))))
                else:
                    parts.append("\n" + pool.chunk(40, 140) + "\n")
            size = sum(len(part) for part in parts)
        path = folder / f"document-{number:03d}.md"
        path.write_text("".join(parts))
        paths.append(path)
        total += path.stat().st_size
        number += 1
    return paths


def _text_lines(rng: random.Random, pools, count: int) -> list[str]:
    words = rng.choice(pools).chunk(count * 15, count * 15 + 20).split()
    lines, line = [], ""
    for word in words:
        if len(line) + len(word) + 1 > LINE_CHARS:
            lines.append(line)
            if len(lines) == count:
                break
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines


def write_pdf(path: Path, megabytes: float, pages: int | None, seed: int = 9) -> dict:
    """A PDF of about ``megabytes``: ``pages`` pages of text, each with an uncompressed image filling the rest of
    the size; or, with ``pages`` None, text pages only, as many as the size holds. Written object by object with a
    cross-reference table of the real offsets."""
    from benchmarks.corpus import SentencePool, vocabularies

    rng = random.Random(seed)
    pools = [SentencePool(vocabulary, size=1500) for vocabulary in vocabularies(seed)]
    target = int(megabytes * 1_000_000)
    offsets: list[int] = []
    kids: list[int] = []
    text_chars = 0
    with path.open("wb") as out:
        written = out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

        def emit(number: int, body: bytes) -> None:
            nonlocal written
            while len(offsets) < number:
                offsets.append(0)
            offsets[number - 1] = written
            written += out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

        emit(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        number = 4
        image_bytes = 0
        if pages:
            per_page_text = 4_200  # roughly what a page of text takes in the file
            image_bytes = max(0, (target - pages * per_page_text) // pages)
        side = int((image_bytes / 3) ** 0.5) if image_bytes else 0
        noise = rng.randbytes(side * side * 3) if side else b""
        while (len(kids) < pages) if pages else (written < target):
            lines = _text_lines(rng, pools, LINES_PER_PAGE)
            text_chars += sum(len(line) + 1 for line in lines)
            operations = [b"BT /F1 10 Tf 12 TL 50 760 Td"]
            operations += [b"(%s) Tj T*" % line.encode("latin-1") for line in lines]
            operations.append(b"ET")
            resources = b"/Font << /F1 3 0 R >>"
            if side:
                # Each page's image differs (rotated noise), as photos do; uncompressed RGB samples.
                shift = rng.randrange(len(noise))
                sample = noise[shift:] + noise[:shift]
                emit(number, b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                             b"/BitsPerComponent 8 /Length %d >>\nstream\n%s\nendstream" % (side, side, len(sample),
                                                                                          sample))
                resources += b" /XObject << /Im1 %d 0 R >>" % number
                operations.append(b"q 200 0 0 150 350 40 cm /Im1 Do Q")
                number += 1
            stream = b"\n".join(operations)
            emit(number, b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
            emit(number + 1, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << %s >> "
                             b"/Contents %d 0 R >>" % (resources, number))
            kids.append(number + 1)
            number += 2
        emit(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        emit(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % kid for kid in kids),
                                                               len(kids)))
        xref = written
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
        out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(offsets) + 1, xref))
    return {"bytes": path.stat().st_size, "pages": len(kids), "text_chars": text_chars, "image_bytes": side * side * 3}


# -- the parent ---------------------------------------------------------------------------------------------------

def _child(folder: Path, *args: str) -> dict:
    output = folder / f"result-{uuid.uuid4().hex}.json"
    subprocess.run([sys.executable, "-m", "benchmarks.ingestion", *args, str(folder), str(output)], check=True,
                   env=child_env(), cwd=Path(__file__).resolve().parent.parent)
    return json.loads(output.read_text())


def run() -> str:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="privex-bench-ingestion-") as name:
        folder = Path(name)
        throughput = _child(folder, "--throughput")
        pdfs = []
        for label, megabytes, pages, mode in (("mostly images", PDF_MB, PDF_PAGES, "--pdf"),
                                              ("text only", PDF_TEXT_MB, None, "--pdf"),
                                              ("text only", PDF_STUB_MB, None, "--pdf-stub")):
            if not megabytes:
                continue
            path = folder / f"{label.replace(' ', '-')}-{megabytes:g}.pdf"
            begun = time.perf_counter()
            made = write_pdf(path, megabytes, pages)
            made["generate_seconds"] = time.perf_counter() - begun
            pdfs.append({"label": label, "model": mode == "--pdf", **made, **_child(folder, mode, str(path))})
            path.unlink()
    return _markdown(throughput, pdfs, time.perf_counter() - started)


def _markdown(throughput: dict, pdfs: list[dict], seconds: float) -> str:
    t = throughput
    ratio = t["pipeline_rate"] / t["raw_rate"]
    verdict = "met" if ratio >= 0.8 else "**not met**"
    lines = [
        "\n### Ingestion (`ingest_document`: parse → chunk → embed → store; default knowledge base settings)\n\n",
        f"Corpus: {t['documents']} generated Markdown documents, {t['megabytes']:.2f} MB, {t['chunks']:,} chunks "
        f"(sentence chunker, 512 tokens, overlap 64; mean {t['mean_chars']:.0f} characters as embedded). "
        f"Model loaded and warmed up before timing; all-MiniLM-L6-v2 on the CPU, {t['threads']} PyTorch threads.\n\n",
        "| | seconds | chunks/s |\n|---|---|---|\n",
        f"| pipeline (`ingest_document` per document) | {t['pipeline_seconds']:.1f} | {t['pipeline_rate']:.1f} |\n",
        f"| … of which inside the model | {t['model_seconds']:.1f} | |\n",
        f"| raw model, same texts (`embed(texts, batch_size=64)`, one call): mean of before and after the pipeline "
        f"({t['raw_before']:.1f} s, {t['raw_after']:.1f} s) | {t['raw_seconds']:.1f} | {t['raw_rate']:.1f} |\n",
        f"\nRatio pipeline / raw: **{ratio:.2f}** (target ≥ 0.8: {verdict}). The pipeline hands the model "
        f"{t['embed_calls']} calls (mean {t['chunks'] / max(1, t['embed_calls']):.1f} texts per call: each document "
        f"is embedded on its own, in calls of at most 64 texts) against one call of {t['chunks']:,} texts for the "
        f"raw figure: the time inside the model against the raw time is what the smaller calls cost, the rest of "
        f"the pipeline's time is parsing, chunking and storing. Load average before the run: {t['load']}.\n",
        "\n**Peak memory of ingesting one PDF** (a fresh process: app built, migrations checked, the model loaded and "
        "run on one full batch of 64 full-length texts (not in the stubbed row), then `ingest_document`; `ru_maxrss` "
        "of that process before and after the ingestion, in MB of 10^6 bytes, PostgreSQL's processes not "
        "counted)\n\n",
        "| PDF | file | pages | text | chunks | ingestion | peak RSS before | peak RSS after | target < 1.5 GB |\n"
        "|---|---|---|---|---|---|---|---|---|\n",
    ]
    for pdf in pdfs:
        ok = ("met" if pdf["peak_mb"] < 1500 else "**not met**") if pdf["model"] else "— (model stubbed)"
        image = f", {pdf['image_bytes'] / 1000:.0f} KB image per page" if pdf["image_bytes"] else ""
        stubbed = ", **model stubbed**" if not pdf["model"] else ""
        lines.append(f"| {pdf['label']}{image}{stubbed} | {pdf['bytes'] / 1e6:.1f} MB | {pdf['pages']:,} | "
                     f"{pdf['text_chars'] / 1e6:.1f} MB | {pdf['chunks']:,} | {pdf['seconds']:.0f} s "
                     f"({pdf['status']}) | {pdf['loaded_mb']:.0f} MB | {pdf['peak_mb']:.0f} MB | {ok} |\n")
    with_model = [pdf for pdf in pdfs if pdf["model"]]
    for pdf in pdfs:
        if pdf["model"] or not with_model:
            continue
        at_work = max(other["loaded_mb"] for other in with_model)
        grown = pdf["peak_mb"] - pdf["loaded_mb"]
        lines.append(
            f"\nThe stubbed PDF holds {pdf['bytes'] / 1e6:.0f} MB of text, {pdf['chunks']:,} chunks, which the model "
            f"would take about {pdf['chunks'] / t['pipeline_rate'] / 60:.0f} min to embed here. That process answers "
            f"the model's calls with random vectors of its size and type without loading it, so its peak is the "
            f"app's and the pipeline's alone: the pipeline grew it by {grown:.0f} MB. With the model at work "
            f"({at_work:.0f} MB before ingesting, above) the same file would peak near **{at_work + grown:.0f} MB** "
            f"(an estimate: the model's working memory plus the pipeline's data, which peak together during the last "
            f"batches; target < 1.5 GB: {'met' if at_work + grown < 1500 else '**not met**'}).\n")
    generated = ", ".join(f"{pdf['generate_seconds']:.1f} s" for pdf in pdfs) or "none"
    lines.append(f"\nBenchmark wall time {seconds:.0f} s (PDFs generated in: {generated}).\n")
    return "".join(lines)


# -- children -----------------------------------------------------------------------------------------------------

def _progress(message: str) -> None:
    print(f"[ingestion] {message}", file=sys.stderr, flush=True)


def _app(folder: Path):
    from flask_migrate import upgrade

    from privex import embedded
    from privex.app import create_app

    url = embedded.postgres_url(folder / "pgdata", DATABASE)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": str(folder / "instance"),
                      "SECRET_KEY": "benchmark-secret-key", "LOG_LEVEL": "WARNING"})
    with app.app_context():
        upgrade()
    return app


def _knowledge_base(name: str):
    from privex.extensions import db
    from privex.models import KnowledgeBase, Organization, Workspace

    organization = Organization(name=f"Bench {name}")
    workspace = Workspace(name=name, organization=organization)
    db.session.add_all([organization, workspace])
    db.session.flush()
    kb = KnowledgeBase(workspace_id=workspace.id, name=name)
    db.session.add(kb)
    db.session.commit()
    return kb


def _document(kb, path: Path):
    from privex.extensions import db
    from privex.models import Document

    document = Document(workspace_id=kb.workspace_id, knowledge_base_id=kb.id, name=path.name,
                        storage_path=str(path), size_bytes=path.stat().st_size)
    db.session.add(document)
    db.session.commit()
    return document.id


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def throughput_child(folder: Path) -> dict:
    import torch

    import privex_llms.embeddings.local as local
    from privex.extensions import db
    from privex.models import Document
    from privex.services.ingestion import chunk, ingest_document, load

    load_average = _load()
    app = _app(folder)
    paths = markdown_corpus(folder / "corpus", CORPUS_MB)
    recorded: list[list[str]] = []  # the texts of each call the pipeline made to the model
    model_seconds = [0.0]
    real_embed = local.embed

    def recording_embed(texts, batch_size=local.BATCH_SIZE):
        begun = time.perf_counter()
        try:
            return real_embed(texts, batch_size=batch_size)
        finally:
            model_seconds[0] += time.perf_counter() - begun
            recorded.append(list(texts))

    def raw() -> float:
        started = time.perf_counter()
        real_embed(expected, batch_size=64)
        return time.perf_counter() - started

    with app.app_context():
        kb = _knowledge_base("throughput")
        ids = [_document(kb, path) for path in paths]
        # The texts the pipeline will hand the model, worked out beforehand (parse and chunk only, untimed), so the
        # raw model runs on them both before and after the pipeline: a change in the machine's load evens out.
        expected = []
        for document_id in ids:
            document = db.session.get(Document, document_id)
            expected += [node.get_content(metadata_mode="embed") for node in chunk(document, kb, load(document))]
        real_embed([WARM_UP_TEXT] * 64, batch_size=64)
        _progress(f"raw model on the {len(expected)} chunks' texts")
        raw_before = raw()
        _progress(f"ingesting {len(ids)} documents")
        local.embed = recording_embed
        try:
            started = time.perf_counter()
            for document_id in ids:
                document = ingest_document(document_id)
                if document.status != "indexed":
                    raise RuntimeError(f"{document.name} was not indexed: {document.error}")
            pipeline_seconds = time.perf_counter() - started
        finally:
            local.embed = real_embed
        texts = [text for call in recorded for text in call]
        if texts != expected:
            raise RuntimeError("the pipeline embedded other texts than the ones worked out before it ran")
        _progress(f"pipeline: {len(texts)} chunks in {pipeline_seconds:.0f} s; raw model again")
        raw_after = raw()
        db.session.remove()
        db.engine.dispose()
    raw_seconds = (raw_before + raw_after) / 2
    return {
        "load": load_average, "documents": len(paths),
        "megabytes": sum(path.stat().st_size for path in paths) / 1e6,
        "chunks": len(texts), "mean_chars": sum(map(len, texts)) / max(1, len(texts)),
        "threads": torch.get_num_threads(), "embed_calls": len(recorded),
        "pipeline_seconds": pipeline_seconds, "pipeline_rate": len(texts) / pipeline_seconds,
        "model_seconds": model_seconds[0], "raw_before": raw_before, "raw_after": raw_after,
        "raw_seconds": raw_seconds, "raw_rate": len(texts) / raw_seconds,
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux


def _stub_model() -> None:
    """Answer the local model's calls with random unit vectors of its size and type (lists of floats), without
    loading it: what is left is the memory of the app and the pipeline."""
    import numpy as np

    import privex_llms.embeddings.local as local

    rng = np.random.default_rng(1)

    def stub(texts, batch_size=local.BATCH_SIZE):
        vectors = rng.normal(size=(len(texts), local.DIMENSION)).astype(np.float32)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()

    local.embed = stub


def pdf_child(folder: Path, pdf: Path, model: bool = True) -> dict:
    import sqlalchemy as sa

    from privex.extensions import db
    from privex.models import Chunk
    from privex.services.ingestion import ingest_document
    from privex_llms.embeddings.local import embed

    app = _app(folder)
    if not model:
        _stub_model()
    with app.app_context():
        kb = _knowledge_base(f"pdf-{uuid.uuid4().hex[:8]}")
        document_id = _document(kb, pdf)
        if model:
            embed([WARM_UP_TEXT] * 64, batch_size=64)  # load the model and run one full batch of full-length chunks
        loaded = _peak_mb()
        _progress(f"ingesting {pdf.name} ({pdf.stat().st_size / 1e6:.1f} MB); peak RSS so far {loaded:.0f} MB")
        started = time.perf_counter()
        document = ingest_document(document_id)
        seconds = time.perf_counter() - started
        peak = _peak_mb()
        chunks = db.session.scalar(sa.select(sa.func.count()).select_from(Chunk)
                                   .where(Chunk.document_id == document_id))
        status = document.status if document.status == "indexed" else f"{document.status}: {document.error}"
        db.session.remove()
        db.engine.dispose()
    _progress(f"{chunks} chunks in {seconds:.0f} s, peak RSS {peak:.0f} MB")
    return {"loaded_mb": loaded, "peak_mb": peak, "seconds": seconds, "chunks": chunks, "status": status}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--throughput":
        result = throughput_child(Path(sys.argv[2]))
        Path(sys.argv[3]).write_text(json.dumps(result))
    elif len(sys.argv) == 5 and sys.argv[1] in ("--pdf", "--pdf-stub"):
        result = pdf_child(Path(sys.argv[3]), Path(sys.argv[2]), model=sys.argv[1] == "--pdf")
        Path(sys.argv[4]).write_text(json.dumps(result))
    else:
        print(run())
