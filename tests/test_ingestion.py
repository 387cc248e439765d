"""Ingestion and retrieval through the installed plugins (parsers, chunkers, pgvector) with a small deterministic
embedding model registered for the test, so what is checked is the pipeline, not a model."""

from __future__ import annotations

import hashlib
import math
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from llama_index.core.base.embeddings.base import BaseEmbedding

from privex import hookimpl
from privex.contracts import ProviderError
from privex.models import Chunk, Document, KnowledgeBase, Organization, Workspace
from privex.services.ingestion import TransientFailure, ingest_document, ingest_documents, requeue_stuck
from privex.services.retrieval import retrieve

DIM = 16


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in text.lower().split():
        word = "".join(ch for ch in word if ch.isalnum())
        if word:
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class BagOfWords(BaseEmbedding):
    fail_with: object = None
    fail_on: object = None
    while_embedding: object = None

    def _get_text_embedding(self, text):
        if self.fail_with:
            raise self.fail_with
        if self.fail_on and self.fail_on in text:
            raise ProviderError(f"the model refused a text holding {self.fail_on}", status=400, transient=False)
        if self.while_embedding:
            self.while_embedding()
        return bag_of_words(text)

    def _get_query_embedding(self, query):
        return bag_of_words(query)

    async def _aget_query_embedding(self, query):
        return bag_of_words(query)


class BagOfWordsModel:
    name = "bag-of-words"
    dimension = DIM
    fail_with = None
    fail_on = None
    while_embedding = None

    def create(self, **config):
        return BagOfWords(model_name="bag-of-words", fail_with=self.fail_with, fail_on=self.fail_on,
                          while_embedding=self.while_embedding)


MODEL = BagOfWordsModel()


class TestEmbeddings:
    @hookimpl
    def privex_embedding_models(self):
        return [MODEL]


@pytest.fixture()
def knowledge_base(app, database, register_plugin, tmp_path):
    register_plugin(TestEmbeddings(), name="test-embeddings")
    MODEL.fail_with = MODEL.fail_on = MODEL.while_embedding = None
    organization = Organization(name="Acme")
    workspace = Workspace(name="main", organization=organization)
    database.session.add_all([organization, workspace])
    database.session.flush()
    kb = KnowledgeBase(workspace_id=workspace.id, name="handbook", embedding_model="bag-of-words",
                       embedding_dim=DIM, chunking_strategy="sentence",
                       chunking_config={"chunk_size": 64, "chunk_overlap": 8})
    database.session.add(kb)
    database.session.commit()
    return kb


HANDBOOK = """# Handbook

## Holidays
Every employee has twenty-five days of paid holiday a year. Unused days carry over until March.

## Expenses
Submit receipts within thirty days. Travel is reimbursed at cost; meals up to forty euros a day.

## Security
Laptops must use full-disk encryption. Report a lost laptop to security within one hour.
"""


def add_file(database, kb, tmp_path, name, content):
    path = tmp_path / f"{uuid.uuid4().hex}-{name}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    document = Document(workspace_id=kb.workspace_id, knowledge_base_id=kb.id, name=name, storage_path=str(path))
    database.session.add(document)
    database.session.commit()
    return document


def chunk_rows(database, document):
    return database.session.scalars(sa.select(Chunk).where(Chunk.document_id == document.id)
                                    .order_by(Chunk.position)).all()


def test_a_markdown_upload_is_indexed_with_progress_and_headings(database, knowledge_base, tmp_path):
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    assert document.status == "indexed" and document.error is None and document.indexed_at is not None
    chunks = chunk_rows(database, document)
    assert len(chunks) == document.chunks_total == document.chunks_done >= 3
    assert {chunk.metadata_.get("heading") for chunk in chunks} >= {"Handbook > Holidays", "Handbook > Expenses"}
    assert all(len(chunk.embedding) == DIM and chunk.embedding_dim == DIM for chunk in chunks)


def test_reingesting_unchanged_content_adds_no_chunks(database, knowledge_base, tmp_path):
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    before = [chunk.id for chunk in chunk_rows(database, document)]
    ingest_document(document.id)
    assert [chunk.id for chunk in chunk_rows(database, document)] == before


