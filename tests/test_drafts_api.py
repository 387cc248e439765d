"""Knowledge-base drafts through the API: settings, sources (uploads, a crawled local site, a local server speaking
Notion's API), chunk previews and finalizing into a knowledge base whose documents are indexed (eager Celery here;
tests/test_end_to_end.py runs the same flow through a real worker)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from privex.extensions import get_redis
from privex.models import KnowledgeBase
from privex.services import drafts as drafts_service
from privex.services.ingestion import ingest_document
from tests.helpers import add_member, sign_up

API = "/api/v1"
NOTION_PAGE = "0123456789abcdef0123456789abcdef"
NOTION_PAGE_ID = "01234567-89ab-cdef-0123-456789abcdef"
NOTION_TOKEN = "secret_test_notion_token_1234"
HOURS = b"""# Opening hours

## Weekdays
The shop opens at nine in the morning and closes at six in the evening, Monday to Friday.

## Weekends
On Saturdays the shop closes at one in the afternoon. It is closed on Sundays and public holidays.
"""


def html_page(title: str, paragraphs: list[str], links: list[str] = ()) -> str:
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<nav>{anchors}</nav><main><article><h1>{title}</h1>{body}</article></main></body></html>")


def serve_site(httpserver) -> str:
    """A two-page site on this machine; returns its start page."""
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/sitemap.xml").respond_with_data("", status=404)
    httpserver.expect_request("/").respond_with_data(html_page("Acme widgets", [
        "Acme sells widgets for kitchens and workshops, made by hand in small batches in Leeds.",
        "Every widget comes with a written guarantee and free repairs for the first two years.",
    ], ["/delivery"]), content_type="text/html; charset=utf-8")
    httpserver.expect_request("/delivery").respond_with_data(html_page("Delivery", [
        "Orders placed before noon are dispatched the same day by courier from the Leeds workshop.",
        "Delivery to the islands takes three working days and costs twelve euros per parcel.",
    ]), content_type="text/html; charset=utf-8")
    return httpserver.url_for("/")


def serve_notion(httpserver) -> str:
    """A local server speaking Notion's API with one page; returns the API base."""
    page = {"object": "page", "id": NOTION_PAGE_ID, "url": f"https://www.notion.so/Returns-{NOTION_PAGE}",
            "last_edited_time": "2026-11-01T10:00:00.000Z",
            "properties": {"Name": {"id": "title", "type": "title",
                                    "title": [{"type": "text", "plain_text": "Returns policy",
                                               "text": {"content": "Returns policy"}}]}}}
    httpserver.expect_request(f"/v1/pages/{NOTION_PAGE_ID}", method="GET",
                              headers={"Authorization": f"Bearer {NOTION_TOKEN}"}).respond_with_json(page)

    def paragraph(block_id, text):
        return {"object": "block", "id": block_id, "type": "paragraph", "has_children": False,
                "paragraph": {"rich_text": [{"type": "text", "plain_text": text, "text": {"content": text}}]}}

    httpserver.expect_request(f"/v1/blocks/{NOTION_PAGE_ID}/children", method="GET").respond_with_json({
        "object": "list", "has_more": False, "next_cursor": None, "results": [
            paragraph("b1", "Unused widgets can be returned within sixty days for a full refund."),
            paragraph("b2", "Send returns to the Leeds workshop with the order number written on the box."),
        ]})
    return httpserver.url_for("").rstrip("/")


@pytest.fixture()
def owner(client):
    return sign_up(client, "dora")


@pytest.fixture()
def private_sources(app, monkeypatch):
    """The operator allows sources on this machine (the local test servers)."""
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_SOURCES", True)


def new_draft(person, **settings):
    response = person.post(f"{API}/kb-drafts", json={"name": "Shop", **settings})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def add_files(person, draft_id, *files, expect=201):
    response = person.post(f"{API}/kb-drafts/{draft_id}/documents/upload",
                           data={"files": [(io.BytesIO(content), name) for name, content in files]},
                           content_type="multipart/form-data")
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def notion_credential(person):
    response = person.post(f"{API}/credentials", json={"name": "Notion", "provider": "notion",
                                                        "secret": {"token": NOTION_TOKEN}})
    assert response.status_code == 201
    return response.get_json()["id"]


