"""End-to-end through a real Celery worker process: a knowledge base built from an upload, a crawled local site and
a local server speaking Notion's API, every document watched to `indexed`, then queried in each mode with citations.
"""

from __future__ import annotations

import io
import subprocess

import pytest
from flask_migrate import upgrade

from privex.extensions import db
from tests.helpers import sign_up
from tests.test_drafts_api import HOURS, NOTION_PAGE, notion_credential, serve_notion, serve_site
from tests.test_processes import stop, wait_for

pytestmark = pytest.mark.slow
API = "/api/v1"


@pytest.fixture()
def live_app(make_app, scratch_database):
    """An app on its own migrated database, queueing tasks for real workers (not eager)."""
    application = make_app(SQLALCHEMY_DATABASE_URI=scratch_database, CELERY_TASK_ALWAYS_EAGER=False,
                           ALLOW_PRIVATE_SOURCES=True)
    with application.app_context():
        upgrade()  # the app knows its migrations (privex/migrations)
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_knowledge_base_from_a_file_a_site_and_notion_is_indexed_by_a_real_worker(
        live_app, scratch_database, privex_command, subprocess_env, httpserver, tmp_path):
    start = serve_site(httpserver)
    notion_api = serve_notion(httpserver)
    env = {**subprocess_env, "DATABASE_URL": scratch_database, "PRIVEX_ALLOW_PRIVATE_SOURCES": "1",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([*privex_command, "worker", "--concurrency", "1"], env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        client = live_app.test_client()
        owner = sign_up(client, "erin")
        credential_id = notion_credential(owner)
        draft = owner.post(f"{API}/kb-drafts", json={"name": "Shop"}).get_json()
        assert owner.post(f"{API}/kb-drafts/{draft['id']}/documents/upload",
                          data={"file": (io.BytesIO(HOURS), "hours.md")},
                          content_type="multipart/form-data").status_code == 201
        assert owner.post(f"{API}/kb-drafts/{draft['id']}/documents/crawl",
                          json={"url": start, "allow_private": True}).status_code == 201
        assert owner.post(f"{API}/kb-drafts/{draft['id']}/documents/notion", json={
            "name": "Returns", "page_ids": [NOTION_PAGE], "credential_id": credential_id, "api_base": notion_api,
            "allow_private": True}).status_code == 201
        finalized = owner.post(f"{API}/kb-drafts/{draft['id']}/finalize")
        assert finalized.status_code == 201, finalized.get_json()
        kb_id = finalized.get_json()["knowledge_base"]["id"]
        assert {d["status"] for d in finalized.get_json()["documents"]} == {"pending"}

        seen = set()

        def all_indexed():
            documents = owner.get(f"{API}/knowledge-bases/{kb_id}/documents").get_json()
            seen.update(d["status"] for d in documents)
            assert not [d for d in documents if d["status"] == "failed"], documents
            return all(d["status"] == "indexed" and d["progress"] == 1.0 for d in documents) and documents

        documents = wait_for(all_indexed, 180, interval=0.5, what="every document to be indexed")
        assert {d["name"] for d in documents} == {"hours.md", start.split("/")[2], "Returns"}
        assert "pending" in seen or "processing" in seen  # the work happened in the worker, after the request

        for mode in ("hybrid", "vector", "keyword"):
            result = owner.post(f"{API}/knowledge-bases/{kb_id}/query", json={
                "query": "how long does delivery to the islands take?", "mode": mode, "top_k": 3}).get_json()
            top = result["hits"][0]
            assert "three working days" in top["text"], (mode, result)
            assert top["position"]["source_url"] == start + "delivery" and top["position"]["title"] == "Delivery"
        notion_hit = owner.post(f"{API}/knowledge-bases/{kb_id}/query", json={
            "query": "refund for unused widgets", "top_k": 3}).get_json()["hits"][0]
        assert notion_hit["document_name"] == "Returns" and "sixty days" in notion_hit["text"]
    finally:
        stop(worker)
        log.close()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