def test_changed_content_replaces_the_chunks(database, knowledge_base, tmp_path):
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    with open(document.storage_path, "w") as file:
        file.write("# Handbook\n\nThe office is closed on Fridays.\n")
    ingest_document(document.id)
    texts = [chunk.text for chunk in chunk_rows(database, document)]
    assert texts and all("Fridays" in text for text in texts)


@pytest.mark.parametrize("name, content, reason", [
    ("notes.xyz", "some text", "files of type .xyz cannot be read"),
    ("empty.txt", "   \n", "the file is empty"),
])
def test_unreadable_files_fail_with_the_reason(database, knowledge_base, tmp_path, name, content, reason):
    document = ingest_document(add_file(database, knowledge_base, tmp_path, name, content).id)
    assert document.status == "failed" and reason in document.error
    assert chunk_rows(database, document) == []


def test_a_missing_plugin_fails_naming_it(database, knowledge_base, tmp_path):
    knowledge_base.embedding_model = "text-embedding-9"
    database.session.commit()
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    assert document.status == "failed"
    assert "embedding model 'text-embedding-9' is not installed" in document.error


def test_a_transient_provider_error_asks_for_a_retry_and_keeps_old_chunks(database, knowledge_base, tmp_path):
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    old = [chunk.id for chunk in chunk_rows(database, document)]
    MODEL.fail_with = ProviderError("the embedding server timed out", status=504, transient=True)
    with pytest.raises(TransientFailure):
        ingest_document(document.id, force=True)
    assert document.status == "pending" and "timed out" in document.error
    assert [chunk.id for chunk in chunk_rows(database, document)] == old


def test_a_permanent_provider_error_fails_the_document(database, knowledge_base, tmp_path):
    MODEL.fail_with = ProviderError("the model does not exist", status=502, transient=False)
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    assert document.status == "failed" and "does not exist" in document.error


def test_documents_left_processing_by_a_dead_worker_are_requeued(database, knowledge_base, tmp_path):
    document = add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK)
    document.status = "processing"
    database.session.commit()
    database.session.execute(sa.update(Document).where(Document.id == document.id).values(
        updated_at=sa.func.now() - sa.text("interval '1 hour'")))
    assert requeue_stuck(older_than_seconds=900) == [document.id]
    database.session.refresh(document)
    assert document.status == "pending"


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_retrieval_returns_cited_hits_in_every_mode(database, knowledge_base, tmp_path, mode):
    ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    hits = retrieve(knowledge_base, "how many days of paid holiday", mode=mode, top_k=3)
    assert hits and "twenty-five days of paid holiday" in hits[0].text
    assert hits[0].document_name == "handbook.md"
    assert hits[0].position["heading"] == "Handbook > Holidays" and hits[0].position["chunk"] is not None


def test_retrieval_filters_and_rejects_unknown_modes(database, knowledge_base, tmp_path):
    first = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    ingest_document(add_file(database, knowledge_base, tmp_path, "other.md", "# Other\n\nPaid holiday rules.").id)
    hits = retrieve(knowledge_base, "paid holiday", filters={"file_name": "other.md"}, top_k=5)
    assert {hit.document_name for hit in hits} == {"other.md"}
    hits = retrieve(knowledge_base, "paid holiday", filters={"document_id": str(first.id)}, top_k=5)
    assert {hit.document_name for hit in hits} == {"handbook.md"}
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        retrieve(knowledge_base, "x", mode="psychic")


LEAVE = """# Leave

## Paid holiday
Twenty-five days of paid holiday a year.

## Carrying paid holiday over
Unused days of paid holiday carry over until March.
"""


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_one_hit_per_document_gives_the_next_document_instead_of_a_second_chunk(database, knowledge_base, tmp_path,
                                                                                mode):
    ingest_document(add_file(database, knowledge_base, tmp_path, "leave.md", LEAVE).id)
    ingest_document(add_file(database, knowledge_base, tmp_path, "office.md",
                             "# Office\n\n## Closing\nThe office is closed on a public holiday.").id)
    question = "days of paid holiday"
    before = retrieve(knowledge_base, question, mode=mode, top_k=2)
    assert [hit.document_name for hit in before] == ["leave.md", "leave.md"]
    knowledge_base.retrieval_config = {"one_hit_per_document": True}
    database.session.commit()
    after = retrieve(knowledge_base, question, mode=mode, top_k=2)
    assert [hit.document_name for hit in after] == ["leave.md", "office.md"]
    assert after[0].chunk_id == before[0].chunk_id  # the same best chunk: only a document's lower chunks are left out