def test_a_draft_keeps_its_settings_in_redis_for_a_day(app, owner):
    draft = new_draft(owner, description="What customers ask", chunking_config={"chunk_size": 256})
    assert draft["settings"] == {"name": "Shop", "description": "What customers ask", "vector_store": "pgvector",
                                 "embedding_model": "all-MiniLM-L6-v2", "chunking_strategy": "sentence",
                                 "chunking_config": {"chunk_size": 256}, "retrieval_config": {}}
    assert draft["sources"] == []
    ttl = get_redis().ttl(f"privex:kb-draft:{draft['id']}")
    assert 24 * 3600 - 60 < ttl <= 24 * 3600
    changed = owner.patch(f"{API}/kb-drafts/{draft['id']}", json={"name": "Shop FAQ", "chunking_strategy": "token"})
    assert changed.status_code == 200
    assert owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["settings"]["name"] == "Shop FAQ"
    assert owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["settings"]["chunking_strategy"] == "token"


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x", "embedding_model": "ada-99"}, "embedding_model"),
    ({"name": "x", "chunking_strategy": "nonsense"}, "chunking_strategy"),
    ({"name": "x", "chunking_config": {"chunk_size": 100, "chunk_overlap": 200}}, "chunking_config"),
    ({"name": "x", "chunking_config": "big"}, "chunking_config"),
])
def test_bad_settings_are_refused_naming_the_field(owner, body, field):
    response = owner.post(f"{API}/kb-drafts", json=body)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"] or field in response.get_json()["message"]


def test_a_bad_chunk_setting_in_an_update_is_refused_and_changes_nothing(owner):
    draft = new_draft(owner)
    response = owner.patch(f"{API}/kb-drafts/{draft['id']}", json={"chunking_config": {"chunk_overlap": -1}})
    assert response.status_code == 422
    assert owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["settings"]["chunking_config"] == {}


def test_uploads_wait_in_the_draft_folder_and_can_be_removed(app, owner):
    draft = new_draft(owner)
    sources = add_files(owner, draft["id"], ("hours.md", HOURS), ("notes.txt", b"Parking is free after six."))
    assert [(s["type"], s["name"], s["size_bytes"]) for s in sources] == [
        ("upload", "hours.md", len(HOURS)), ("upload", "notes.txt", 26)]
    folder = Path(app.instance_path) / "drafts" / owner.workspace_id / draft["id"]
    assert (folder / sources[0]["id"] / "hours.md").read_bytes() == HOURS
    assert [s["id"] for s in owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["sources"]] == [
        s["id"] for s in sources]
    assert owner.delete(f"{API}/kb-drafts/{draft['id']}/documents/{sources[1]['id']}").status_code == 204
    assert not (folder / sources[1]["id"]).exists()
    assert owner.delete(f"{API}/kb-drafts/{draft['id']}/documents/{sources[1]['id']}").status_code == 404
    assert [s["name"] for s in owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["sources"]] == ["hours.md"]


@pytest.mark.parametrize("name, content, status", [("tool.exe", b"MZ", 415), ("empty.txt", b"", 422)])
def test_bad_files_are_refused_and_leave_nothing_behind(app, owner, name, content, status):
    draft = new_draft(owner)
    add_files(owner, draft["id"], (name, content), expect=status)
    assert owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["sources"] == []
    folder = Path(app.instance_path) / "drafts" / owner.workspace_id / draft["id"]
    assert not folder.exists() or not any(folder.iterdir())


def test_preview_shows_the_chunks_a_setting_makes_before_anything_is_saved(owner, database):
    draft = new_draft(owner)
    add_files(owner, draft["id"], ("hours.md", HOURS))
    default = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={})
    assert default.status_code == 200, default.get_json()
    body = default.get_json()
    assert body["source_name"] == "hours.md" and body["chunking_strategy"] == "sentence"
    assert body["total_chunks"] == len(body["chunks"]) >= 1 and body["partial"] is False
    assert "nine in the morning" in " ".join(chunk["text"] for chunk in body["chunks"])
    small = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={
        "chunking_strategy": "token", "chunking_config": {"chunk_size": 40, "chunk_overlap": 0}, "limit": 2}).get_json()
    assert small["total_chunks"] > body["total_chunks"] and len(small["chunks"]) == 2
    assert all(chunk["characters"] == len(chunk["text"]) for chunk in small["chunks"])
    assert database.session.scalar(sa.select(sa.func.count()).select_from(KnowledgeBase).where(
        KnowledgeBase.workspace_id == owner.workspace_id)) == 0


