"""Knowledge bases and documents through the API: upload, background ingestion (eager Celery here), status,
chunks, query with citations, reindex, delete; and the bad inputs a user can send."""

from __future__ import annotations

import gc
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import rolled_back
from privex.models import Chunk
from tests.helpers import add_member, sign_up

API = "/api/v1"
HANDBOOK = b"""# Handbook

## Holidays
Every employee has twenty-five days of paid holiday a year. Unused days carry over until March.

## Security
Laptops must use full-disk encryption. Report a lost laptop to the security team within one hour.
"""


def upload(person, kb_id, *files, expect=202):
    response = person.post(f"{API}/knowledge-bases/{kb_id}/documents/upload",
                           data={"files": [(io.BytesIO(content), name) for name, content in files]},
                           content_type="multipart/form-data")
    assert response.status_code == expect, response.get_json()
    return response.get_json()


@pytest.fixture()
def owner(client):
    return sign_up(client, "kate")


@pytest.fixture()
def kb(owner):
    response = owner.post(f"{API}/knowledge-bases", json={"name": "Handbook"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_new_knowledge_base_uses_the_local_defaults(kb):
    assert kb["vector_store"] == "pgvector" and kb["embedding_model"] == "all-MiniLM-L6-v2"
    assert kb["embedding_dim"] == 384 and kb["chunking_strategy"] == "sentence"


def test_unknown_plugins_and_bad_chunking_are_refused_naming_what_is_installed(owner):
    response = owner.post(f"{API}/knowledge-bases", json={"name": "x", "vector_store": "qdrant",
                                                         "embedding_model": "ada-99"})
    body = response.get_json()
    assert response.status_code == 422
    assert "vector store 'qdrant' is not installed (installed: pgvector)" in body["errors"]["vector_store"][0]
    assert "ada-99" in body["errors"]["embedding_model"][0]
    bad = owner.post(f"{API}/knowledge-bases", json={"name": "y", "chunking_config": {"chunk_size": 100,
                                                                                      "chunk_overlap": 200}})
    assert bad.status_code == 422 and "chunking_config" in bad.get_json()["errors"]


def test_knowledge_base_names_are_unique_in_a_workspace(owner, kb):
    assert owner.post(f"{API}/knowledge-bases", json={"name": "Handbook"}).status_code == 409


def test_an_upload_is_indexed_and_answers_with_citations(owner, kb):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    assert document["name"] == "handbook.md" and document["size_bytes"] == len(HANDBOOK)
    indexed = owner.get(f"{API}/documents/{document['id']}").get_json()
    assert indexed["status"] == "indexed" and indexed["progress"] == 1.0 and indexed["chunks_total"] >= 1
    chunks = owner.get(f"{API}/documents/{document['id']}/chunks").get_json()
    assert [chunk["position"] for chunk in chunks] == list(range(len(chunks)))
    for mode in ("hybrid", "vector", "keyword"):
        result = owner.post(f"{API}/knowledge-bases/{kb['id']}/query",
                            json={"query": "what if my laptop is lost?", "mode": mode, "top_k": 2}).get_json()
        top = result["hits"][0]
        assert "Report a lost laptop" in top["text"], mode
        assert top["document_name"] == "handbook.md" and top["document_id"] == document["id"]
        assert top["position"]["heading"] == "Handbook > Security"


def test_uploads_are_streamed_to_the_instance_folder(app, owner, kb):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    stored = Path(app.instance_path) / "uploads" / owner.workspace_id / document["id"] / "handbook.md"
    assert stored.read_bytes() == HANDBOOK


@pytest.mark.parametrize("name, content, status, words", [
    ("virus.exe", b"MZ\x90\x00", 415, "cannot be read"),
    ("empty.md", b"", 422, "empty"),
])
def test_bad_files_are_refused_before_anything_is_stored(owner, kb, name, content, status, words):
    body = upload(owner, kb["id"], (name, content), expect=status)
    assert words in body["message"]
    assert owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json() == []


def test_an_upload_without_a_file_explains_the_field(owner, kb):
    response = owner.post(f"{API}/knowledge-bases/{kb['id']}/documents/upload", data={},
                          content_type="multipart/form-data")
    assert response.status_code == 422 and "multipart/form-data" in response.get_json()["message"]


# werkzeug leaves the spooled file of a part cut off at the size limit for the garbage collector.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_upload_over_the_size_limit_is_a_413(make_app):
    small = make_app(MAX_UPLOAD_MB=1)
    with rolled_back(small):
        person = sign_up(small.test_client(), "big")
        kb = person.post(f"{API}/knowledge-bases", json={"name": "big"}).get_json()
        body = upload(person, kb["id"], ("big.txt", b"a" * (1024 * 1024 + 1)), expect=413)
        assert person.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json() == []
    gc.collect()  # here, where the warning is ignored, not in a later test
    assert "1 MB" in body["message"]


def test_an_unreadable_file_of_a_known_type_fails_with_the_reason(owner, kb):
    [document] = upload(owner, kb["id"], ("scan.pdf", b"%PDF-1.4 not really a pdf"))
    failed = owner.get(f"{API}/documents/{document['id']}").get_json()
    assert failed["status"] == "failed" and "PDF" in failed["error"]
    listed = owner.get(f"{API}/knowledge-bases/{kb['id']}/documents?status=failed").get_json()
    assert [item["id"] for item in listed] == [document["id"]]


def test_documents_list_filters_and_pages(owner, kb):
    upload(owner, kb["id"], *[(f"note-{n}.md", f"# Note {n}\n\nText {n}.".encode()) for n in range(3)])
    response = owner.get(f"{API}/documents?q=note-1&knowledge_base_id={kb['id']}")
    assert [item["name"] for item in response.get_json()] == ["note-1.md"]
    paged = owner.get(f"{API}/documents?page_size=2&status=indexed")
    assert len(paged.get_json()) == 2 and json.loads(paged.headers["X-Pagination"])["total"] == 3


def test_deleting_a_document_deletes_its_vectors_and_file(app, owner, kb, database):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    stored = Path(app.instance_path) / "uploads" / owner.workspace_id / document["id"]
    assert owner.delete(f"{API}/knowledge-bases/{kb['id']}/documents/{document['id']}").status_code == 204
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.document_id == document["id"])) == 0
    assert not stored.exists()
    assert owner.get(f"{API}/documents/{document['id']}").status_code == 404