def test_the_default_local_model_indexes_and_answers(database, knowledge_base, tmp_path):
    """The defaults a new knowledge base gets: all-MiniLM-L6-v2 (384 dimensions) and the sentence chunker."""
    knowledge_base.embedding_model, knowledge_base.embedding_dim = "all-MiniLM-L6-v2", 384
    database.session.commit()
    document = ingest_document(add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK).id)
    assert document.status == "indexed", document.error
    hits = retrieve(knowledge_base, "What should I do if my laptop is stolen?", mode="vector", top_k=1)
    assert "Report a lost laptop to security" in hits[0].text
    assert 0.3 < hits[0].score <= 1.0


def test_an_unexpected_error_fails_the_document_instead_of_leaving_it_processing(app, database, knowledge_base,
                                                                                 tmp_path):
    from privex.extensions import state

    document = add_file(database, knowledge_base, tmp_path, "handbook.md", HANDBOOK)
    MODEL.fail_with = RuntimeError("a bug in a plugin")
    with pytest.raises(RuntimeError, match="a bug in a plugin"):  # re-raised, so the worker's log shows it
        state(app).celery.tasks["privex.ingest_document"].apply(args=[str(document.id)])
    database.session.expire_all()
    failed = database.session.get(Document, document.id)
    assert failed.status == "failed" and "internal error stopped indexing (RuntimeError)" in failed.error


def test_tasks_of_a_deleted_knowledge_base_end_quietly(app, database, knowledge_base, tmp_path, caplog):
    from privex.extensions import state
    from privex.services.knowledge import delete_knowledge_base

    documents = [add_file(database, knowledge_base, tmp_path, f"page-{n}.md", HANDBOOK) for n in range(3)]
    task = state(app).celery.tasks["privex.ingest_document"]
    # The first is being embedded when its knowledge base is deleted; the others are still queued.
    MODEL.while_embedding = lambda: (MODEL.__setattr__("while_embedding", None),
                                     delete_knowledge_base(knowledge_base))
    caplog.set_level("INFO")
    results = [task.apply(args=[str(document.id)]).get() for document in documents]
    assert results == ["deleted"] * 3
    assert [record for record in caplog.records if record.levelno >= 30] == []  # no warning, error or traceback
    assert sum("document deleted before it was indexed" in record.getMessage() for record in caplog.records) == 3
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.document_id.in_([document.id for document in documents]))) == 0


# -- batches of small documents (``ingest_documents``: what an upload of many small files queues) ----------------


def statistics_are_exact(database, knowledge_base):
    """The knowledge base's keyword statistics equal what its chunks say, counted afresh."""
    kb = knowledge_base.id
    stored = database.session.execute(sa.text("SELECT chunks, length FROM plg_pgvector_keyword_statistics "
                                              "WHERE knowledge_base_id = :kb"), {"kb": kb}).one_or_none()
    counted = database.session.execute(sa.text("SELECT count(*), coalesce(sum(term_count), 0) FROM chunks "
                                               "WHERE knowledge_base_id = :kb"), {"kb": kb}).one()
    assert tuple(stored or (0, 0)) == tuple(counted)
    assert dict(database.session.execute(sa.text(
        "SELECT term, chunks FROM plg_pgvector_term_frequencies WHERE knowledge_base_id = :kb"), {"kb": kb}).all()) \
        == dict(database.session.execute(sa.text(
            "SELECT term, count(*) FROM chunks, unnest(terms) AS term WHERE knowledge_base_id = :kb GROUP BY term"),
            {"kb": kb}).all())
    return counted[0]


def pages(database, knowledge_base, tmp_path, count=3):
    return [add_file(database, knowledge_base, tmp_path, f"page-{n}.md", HANDBOOK.replace("Handbook", f"Page {n}"))
            for n in range(count)]


def once(action):
    """``action`` on the first call only (a batch's one model instance calls ``while_embedding`` for every text)."""
    calls = []
    return lambda: None if calls else (calls.append(1), action())


def reloaded(database, documents):
    database.session.expire_all()
    return [database.session.get(Document, document.id) for document in documents]