def test_preview_needs_a_source_and_a_valid_setting(owner):
    draft = new_draft(owner)
    empty = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={})
    assert empty.status_code == 422 and "no sources yet" in empty.get_json()["message"]
    add_files(owner, draft["id"], ("hours.md", HOURS))
    bad = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={"chunking_config": {"chunk_size": -5}})
    assert bad.status_code == 422
    tiny = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={
        "chunking_strategy": "token", "chunking_config": {"chunk_size": 8, "chunk_overlap": 0}})
    assert tiny.status_code == 422 and "chunk size" in tiny.get_json()["message"]
    unknown = owner.post(f"{API}/kb-drafts/{draft['id']}/preview",
                         json={"source_id": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404


def test_a_crawl_of_this_machine_is_refused_unless_the_operator_allows_it(app, owner, httpserver, monkeypatch):
    start = serve_site(httpserver)
    draft = new_draft(owner)
    plain = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl", json={"url": start})
    assert plain.status_code == 422
    assert "refusing to crawl localhost: it resolves to a private or loopback address" in plain.get_json()["message"]
    asked = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl", json={"url": start, "allow_private": True})
    assert asked.status_code == 422 and "PRIVEX_ALLOW_PRIVATE_SOURCES" in asked.get_json()["message"]
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_SOURCES", True)
    allowed = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl",
                         json={"url": start, "allow_private": True, "max_pages": 5})
    assert allowed.status_code == 201, allowed.get_json()
    assert allowed.get_json()["name"] == start.split("/")[2] and allowed.get_json()["source_url"] == start
    assert httpserver.log == []  # adding a source reads nothing yet


@pytest.mark.parametrize("body", [
    {"url": "ftp://example.com/"}, {"url": "not a url"}, {"url": "https://example.com/", "max_pages": 0},
    {"url": "https://example.com/", "include_patterns": ["(unclosed"]},
])
def test_bad_crawl_settings_are_refused(owner, body):
    draft = new_draft(owner)
    response = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl", json=body)
    assert response.status_code == 422, response.get_json()


def test_notion_and_google_sources_need_a_credential_of_this_workspace(client, owner, httpserver, private_sources):
    draft = new_draft(owner)
    missing = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion", json={"page_ids": [NOTION_PAGE]})
    assert missing.status_code == 422 and "credential_id" in missing.get_json()["errors"]
    other = sign_up(client, "eve")
    theirs = notion_credential(other)
    foreign = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion",
                         json={"page_ids": [NOTION_PAGE], "credential_id": theirs})
    assert foreign.status_code == 422 and "not a credential of this workspace" in foreign.get_json()["message"]
    mine = notion_credential(owner)
    no_pages = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion", json={"credential_id": mine})
    assert no_pages.status_code == 422 and "at least one Notion page" in no_pages.get_json()["message"]
    bad_doc = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/google-docs",
                         json={"document_ids": ["../etc"], "credential_id": mine})
    assert bad_doc.status_code == 422
    wrong_kind = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/google-docs",
                            json={"document_ids": ["1AbCdEfGhIjKlMnOp"], "credential_id": mine})
    assert wrong_kind.status_code == 422 and "Google credential (OAuth access token)" in wrong_kind.get_json()[
        "message"]
    google = owner.post(f"{API}/credentials", json={"name": "Google", "provider": "google_docs",
                                                    "secret": {"access_token": "ya29.a-long-access-token"}})
    added = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/google-docs",
                       json={"document_ids": ["1AbCdEfGhIjKlMnOp"], "credential_id": google.get_json()["id"],
                             "api_base": httpserver.url_for(""), "allow_private": True})
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["name"] == "Google Docs (1 document)"