def test_deleting_a_knowledge_base_deletes_everything_in_it(owner, kb, database):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    assert owner.delete(f"{API}/knowledge-bases/{kb['id']}").status_code == 204
    assert owner.get(f"{API}/documents/{document['id']}").status_code == 404
    assert database.session.scalar(sa.select(sa.func.count()).select_from(Chunk).where(
        Chunk.knowledge_base_id == kb["id"])) == 0


def test_reindexing_after_a_chunker_change_rebuilds_the_chunks(owner, kb):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    before = owner.get(f"{API}/documents/{document['id']}").get_json()["chunks_total"]
    assert owner.patch(f"{API}/knowledge-bases/{kb['id']}", json={
        "chunking_strategy": "token", "chunking_config": {"chunk_size": 24, "chunk_overlap": 2}}).status_code == 200
    assert owner.post(f"{API}/knowledge-bases/{kb['id']}/reindex").get_json() == {"queued": 1}
    after = owner.get(f"{API}/documents/{document['id']}").get_json()
    assert after["status"] == "indexed" and after["chunks_total"] > before


def test_analytics_count_documents_and_chunks(owner, kb):
    [document] = upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    stats = owner.get(f"{API}/knowledge-bases/{kb['id']}/analytics").get_json()
    assert stats["documents"]["indexed"] == 1 and stats["chunks"] >= 1 and stats["size_bytes"] == len(HANDBOOK)
    assert owner.get(f"{API}/documents/{document['id']}/analytics").get_json()["chunks"] == stats["chunks"]


def test_batch_upload_into_a_knowledge_base(owner, kb):
    response = owner.post(f"{API}/documents/batch-upload?knowledge_base_id={kb['id']}",
                          data={"files": [(io.BytesIO(b"# A\n\nalpha"), "a.md"), (io.BytesIO(b"# B\n\nbeta"), "b.md")]},
                          content_type="multipart/form-data")
    assert response.status_code == 202 and len(response.get_json()) == 2


def test_a_viewer_queries_but_cannot_change_anything(client, owner, kb):
    upload(owner, kb["id"], ("handbook.md", HANDBOOK))
    viewer = add_member(owner, sign_up(client, "vera"), workspace_role="viewer")
    assert viewer.post(f"{API}/knowledge-bases/{kb['id']}/query", json={"query": "holiday"}).status_code == 200
    assert viewer.post(f"{API}/knowledge-bases", json={"name": "mine"}).status_code == 403
    upload(viewer, kb["id"], ("x.md", b"# x\n\ny"), expect=403)


def test_query_input_is_validated(owner, kb):
    for payload in ({"query": ""}, {"query": "x", "mode": "psychic"}, {"query": "x", "top_k": 500},
                    {"query": "x", "threshold": 2}):
        assert owner.post(f"{API}/knowledge-bases/{kb['id']}/query", json=payload).status_code == 422, payload


@pytest.mark.parametrize("defaults", [{"top_k": "lots"}, {"top_k": 0}, {"top_k": 51}, {"mode": "psychic"},
                                      {"threshold": 2}, {"threshold": "high"}, {"embedding": "big"},
                                      {"one_hit_per_document": "yes"}])
def test_a_knowledge_bases_query_defaults_are_checked_when_saved(client, defaults):
    owner = sign_up(client)
    created = owner.post("/api/v1/knowledge-bases", json={"name": "kb", "retrieval_config": defaults})
    assert created.status_code == 422, created.get_json()
    assert list(created.get_json()["errors"]["retrieval_config"]) == list(defaults)
    kb = owner.post("/api/v1/knowledge-bases", json={"name": "kb", "retrieval_config": {"top_k": 3}}).get_json()
    changed = owner.patch(f"/api/v1/knowledge-bases/{kb['id']}", json={"retrieval_config": defaults})
    assert changed.status_code == 422
    assert owner.post(f"/api/v1/knowledge-bases/{kb['id']}/query", json={"query": "anything"}).status_code == 200