def test_a_batch_indexes_every_document_and_a_bad_file_fails_alone_with_its_reason(database, knowledge_base,
                                                                                   tmp_path):
    good = pages(database, knowledge_base, tmp_path)
    empty = add_file(database, knowledge_base, tmp_path, "empty.txt", "   \n")
    missing = add_file(database, knowledge_base, tmp_path, "gone.md", HANDBOOK)
    Path(missing.storage_path).unlink()
    ids = [str(document.id) for document in [good[0], empty, good[1], missing, good[2]]]

    statuses = ingest_documents(ids)

    assert statuses == {ids[0]: "indexed", ids[1]: "failed", ids[2]: "indexed", ids[3]: "failed",
                        ids[4]: "indexed"}
    first, empty, second, missing, third = reloaded(database, [good[0], empty, good[1], missing, good[2]])
    for document in (first, second, third):
        assert document.status == "indexed" and document.error is None and document.indexed_at is not None
        assert document.chunks_total == document.chunks_done == len(chunk_rows(database, document)) > 1
        assert [chunk.position for chunk in chunk_rows(database, document)] == list(range(document.chunks_total))
    assert empty.status == "failed" and "the file is empty" in empty.error
    assert missing.status == "failed" and "the stored file is missing" in missing.error
    assert chunk_rows(database, empty) == chunk_rows(database, missing) == []
    assert statistics_are_exact(database, knowledge_base) == 3 * first.chunks_total
    hits = retrieve(knowledge_base, "report a lost laptop", mode="keyword", top_k=3)
    assert {hit.document_name for hit in hits} == {"page-0.md", "page-1.md", "page-2.md"}


def test_a_batch_shows_each_documents_progress_as_model_batches_finish(database, knowledge_base, tmp_path,
                                                                       monkeypatch):
    from privex.services import ingestion

    monkeypatch.setattr(ingestion, "EMBED_BATCH", 2)
    documents = pages(database, knowledge_base, tmp_path, 2)
    seen = []

    def look():
        rows = database.session.execute(sa.select(Document.name, Document.status, Document.chunks_done,
                                                  Document.chunks_total).order_by(Document.name)).all()
        if not seen or seen[-1] != rows:
            seen.append(rows)

    MODEL.while_embedding = look
    ingest_documents([str(document.id) for document in documents])

    total = reloaded(database, documents)[0].chunks_total
    assert total > 2  # each page needs more than one model batch
    assert all(status == "processing" and chunks_total == total
               for rows in seen for _, status, _, chunks_total in rows)
    first_done = [rows[0][2] for rows in seen]
    assert first_done == sorted(first_done) and first_done[0] == 0 and 0 < first_done[1] < total
    assert [rows[1][2] for rows in seen][-1] > 0  # the second page's progress shows before the batch is stored
    assert all(document.status == "indexed" and document.chunks_done == total
               for document in reloaded(database, documents))


def test_a_document_deleted_while_its_batch_is_embedded_is_left_out_and_the_others_are_indexed(
        app, database, knowledge_base, tmp_path, caplog):
    from privex.extensions import state
    from privex.services.knowledge import delete_documents

    documents = pages(database, knowledge_base, tmp_path)
    doomed = documents[1].id
    MODEL.while_embedding = once(lambda: delete_documents(knowledge_base, [database.session.get(Document, doomed)]))
    caplog.set_level("INFO")

    result = state(app).celery.tasks["privex.ingest_documents"].apply(
        args=[[str(document.id) for document in documents]]).get()

    assert result == {str(documents[0].id): "indexed", str(doomed): "deleted", str(documents[2].id): "indexed"}
    assert [record for record in caplog.records if record.levelno >= 30] == []
    database.session.expire_all()
    assert database.session.get(Document, doomed) is None
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.document_id == doomed)) == 0
    assert statistics_are_exact(database, knowledge_base) == 2 * database.session.get(
        Document, documents[0].id).chunks_total


def test_a_batch_whose_knowledge_base_is_deleted_ends_quietly(app, database, knowledge_base, tmp_path, caplog):
    from privex.extensions import state
    from privex.services.knowledge import delete_knowledge_base

    documents = pages(database, knowledge_base, tmp_path)
    MODEL.while_embedding = once(lambda: delete_knowledge_base(knowledge_base))
    caplog.set_level("INFO")
    result = state(app).celery.tasks["privex.ingest_documents"].apply(
        args=[[str(document.id) for document in documents]]).get()
    assert set(result.values()) == {"deleted"}
    assert [record for record in caplog.records if record.levelno >= 30] == []
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.document_id.in_([document.id for document in documents]))) == 0