def test_finalize_builds_a_knowledge_base_from_a_file_a_site_and_notion(
        app, owner, httpserver, private_sources, database):
    start = serve_site(httpserver)
    notion_api = serve_notion(httpserver)
    credential_id = notion_credential(owner)
    draft = new_draft(owner, description="Everything customers ask")
    add_files(owner, draft["id"], ("hours.md", HOURS))
    crawl = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl",
                       json={"url": start, "allow_private": True, "max_pages": 5})
    notion = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion", json={
        "name": "Returns", "page_ids": [NOTION_PAGE], "credential_id": credential_id, "api_base": notion_api,
        "allow_private": True})
    assert crawl.status_code == 201 and notion.status_code == 201, (crawl.get_json(), notion.get_json())

    preview = owner.post(f"{API}/kb-drafts/{draft['id']}/preview", json={"source_id": crawl.get_json()["id"]})
    assert preview.status_code == 200, preview.get_json()
    assert preview.get_json()["partial"] is True and "Leeds" in preview.get_json()["chunks"][0]["text"]

    finalized = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
    assert finalized.status_code == 201, finalized.get_json()
    kb = finalized.get_json()["knowledge_base"]
    assert kb["name"] == "Shop" and kb["description"] == "Everything customers ask"
    documents = {d["name"]: d for d in owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json()}
    assert set(documents) == {"hours.md", start.split("/")[2], "Returns"}
    assert {d["status"] for d in documents.values()} == {"indexed"}, documents
    assert documents["Returns"]["source_type"] == "notion" and documents["Returns"]["credential_id"] == credential_id
    assert documents[start.split("/")[2]]["source_config"]["config"]["url"] == start

    def top(query):
        hits = owner.post(f"{API}/knowledge-bases/{kb['id']}/query", json={"query": query, "top_k": 3}).get_json()
        return hits["hits"][0]

    delivery = top("how long does delivery to the islands take?")
    assert "three working days" in delivery["text"]
    assert delivery["position"]["source_url"] == start + "delivery" and delivery["position"]["title"] == "Delivery"
    returns = top("can I get a refund for an unused widget?")
    assert "sixty days" in returns["text"] and returns["document_name"] == "Returns"
    assert returns["position"]["title"] == "Returns policy"
    assert "nine in the morning" in top("when does the shop open on weekdays?")["text"]

    # The draft is gone; asking for it says where it went.
    again = owner.get(f"{API}/kb-drafts/{draft['id']}")
    assert again.status_code == 409 and again.get_json()["errors"]["knowledge_base_id"] == [kb["id"]]
    assert not (Path(app.instance_path) / "drafts" / owner.workspace_id / draft["id"]).exists()
    log = owner.get(f"{API}/credentials/{credential_id}/audit-log").get_json()
    assert [entry["action"] for entry in log][:1] == ["use"] and log[0]["detail"]["purpose"] == "ingest"


def test_reindexing_an_unchanged_source_adds_no_chunks_and_a_changed_one_swaps_them(
        owner, httpserver, private_sources, database):
    start = serve_site(httpserver)
    draft = new_draft(owner)
    owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl", json={"url": start, "allow_private": True})
    kb = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize").get_json()["knowledge_base"]
    [document] = owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json()
    chunks = owner.get(f"{API}/documents/{document['id']}/chunks").get_json()
    ingest_document(document["id"])  # an ordinary re-run: the site has not changed
    assert owner.get(f"{API}/documents/{document['id']}/chunks").get_json() == chunks
    httpserver.clear()  # the site changes: one page, new text
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/sitemap.xml").respond_with_data("", status=404)
    httpserver.expect_request("/").respond_with_data(html_page("Acme widgets", [
        "Acme now also sells garden gnomes, painted by hand in the same Leeds workshop as the widgets."]),
        content_type="text/html; charset=utf-8")
    assert owner.post(f"{API}/documents/{document['id']}/reindex").status_code == 202
    texts = " ".join(c["text"] for c in owner.get(f"{API}/documents/{document['id']}/chunks").get_json())
    assert "garden gnomes" in texts and "three working days" not in texts


def test_a_source_that_cannot_be_read_fails_with_the_reason(owner, httpserver, private_sources):
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/").respond_with_data("gone", status=404)
    draft = new_draft(owner)
    owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl",
               json={"url": httpserver.url_for("/"), "allow_private": True})
    kb = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize").get_json()["knowledge_base"]
    [document] = owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json()
    assert document["status"] == "failed" and "404" in document["error"]


def test_a_deleted_credential_fails_the_source_with_the_reason(owner, httpserver, private_sources):
    notion_api = serve_notion(httpserver)
    credential_id = notion_credential(owner)
    draft = new_draft(owner)
    owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion", json={
        "page_ids": [NOTION_PAGE], "credential_id": credential_id, "api_base": notion_api, "allow_private": True})
    assert owner.delete(f"{API}/credentials/{credential_id}").status_code == 204
    kb = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize").get_json()["knowledge_base"]
    [document] = owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json()
    assert document["status"] == "failed" and "credential" in document["error"]


def test_finalize_refuses_a_taken_name_and_keeps_the_draft(owner):
    owner.post(f"{API}/knowledge-bases", json={"name": "Shop"})
    draft = new_draft(owner)
    add_files(owner, draft["id"], ("hours.md", HOURS))
    refused = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
    assert refused.status_code == 409 and "rename the draft" in refused.get_json()["message"]
    assert len(owner.get(f"{API}/kb-drafts/{draft['id']}").get_json()["sources"]) == 1
    owner.patch(f"{API}/kb-drafts/{draft['id']}", json={"name": "Shop 2"})
    done = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
    assert done.status_code == 201 and [d["name"] for d in done.get_json()["documents"]] == ["hours.md"]
    [document] = owner.get(f"{API}/knowledge-bases/{done.get_json()['knowledge_base']['id']}/documents").get_json()
    assert document["status"] == "indexed"


