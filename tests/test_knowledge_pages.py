"""The knowledge area's pages through the test client (CSRF off; the browser tests run with it on): creating a
knowledge base through a draft with every kind of source and a chunk preview, the documents' live status and
progress, uploads from the drop zone (JSON) and the plain form, reindexing and deleting, settings, test retrieval,
a document's passages, refusals beside their fields, viewers read-only, and an isolation walk over every route of
the area. Ingestion runs eagerly here (the browser journey uses a real worker)."""

from __future__ import annotations

import io
import re
import uuid

import pytest

from privex.extensions import db
from privex.models import Document, KnowledgeBase, Organization
from privex.services import credentials, evaluation_runs, invitations, knowledge
from privex.services.evaluation import Question
from tests.test_drafts_api import HOURS, NOTION_PAGE, NOTION_TOKEN, serve_notion, serve_site
from tests.test_web_shell import error_of, html, own_workspace, person, sign_in

RETURNS = b"""# Returns

## Unused items
Unused widgets can be returned within sixty days for a full refund.

## Damaged items
A damaged widget is replaced free of charge; send a photograph of the damage first.
"""


def said(response) -> str:
    """The page with its white space collapsed, as a reader sees its sentences."""
    return " ".join(html(response).split())


def files(*named) -> dict:
    return {"files": [(io.BytesIO(content), name) for name, content in named]}