def test_a_text_the_model_refuses_fails_only_its_document(database, knowledge_base, tmp_path):
    documents = pages(database, knowledge_base, tmp_path, 2)
    poisoned = add_file(database, knowledge_base, tmp_path, "poison.md", "# Poison\n\nThis line holds XYZZY.")
    MODEL.fail_on = "XYZZY"
    ingest_documents([str(documents[0].id), str(poisoned.id), str(documents[1].id)])
    first, poisoned, second = reloaded(database, [documents[0], poisoned, documents[1]])
    assert first.status == second.status == "indexed"
    assert poisoned.status == "failed" and "the model refused a text holding XYZZY" in poisoned.error
    assert chunk_rows(database, poisoned) == []
    statistics_are_exact(database, knowledge_base)


def test_a_transient_error_puts_the_whole_batch_back_to_pending_and_keeps_old_chunks(database, knowledge_base,
                                                                                     tmp_path):
    documents = pages(database, knowledge_base, tmp_path, 2)
    ingest_documents([str(document.id) for document in documents])
    old = {document.id: [chunk.id for chunk in chunk_rows(database, document)] for document in documents}
    MODEL.fail_with = ProviderError("the embedding server timed out", status=504, transient=True)
    with pytest.raises(TransientFailure):
        ingest_documents([str(document.id) for document in documents], force=True)
    for document in reloaded(database, documents):
        assert document.status == "pending" and "will retry" in document.error and "timed out" in document.error
        assert [chunk.id for chunk in chunk_rows(database, document)] == old[document.id]
    MODEL.fail_with = None
    assert set(ingest_documents([str(document.id) for document in documents]).values()) == {"indexed"}
    statistics_are_exact(database, knowledge_base)


def test_a_batch_leaves_unchanged_documents_alone_and_reindexes_changed_ones(database, knowledge_base, tmp_path):
    unchanged, changed = pages(database, knowledge_base, tmp_path, 2)
    ingest_documents([str(unchanged.id), str(changed.id)])
    kept = [chunk.id for chunk in chunk_rows(database, unchanged)]
    indexed_at = reloaded(database, [unchanged])[0].indexed_at
    Path(changed.storage_path).write_text("# Changed\n\nOnly one short line now.")

    assert ingest_documents([str(unchanged.id), str(changed.id)]) == {str(unchanged.id): "indexed",
                                                                      str(changed.id): "indexed"}
    unchanged, changed = reloaded(database, [unchanged, changed])
    assert [chunk.id for chunk in chunk_rows(database, unchanged)] == kept and unchanged.indexed_at == indexed_at
    assert [chunk.text for chunk in chunk_rows(database, changed)] == ["# Changed\n\nOnly one short line now."]
    statistics_are_exact(database, knowledge_base)


def test_an_upload_of_many_small_files_is_queued_in_batches_and_all_indexed(app, database, knowledge_base,
                                                                           monkeypatch):
    """Eager Celery (the tests'): each queued task runs as it is sent, so the tasks sent are what ran."""
    import io

    from celery import Task
    from werkzeug.datastructures import FileStorage

    from privex.services.knowledge import add_uploads

    sent = []
    real_delay = Task.delay
    monkeypatch.setattr(Task, "delay", lambda self, *args, **kwargs: (sent.append((self.name, args)),
                                                                        real_delay(self, *args, **kwargs))[1])
    app.config["INGEST_BATCH"] = 4
    files = [FileStorage(io.BytesIO(f"Note {n}\nThe refund for order {n} is paid within five days.".encode()),
                         filename=f"{n}.txt", content_type="text/plain") for n in range(10)]
    documents = add_uploads(knowledge_base, files)

    assert [(name, len(args[0]) if isinstance(args[0], list) else 1) for name, args in sent] == [
        ("privex.ingest_documents", 4), ("privex.ingest_documents", 4), ("privex.ingest_documents", 2)]
    assert {document.status for document in reloaded(database, documents)} == {"indexed"}
    statistics_are_exact(database, knowledge_base)