def test_an_empty_draft_finalizes_into_an_empty_knowledge_base(owner):
    draft = new_draft(owner)
    done = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
    assert done.status_code == 201 and done.get_json()["documents"] == []


def test_a_deleted_or_expired_draft_is_gone_with_its_files(app, owner):
    draft = new_draft(owner)
    add_files(owner, draft["id"], ("hours.md", HOURS))
    folder = Path(app.instance_path) / "drafts" / owner.workspace_id / draft["id"]
    assert owner.delete(f"{API}/kb-drafts/{draft['id']}").status_code == 204
    assert not folder.exists() and owner.get(f"{API}/kb-drafts/{draft['id']}").status_code == 404

    expired = new_draft(owner)
    add_files(owner, expired["id"], ("hours.md", HOURS))
    folder = Path(app.instance_path) / "drafts" / owner.workspace_id / expired["id"]
    get_redis().delete(f"privex:kb-draft:{expired['id']}")  # what the TTL does after a day
    response = owner.get(f"{API}/kb-drafts/{expired['id']}")
    assert response.status_code == 404 and "expired" in response.get_json()["message"]
    old = time.time() - 25 * 3600
    os.utime(folder, (old, old))
    with app.test_request_context():
        assert drafts_service.sweep_abandoned_files() >= 1
    assert not folder.exists()


def test_a_viewer_can_look_at_a_draft_but_not_change_it(client, owner):
    draft = new_draft(owner)
    viewer = add_member(owner, sign_up(client, "val"), org_role="member", workspace_role="viewer")
    assert viewer.get(f"{API}/kb-drafts/{draft['id']}").status_code == 200
    assert viewer.post(f"{API}/kb-drafts", json={"name": "x"}).status_code == 403
    assert viewer.post(f"{API}/kb-drafts/{draft['id']}/finalize").status_code == 403
    assert viewer.post(f"{API}/kb-drafts/{draft['id']}/preview", json={}).status_code == 403


def test_malformed_json_is_a_clear_400(owner):
    draft = new_draft(owner)
    response = owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl", data="{not json",
                          content_type="application/json")
    assert response.status_code == 400 and response.get_json()["code"] == 400
    assert json.loads(response.data)["message"]


class WikiConnector:
    """A third-party connector: one document per page named in its settings."""

    name = "company_wiki_connector_v2"  # longer than the first-party names
    config_schema = {"type": "object", "title": "Company wiki", "required": ["pages"],
                     "properties": {"pages": {"type": "object"}}}

    def fetch(self, config, credential=None):
        from llama_index.core.schema import Document as LlamaDocument

        from privex.contracts import SourceError

        pages = config.get("pages")
        if not isinstance(pages, dict) or not pages:
            raise SourceError("pages must name at least one wiki page")
        return (LlamaDocument(text=text, metadata={"title": title, "source_url": f"https://wiki.example/{title}"})
                for title, text in pages.items())


def test_any_installed_connector_can_feed_a_knowledge_base(client, owner, register_plugin):
    from privex import hookimpl

    class Plugin:
        @hookimpl
        def privex_source_connectors(self):
            return [WikiConnector()]

    register_plugin(Plugin(), name="wiki")
    listed = client.get(f"{API}/plugins/source-connectors").get_json()
    assert {c["name"] for c in listed} >= {"web", "notion", "google_docs", WikiConnector.name}
    assert next(c for c in listed if c["name"] == "web")["config_schema"]["required"] == ["url"]
    draft = new_draft(owner)
    url = f"{API}/kb-drafts/{draft['id']}/documents/sources"
    refused = owner.post(url, json={"connector": WikiConnector.name, "config": {"pages": {}}})
    assert refused.status_code == 422 and refused.get_json()["message"] == "pages must name at least one wiki page"
    unknown = owner.post(url, json={"connector": "confluence", "config": {}})
    assert unknown.status_code == 422 and "confluence" in unknown.get_json()["message"]
    assert owner.post(url, json={"connector": "upload", "config": {}}).status_code == 422
    added = owner.post(url, json={"connector": WikiConnector.name, "name": "Wiki", "config": {"pages": {
        "Parking": "Staff park behind the warehouse; visitors use the front car park."}}})
    assert added.status_code == 201, added.get_json()
    kb = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize").get_json()["knowledge_base"]
    [document] = owner.get(f"{API}/knowledge-bases/{kb['id']}/documents").get_json()
    assert document["source_type"] == WikiConnector.name and document["status"] == "indexed", document
    hit = owner.post(f"{API}/knowledge-bases/{kb['id']}/query", json={"query": "where do visitors park?"}).get_json()
    assert hit["hits"][0]["position"]["source_url"] == "https://wiki.example/Parking"