def new_draft(client, name="Shop", **fields) -> str:
    response = client.post("/knowledge/new", data={"details-name": name, **fields})
    assert response.status_code == 302, html(response)
    match = re.fullmatch(r"/knowledge/drafts/([0-9a-f-]{36})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def signed_in_owner(client, email="olga@example.com"):
    user = person(email)
    sign_in(client, email)
    return user, own_workspace(user)


def made_knowledge_base(workspace, user, name="Handbook", *documents) -> KnowledgeBase:
    """A knowledge base with uploaded documents, indexed (Celery is eager in these tests)."""
    knowledge_base = knowledge.create(workspace, user.id, {"name": name})
    if documents:
        knowledge.add_uploads(knowledge_base, [upload(name, content) for name, content in documents])
    return knowledge_base


def upload(name: str, content: bytes):
    from werkzeug.datastructures import FileStorage

    return FileStorage(io.BytesIO(content), filename=name, content_type="text/markdown")


# -- the list ------------------------------------------------------------------------------------------------------

def test_the_list_starts_empty_and_says_to_create_the_first_one(client):
    signed_in_owner(client)
    page = html(client.get("/knowledge"))
    assert "No knowledge bases yet" in page and "Create your first knowledge base" in page
    assert 'href="/knowledge/new"' in page
    assert "Coming soon" not in page


def test_the_list_shows_each_knowledge_base_with_its_documents_by_status(client):
    user, workspace = signed_in_owner(client)
    handbook = made_knowledge_base(workspace, user, "Handbook", ("hours.md", HOURS), ("returns.md", RETURNS))
    db.session.add(Document(workspace_id=workspace.id, knowledge_base_id=handbook.id, name="broken.pdf",
                            status="failed", error="no text could be extracted from the file"))
    for number in range(22):
        knowledge.create(workspace, user.id, {"name": f"Zz {number:02d}", "description": "Spare shelf"})
    db.session.commit()
    page = html(client.get("/knowledge"))
    assert "Handbook" in page and "3 documents: 2 indexed, 1 failed" in page and "1 failed</span>" in page
    assert "Page 1 of 2" in page and "Zz 18" in page and "Zz 19" not in page  # 20 a page, by name
    second = html(client.get("/knowledge?page=2"))
    assert "Zz 21" in second and "Handbook" not in second
    assert "0 documents" in second


# -- creating one through a draft ----------------------------------------------------------------------------------

def test_creating_explains_the_defaults_and_refuses_a_missing_name_beside_it(client):
    signed_in_owner(client)
    page = said(client.get("/knowledge/new"))
    assert "Step 1 of 2" in page
    for sentence in ("passages of whole sentences, about 512 tokens", "all-MiniLM-L6-v2, a small model that runs on "
                 "this server: your documents never leave it", "this server’s database (pgvector)",
                 "Advanced: how documents are split"):
        assert sentence in page
    assert 'name="details-chunker-chunk_size"' in page  # the default chunker's own settings
    refused = client.post("/knowledge/new", data={"details-name": "  "})
    assert refused.status_code == 422
    assert error_of(html(refused), "details-name") == "Give a name of 1 to 120 characters."


def test_a_chunker_setting_it_refuses_is_said_beside_its_settings(client):
    signed_in_owner(client)
    settings = html(client.get("/knowledge/chunker-settings?prefix=details&details-chunking_strategy=token"))
    assert 'id="details-chunker-group"' in settings and "Fixed-size windows of tokens" in settings
    assert 'name="details-chunker-chunk_overlap"' in settings and "Leave it blank for 32." in settings
    semantic = html(client.get("/knowledge/chunker-settings?prefix=details&details-chunking_strategy=semantic"))
    assert "embed_model" not in semantic and 'name="details-chunker-buffer_size"' in semantic
    refused = client.post("/knowledge/new", data={"details-name": "Shop", "details-chunking_strategy": "token",
                                                  "details-chunker-chunk_size": "100",
                                                  "details-chunker-chunk_overlap": "200"})
    assert refused.status_code == 422
    page = html(refused)
    group = re.search(r'<div class="error" id="details-chunker-group-error">(.*?)</div>', page, re.S)
    assert group and "chunk_overlap (200) must be smaller than chunk_size (100)" in group.group(1)
    assert 'aria-describedby="details-chunker-group-summary details-chunker-group-error"' in page
    assert "<details class=\"kb-fold kb-advanced\" open>" in page  # the advanced section opens on its error
    not_a_number = client.post("/knowledge/new", data={"details-name": "Shop", "details-chunking_strategy": "token",
                                                       "details-chunker-chunk_size": "big"})
    assert not_a_number.status_code == 422
    assert "Not a valid integer value." in error_of(html(not_a_number), "details-chunker-chunk_size")
    draft_id = new_draft(client, "Shop", **{"details-chunking_strategy": "token", "details-chunker-chunk_size": "64"})
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert 'value="64"' in page and '<option selected value="token">' in page


def test_files_go_into_the_draft_are_previewed_and_become_indexed_documents(client, app):
    signed_in_owner(client)
    draft_id = new_draft(client, "Shop", **{"details-description": "What the shop says"})
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert "Step 2 of 2" in page and "Add documents to “Shop”" in page and "Documents to index (0)" in page
    assert f'action="/knowledge/drafts/{draft_id}/files"' in page

    # The drop zone's script: one file a request, answered in JSON; a file no parser reads says why.
    added = client.post(f"/knowledge/drafts/{draft_id}/files", data=files(("hours.md", HOURS)),
                        headers={"Accept": "application/json"})
    assert added.status_code == 201 and added.get_json()["sources"][0]["name"] == "hours.md"
    unreadable = client.post(f"/knowledge/drafts/{draft_id}/files", data=files(("tool.exe", b"MZ")),
                             headers={"Accept": "application/json"})
    assert unreadable.status_code == 415
    assert "files of type .exe cannot be read (readable:" in unreadable.get_json()["message"]
    # Without script: the form sends them at once, and a refusal is said beside the file input.
    plain = client.post(f"/knowledge/drafts/{draft_id}/files", data=files(("returns.md", RETURNS)))
    assert plain.status_code == 302 and plain.headers["Location"].endswith("#sources")
    nothing = client.post(f"/knowledge/drafts/{draft_id}/files", data={})
    assert nothing.status_code == 422 and error_of(html(nothing), "files") == "Choose a file to upload."
    # htmx redraws the sources alone after the uploads.
    sources = html(client.get(f"/knowledge/drafts/{draft_id}", headers={"HX-Request": "true"}))
    assert sources.startswith('<section class="card" id="sources"') and "Documents to index (2)" in sources
    assert "hours.md" in sources and "returns.md" in sources and "<html" not in sources

    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    source_id = re.search(r'name="preview-source_id"[^>]*>\s*<option value="([0-9a-f-]{36})"', page, re.S).group(1)
    preview = client.get(f"/knowledge/drafts/{draft_id}/preview?preview-source_id={source_id}"
                         f"&preview-chunking_strategy=token")
    assert preview.status_code == 200
    shown = said(preview)
    assert "<strong>hours.md</strong> makes 2 passages split by “Fixed-size pieces”." in shown
    assert "Passage 2 · 111 characters · “Opening hours &gt; Weekends”" in shown
    assert "The shop opens at nine in the morning" in shown
    assert db.session.query(KnowledgeBase).count() == 0  # a preview saves nothing

    finalized = client.post(f"/knowledge/drafts/{draft_id}/finalize")
    assert finalized.status_code == 302
    knowledge_base = db.session.query(KnowledgeBase).filter_by(name="Shop").one()
    assert finalized.headers["Location"] == f"/knowledge/{knowledge_base.id}"
    assert knowledge_base.description == "What the shop says"
    shown = said(client.get(finalized.headers["Location"]))
    assert "Created “Shop”. Its 2 documents are being indexed" in shown
    assert shown.count('<span class="badge kb-status-indexed">Indexed</span>') == 2  # eager: already indexed
    assert "2 documents: 2 indexed; 4 passages indexed." in shown
    assert 'hx-get="/knowledge/' not in shown.split('id="documents-progress"')[1][:80]  # nothing left to poll
    # The finished draft's address now leads to its knowledge base.
    assert client.get(f"/knowledge/drafts/{draft_id}").headers["Location"] == f"/knowledge/{knowledge_base.id}"


def test_an_unfinished_draft_is_listed_and_can_be_discarded(client):
    signed_in_owner(client)
    draft_id = new_draft(client, "Later")
    client.post(f"/knowledge/drafts/{draft_id}/files", data=files(("hours.md", HOURS)))
    listed = html(client.get("/knowledge"))
    assert "Not created yet" in listed and f'href="/knowledge/drafts/{draft_id}">Later</a>' in listed
    assert "1 document gathered" in listed
    source_id = re.search(r"/sources/([0-9a-f-]{36})/remove", html(client.get(f"/knowledge/drafts/{draft_id}")))[1]
    assert client.post(f"/knowledge/drafts/{draft_id}/sources/{source_id}/remove").status_code == 302
    assert "Documents to index (0)" in html(client.get(f"/knowledge/drafts/{draft_id}"))
    renamed = client.post(f"/knowledge/drafts/{draft_id}/details", data={"details-name": "Much later"})
    assert renamed.status_code == 302
    assert "Add documents to “Much later”" in html(client.get(f"/knowledge/drafts/{draft_id}"))
    gone = client.post(f"/knowledge/drafts/{draft_id}/discard")
    assert gone.headers["Location"] == "/knowledge"
    page = html(client.get("/knowledge"))
    assert "Discarded the draft “Much later” and its files." in page and "Not created yet" not in page
    assert client.get(f"/knowledge/drafts/{draft_id}").status_code == 404


def test_a_taken_name_refuses_to_finalize_beside_the_name(client):
    user, workspace = signed_in_owner(client)
    made_knowledge_base(workspace, user, "Shop")
    draft_id = new_draft(client, "Shop")
    refused = client.post(f"/knowledge/drafts/{draft_id}/finalize")
    assert refused.status_code == 409
    page = html(refused)
    assert error_of(page, "details-name") == "Already used by another knowledge base of this workspace."
    assert '<details class="kb-fold card" id="details" open>' in page


def test_a_web_site_is_added_with_its_refusals_beside_their_fields(client, app, httpserver, monkeypatch):
    signed_in_owner(client)
    start = serve_site(httpserver)
    draft_id = new_draft(client)
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert 'name="web-allow_private"' not in page  # the operator does not allow private sources
    refused = client.post(f"/knowledge/drafts/{draft_id}/web", data={"web-url": start, "web-use_sitemap": "y"})
    assert refused.status_code == 422
    assert "Refusing to crawl localhost: it resolves to a private or loopback address" in error_of(
        html(refused), "web-url")
    assert '<details class="kb-fold card kb-source-form" id="web" open>' in html(refused)
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_SOURCES", True)
    too_few = client.post(f"/knowledge/drafts/{draft_id}/web", data={"web-url": start, "web-max_pages": "0",
                                                                     "web-allow_private": "y"})
    assert too_few.status_code == 422
    assert error_of(html(too_few), "web-max_pages") == "Max_pages must be a whole number of at least 1."
    bad_pattern = client.post(f"/knowledge/drafts/{draft_id}/web", data={
        "web-url": start, "web-allow_private": "y", "web-include_patterns": "^/docs/\n(unclosed"})
    assert "is not a valid regular expression" in error_of(html(bad_pattern), "web-include_patterns")
    added = client.post(f"/knowledge/drafts/{draft_id}/web", data={
        "web-url": start, "web-allow_private": "y", "web-max_depth": "1", "web-name": "Acme site"})
    assert added.status_code == 302
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert "Acme site" in page and start in page and "Web site</span>" in page
    assert httpserver.log == []  # nothing is read before the knowledge base is created


def test_notion_and_google_docs_are_read_with_a_stored_credential(client, app, httpserver, monkeypatch):
    user, workspace = signed_in_owner(client)
    draft_id = new_draft(client)
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert page.count("Add one in Team → Credentials</a>") == 2 and 'href="/team"' in page
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_SOURCES", True)
    notion_api = serve_notion(httpserver)
    credential = credentials.create(workspace, user.id, {"name": "Our Notion", "provider": "notion"},
                                    {"token": NOTION_TOKEN})
    db.session.commit()
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert f'<option value="{credential.id}">Our Notion (notion)</option>' in page
    no_credential = client.post(f"/knowledge/drafts/{draft_id}/notion", data={"notion-credential_id": "",
                                                                              "notion-page_ids": NOTION_PAGE})
    assert no_credential.status_code == 422
    assert "Notion credential (integration token) is required" in error_of(html(no_credential),
                                                                          "notion-credential_id")
    no_pages = client.post(f"/knowledge/drafts/{draft_id}/notion", data={"notion-credential_id": str(credential.id)})
    assert "Give at least one Notion page" in error_of(html(no_pages), "notion-page_ids")
    foreign = client.post(f"/knowledge/drafts/{draft_id}/notion", data={"notion-credential_id": str(uuid.uuid4()),
                                                                        "notion-page_ids": NOTION_PAGE})
    assert foreign.status_code == 422 and "Not a valid choice" in error_of(html(foreign), "notion-credential_id")
    wrong_kind = client.post(f"/knowledge/drafts/{draft_id}/google-docs", data={
        "google-credential_id": str(credential.id), "google-document_ids": "1AbCdEfGhIjKlMnOp"})
    assert "Google credential (OAuth access token) is required" in error_of(html(wrong_kind),
                                                                           "google-credential_id")
    added = client.post(f"/knowledge/drafts/{draft_id}/notion", data={
        "notion-credential_id": str(credential.id), "notion-page_ids": f"https://www.notion.so/Returns-{NOTION_PAGE}",
        "notion-name": "Returns", "notion-api_base": notion_api, "notion-allow_private": "y"})
    assert added.status_code == 302, html(added)
    page = html(client.get(f"/knowledge/drafts/{draft_id}"))
    assert "Returns" in page and "Notion</span>" in page
    source_id = re.search(r"/sources/([0-9a-f-]{36})/remove", page)[1]
    preview = html(client.get(f"/knowledge/drafts/{draft_id}/preview?preview-source_id={source_id}"
                              f"&preview-chunking_strategy=sentence"))
    assert "Unused widgets can be returned within sixty days" in preview
    assert "Only the first 1 page of the source was read for this preview." in preview


# -- a knowledge base's documents ----------------------------------------------------------------------------------

def test_documents_show_their_status_progress_and_why_they_failed_and_poll_only_while_busy(client):
    user, workspace = signed_in_owner(client)
    knowledge_base = made_knowledge_base(workspace, user)
    busy = Document(workspace_id=workspace.id, knowledge_base_id=knowledge_base.id, name="big.pdf",
                    status="processing", chunks_done=3, chunks_total=10)
    waiting = Document(workspace_id=workspace.id, knowledge_base_id=knowledge_base.id, name="next.md",
                       status="pending")
    failed = Document(workspace_id=workspace.id, knowledge_base_id=knowledge_base.id, name="scan.pdf",
                      status="failed", error="no text could be extracted from the file")
    db.session.add_all([busy, waiting, failed])
    db.session.commit()
    page = html(client.get(f"/knowledge/{knowledge_base.id}"))
    assert '<progress max="10" value="3" aria-label="Indexing big.pdf">3 of 10</progress>' in page
    assert "3 of 10 passages" in page and "Waiting its turn" in page
    assert '<p class="error">No text could be extracted from the file. Reindex it to try again.</p>' in page
    assert "3 documents: 1 processing, 1 pending, 1 failed" in page
    poll = re.search(r'id="documents-progress" class="kb-poller" hx-get="([^"]+)" hx-trigger="every 1500ms', page)
    assert poll, page
    url = poll.group(1).replace("&amp;", "&")
    assert str(busy.id) in url and str(waiting.id) in url and str(failed.id) not in url and "summary=1" in url

    busy.status, busy.chunks_done, waiting.status, waiting.chunks_total = "indexed", 10, "processing", 4
    db.session.commit()
    progressed = html(client.get(url, headers={"HX-Request": "true"}))
    assert f'id="doc-{busy.id}-status" hx-swap-oob="true"' in progressed and "10 passages" in progressed
    assert f'id="doc-{waiting.id}-status" hx-swap-oob="true"' in progressed and "0 of 4 passages" in progressed
    assert '<span id="kb-summary" hx-swap-oob="innerHTML">3 documents: 1 indexed, 1 processing, 1 failed' in progressed
    still = re.search(r'id="documents-progress" class="kb-poller" hx-get="([^"]+)"', progressed).group(1)
    assert str(waiting.id) in still and str(busy.id) not in still
    waiting.status = "indexed"
    db.session.commit()
    done = html(client.get(still.replace("&amp;", "&"), headers={"HX-Request": "true"}))
    assert '<div id="documents-progress" class="kb-poller"></div>' in done  # the polling stops
    other = made_knowledge_base(workspace, user, "Other")
    assert f"doc-{busy.id}" not in html(client.get(f"/knowledge/{other.id}/progress?ids={busy.id},nonsense"))


def test_uploads_add_documents_and_reindex_and_delete_are_confirmed(client):
    user, workspace = signed_in_owner(client)
    knowledge_base = made_knowledge_base(workspace, user, "Handbook", ("hours.md", HOURS))
    page = html(client.get(f"/knowledge/{knowledge_base.id}"))
    assert f'action="/knowledge/{knowledge_base.id}/files"' in page and "Drop files here, or choose them" in page
    assert ".md" in page and "up to 50 MB each" in page
    assert "Reindex all 1 document of “Handbook”?" in page  # behind a <dialog> of the confirm macro
    hours = db.session.query(Document).filter_by(name="hours.md").one()
    document_page = html(client.get(f"/knowledge/{knowledge_base.id}/documents/{hours.id}"))
    assert "Reindex “hours.md”?" in document_page and "Delete “hours.md”?" in document_page

    added = client.post(f"/knowledge/{knowledge_base.id}/files", data=files(("returns.md", RETURNS)),
                        headers={"Accept": "application/json"})
    assert added.status_code == 201 and added.get_json()["documents"][0]["name"] == "returns.md"
    refreshed = html(client.get(f"/knowledge/{knowledge_base.id}", headers={"HX-Request": "true"}))
    assert refreshed.startswith('<section id="documents"') and "returns.md" in refreshed
    empty = client.post(f"/knowledge/{knowledge_base.id}/files", data=files(("empty.md", b"")))
    assert empty.status_code == 422 and error_of(html(empty), "files") == "Empty.md is empty."
    plain = client.post(f"/knowledge/{knowledge_base.id}/files", data=files(("a.md", HOURS), ("b.md", RETURNS)))
    assert plain.status_code == 302
    assert "Added 2 documents: they are being indexed." in html(client.get(plain.headers["Location"]))

    document = db.session.query(Document).filter_by(name="returns.md").one()
    reindexed = client.post(f"/knowledge/{knowledge_base.id}/documents/{document.id}/reindex?back=document")
    assert reindexed.headers["Location"] == f"/knowledge/{knowledge_base.id}/documents/{document.id}"
    assert "Reindexing “returns.md”" in html(client.get(reindexed.headers["Location"]))
    everything = client.post(f"/knowledge/{knowledge_base.id}/reindex")
    assert "Reindexing 4 documents" in html(client.get(everything.headers["Location"]))
    deleted = client.post(f"/knowledge/{knowledge_base.id}/documents/{document.id}/delete")
    assert "Deleted “returns.md” and its passages." in html(client.get(deleted.headers["Location"]))
    assert db.session.get(Document, document.id) is None
    gone = client.post(f"/knowledge/{knowledge_base.id}/delete")
    assert gone.headers["Location"] == "/knowledge"
    assert "Deleted the knowledge base “Handbook” with its documents." in html(client.get("/knowledge"))
    assert client.get(f"/knowledge/{knowledge_base.id}").status_code == 404


def test_settings_rename_and_say_a_new_chunker_applies_on_reindex(client):
    user, workspace = signed_in_owner(client)
    made_knowledge_base(workspace, user, "Taken")
    knowledge_base = made_knowledge_base(workspace, user, "Handbook")
    page = html(client.get(f"/knowledge/{knowledge_base.id}/settings"))
    assert "A new way of splitting applies to each document when it is reindexed" in page
    assert "all-MiniLM-L6-v2 (384 numbers per passage)" in page and 'value="Handbook"' in page
    taken = client.post(f"/knowledge/{knowledge_base.id}/settings", data={"details-name": "Taken",
                                                                           "details-chunking_strategy": "sentence"})
    assert taken.status_code == 409
    assert error_of(html(taken), "details-name") == "Already used by another knowledge base of this workspace."
    renamed = client.post(f"/knowledge/{knowledge_base.id}/settings", data={
        "details-name": "Staff handbook", "details-description": "For staff",
        "details-chunking_strategy": "sentence"})
    assert html(client.get(renamed.headers["Location"])).count("Saved.") == 1
    rechunked = client.post(f"/knowledge/{knowledge_base.id}/settings", data={
        "details-name": "Staff handbook", "details-chunking_strategy": "token", "details-chunker-chunk_size": "128"})
    assert "The new way of splitting applies to documents as they are reindexed" in html(
        client.get(rechunked.headers["Location"]))
    db.session.refresh(knowledge_base)
    assert (knowledge_base.name, knowledge_base.chunking_strategy, knowledge_base.chunking_config) == (
        "Staff handbook", "token", {"chunk_size": 128})


def test_test_retrieval_shows_cited_hits_and_refuses_beside_the_field(client):
    user, workspace = signed_in_owner(client)
    knowledge_base = made_knowledge_base(workspace, user, "Handbook", ("hours.md", HOURS), ("returns.md", RETURNS))
    first = html(client.get(f"/knowledge/{knowledge_base.id}/search"))
    assert '<option selected value="hybrid">Meaning and words</option>' in first
    for mode in ("hybrid", "vector", "keyword"):
        response = client.get(f"/knowledge/{knowledge_base.id}/search",
                              query_string={"q": "when does the shop close on saturday?", "mode": mode, "top_k": 2})
        assert response.status_code == 200
        page = html(response)
        hits = re.findall(r'<li class="kb-hit">(.*?)</li>', page, re.S)
        assert 1 <= len(hits) <= 2, (mode, page)
        document = db.session.query(Document).filter_by(name="hours.md").one()
        assert f'href="/knowledge/{knowledge_base.id}/documents/{document.id}">hours.md</a>' in hits[0], mode
        assert "“Opening hours &gt; Weekends”" in hits[0] and "passage" in hits[0] and re.search(r"score \d\.\d{3}", hits[0])
        assert "closes at one in the afternoon" in hits[0]
    empty = client.get(f"/knowledge/{knowledge_base.id}/search?q=&mode=hybrid")
    assert empty.status_code == 422 and error_of(html(empty), "q") == "Type a question."
    too_many = client.get(f"/knowledge/{knowledge_base.id}/search?q=hours&top_k=99")
    assert error_of(html(too_many), "top_k") == "A whole number from 1 to 50."
    odd_mode = client.get(f"/knowledge/{knowledge_base.id}/search?q=hours&mode=psychic")
    assert "One of vector, keyword, hybrid." == error_of(html(odd_mode), "mode")
    nul = client.get(f"/knowledge/{knowledge_base.id}/search?q=a%00b")
    assert nul.status_code == 422 and "NUL" in error_of(html(nul), "q")


def test_a_document_page_shows_its_passages_and_renames_it(client):
    user, workspace = signed_in_owner(client)
    knowledge_base = made_knowledge_base(workspace, user, "Handbook", ("hours.md", HOURS))
    document = db.session.query(Document).filter_by(name="hours.md").one()
    url = f"/knowledge/{knowledge_base.id}/documents/{document.id}"
    page = html(client.get(url))
    assert "Its passages (2)" in page and "The shop opens at nine in the morning" in page
    assert "“Opening hours &gt; Weekends”" in page and '<span class="badge kb-status-indexed">Indexed</span>' in page
    refused = client.post(f"{url}/rename", data={"name": ""})
    assert refused.status_code == 422 and error_of(html(refused), "name") == "Give a name of 1 to 512 characters."
    assert client.post(f"{url}/rename", data={"name": "Opening hours"}).status_code == 302
    assert "<h1>Opening hours</h1>" in html(client.get(url))
    other = made_knowledge_base(workspace, user, "Other")
    assert client.get(f"/knowledge/{other.id}/documents/{document.id}").status_code == 404  # not its document


# -- who may do what -----------------------------------------------------------------------------------------------

@pytest.fixture()
def tenants(app, client):
    """Olga's workspace with one of everything the area's URLs name, Vic as a viewer of it, and Sam outside."""
    olga = person("olga@example.com")
    workspace = own_workspace(olga)
    knowledge_base = made_knowledge_base(workspace, olga, "Handbook", ("hours.md", HOURS))
    document = db.session.query(Document).filter_by(knowledge_base_id=knowledge_base.id).one()
    owner = app.test_client()
    sign_in(owner, "olga@example.com")
    draft_id = new_draft(owner, "Draft")
    owner.post(f"/knowledge/drafts/{draft_id}/files", data=files(("returns.md", RETURNS)))
    source_id = re.search(r"/sources/([0-9a-f-]{36})/remove", html(owner.get(f"/knowledge/drafts/{draft_id}")))[1]

    person("vic@example.com")
    viewer = app.test_client()
    sign_in(viewer, "vic@example.com")  # before the invitation: their own workspace is their default
    organization = db.session.get(Organization, workspace.organization_id)
    invitations.invite_or_add(organization, olga, "owner", "vic@example.com", "member", workspace_id=workspace.id,
                              workspace_role="viewer")
    db.session.commit()
    viewer.post("/context", data={"context": f"{organization.id}/{workspace.id}"})
    outsider = app.test_client()
    person("sam@example.com")
    sign_in(outsider, "sam@example.com")
    run = evaluation_runs.start(knowledge_base, olga.id, [Question("When?", document_names=frozenset({"hours.md"}))],
                                "q.jsonl", evaluation_runs.settings_of(["keyword"]))
    ids = {"kb_id": knowledge_base.id, "doc_id": document.id, "draft_id": draft_id, "source_id": source_id,
           "run_id": run.id}
    return owner, viewer, outsider, ids


def area_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("web.knowledge."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def path_of(rule, ids) -> str:
    path = rule.rule
    for name in rule.arguments:
        assert name in ids, f"{rule.rule}: add a value for {name!r} to the tenants fixture"
        path = path.replace(f"<uuid:{name}>", str(ids[name]))
    return path


def test_viewers_see_everything_read_only(tenants):
    _owner, viewer, _outsider, ids = tenants
    listing = html(viewer.get("/knowledge"))
    assert "Handbook" in listing and "New knowledge base" not in listing and "Not created yet" not in listing
    page = html(viewer.get(f"/knowledge/{ids['kb_id']}"))
    assert "hours.md" in page and "Indexed" in page
    assert "Drop files here" not in page and "Reindex" not in page and "Delete" not in page
    assert "Its passages (2)" in html(viewer.get(f"/knowledge/{ids['kb_id']}/documents/{ids['doc_id']}"))
    settings = html(viewer.get(f"/knowledge/{ids['kb_id']}/settings"))
    assert "<dt>Split by</dt><dd>Whole sentences (recommended)</dd>" in settings and "<form method=\"post\"" not in \
        settings.split('<main')[1]
    found = html(viewer.get(f"/knowledge/{ids['kb_id']}/search?q=opening+hours"))
    assert '<li class="kb-hit">' in found  # searching changes nothing: viewers may test too
    draft = html(viewer.get(f"/knowledge/drafts/{ids['draft_id']}"))
    assert "returns.md" in draft and "Drop files here" not in draft and "Create the knowledge base" not in draft
    assert viewer.get("/knowledge/new").status_code == 403
    # A preview reads the source, with the workspace's credential for Notion or Google: for editors, as on the API.
    assert viewer.get(f"/knowledge/drafts/{ids['draft_id']}/preview").status_code == 403


def test_every_route_of_the_area_keeps_tenants_apart(app, tenants):
    """Another tenant's ids are the 404 page on every route that names one; a viewer's every write is the 403 page;
    nobody signed out gets past the sign-in page."""
    owner, viewer, outsider, ids = tenants
    signed_out = app.test_client()
    checked = {"404": [], "403": [], "sign-in": []}
    for rule, method in area_routes(app):
        path = path_of(rule, ids)
        response = signed_out.open(path, method=method)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next="), path
        checked["sign-in"].append(f"{method} {rule.rule}")
        if rule.arguments:
            response = outsider.open(path, method=method, data={})
            assert response.status_code == 404, (method, rule.rule, response.status_code)
            assert "Page not found" in html(response)
            checked["404"].append(f"{method} {rule.rule}")
        if method == "POST":
            response = viewer.open(path, method=method, data={})
            assert response.status_code == 403, (method, rule.rule, response.status_code)
            checked["403"].append(f"{method} {rule.rule}")
    assert len(checked["404"]) >= 20 and len(checked["403"]) >= 15, checked
    # The owner's requests pass, so the refusals above are the walk's, not broken routes.
    assert owner.get(f"/knowledge/{ids['kb_id']}").status_code == 200
    assert owner.get(f"/knowledge/drafts/{ids['draft_id']}").status_code == 200


# -- the services the pages added ----------------------------------------------------------------------------------

def test_document_counts_give_statuses_and_passages_of_every_asked_knowledge_base_in_one_query(app, database):
    from sqlalchemy import event

    user = person("olga@example.com")
    workspace = own_workspace(user)
    first = made_knowledge_base(workspace, user, "First", ("hours.md", HOURS))
    second = made_knowledge_base(workspace, user, "Second")
    db.session.add(Document(workspace_id=workspace.id, knowledge_base_id=first.id, name="x.md", status="failed"))
    db.session.commit()
    first_id, second_id = first.id, second.id
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        counts = knowledge.document_counts([first_id, second_id])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert counts == {
        first_id: {"statuses": {"pending": 0, "processing": 0, "indexed": 1, "failed": 1}, "documents": 2,
                   "passages": 2},
        second_id: {"statuses": {"pending": 0, "processing": 0, "indexed": 0, "failed": 0}, "documents": 0,
                    "passages": 0}}
    assert len(statements) == 1 and knowledge.document_counts([]) == {}


def test_a_test_search_takes_the_knowledge_bases_defaults_and_names_each_bad_field(app, database):
    from privex.services import retrieval
    from privex.services.errors import Invalid

    user = person("olga@example.com")
    knowledge_base = made_knowledge_base(own_workspace(user), user, "Handbook", ("hours.md", HOURS))
    knowledge.update(knowledge_base, {"retrieval_config": {"mode": "keyword", "top_k": 1}})
    result = retrieval.search(knowledge_base, "  closed on Sundays ")
    assert result["mode"] == "keyword" and result["top_k"] == 1 and len(result["hits"]) == 1
    assert result["hits"][0].document_name == "hours.md" and result["took_ms"] >= 0
    assert retrieval.search(knowledge_base, "Sundays", mode="vector", top_k=2)["mode"] == "vector"
    with pytest.raises(Invalid) as refused:
        retrieval.search(knowledge_base, " ", mode="psychic", top_k=0)
    assert refused.value.errors == {"query": ["type a question"], "mode": ["one of vector, keyword, hybrid"],
                                    "top_k": ["a whole number from 1 to 50"]}
    with pytest.raises(Invalid) as long_one:
        retrieval.search(knowledge_base, "x" * 2001)
    assert long_one.value.errors == {"query": ["at most 2000 characters"]}


def test_odd_query_strings_on_any_page_are_never_a_500(app, tenants):
    """The request boundary leaves a page's query string to the page (a search box shows the refusal beside itself):
    every GET page there is, with unstorable values in the parameters pages read, page numbers past any OFFSET the
    database takes and negative ones, answers below 500."""
    owner, _viewer, _outsider, ids = tenants
    odd = ["?q=a%00b&page=%00&next=%00&ids=%00%2Cx&mode=%00&top_k=%00&prefix=%00&summary=%00&back=%00",
           f"?page={10**20}&invitations={10**20}&tests=1", "?page=-3&invitations=0"]
    checked = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not rule.endpoint.startswith("web.") or rule.endpoint == "web.static":
            continue
        if any(name not in ids for name in rule.arguments):
            continue  # another area's ids: its own walk covers its routes
        for query in odd:
            response = owner.get(path_of(rule, ids) + query)
            response.close()  # a file it sends (widget.js) is closed with it
            assert response.status_code < 500, (rule.rule, query, response.status_code)
        checked.append(rule.rule)
    assert len(checked) >= 15, checked
