"""The knowledge area in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on.

Journey 1 of issue 10: sign up → create a knowledge base → drop two files (one through the file chooser, one by a
real drop event carrying a DataTransfer) → watch both reach "Indexed" on the page → test retrieval shows a cited
hit. Indexing is done by a real Celery worker process, started only once the page shows both documents pending,
so the page's polling watches real progress (the knowledge base's page polls while anything is pending or
processing, and stops after).

Then every page of the area at 360 px and at desktop width: axe-core finds no serious or critical violation,
nothing scrolls sideways, the favicon is there and the console stays clean. Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from flask_migrate import upgrade

from privex.extensions import db
from privex.models import Document, Organization, Workspace
from privex.services import credentials, drafts, invitations, knowledge, registration
from tests.test_builder_browser import DESKTOP, PASSWORD, PHONE, Tab, sign_in
from tests.test_drafts_api import HOURS
from tests.test_knowledge_pages import RETURNS, upload
from tests.test_processes import stop
from tests.test_widget_browser import browser, live, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture()
def live_queued(make_app, scratch_database):
    """The app on its own migrated database, served over HTTP with CSRF on, queueing its tasks for a real worker
    (not eagerly); yields (app, base URL)."""
    application = make_app(SQLALCHEMY_DATABASE_URI=scratch_database, CELERY_TASK_ALWAYS_EAGER=False,
                           WTF_CSRF_ENABLED=True)
    with application.app_context():
        upgrade()
    base, server = serve(application)
    yield application, base
    server.shutdown()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def start_worker(privex_command, subprocess_env, scratch_database, log_path):
    env = {**subprocess_env, "DATABASE_URL": scratch_database, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = log_path.open("w")
    return subprocess.Popen([*privex_command, "worker", "--concurrency", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT), log


def test_journey_sign_up_create_drop_two_files_watch_them_indexed_and_test_retrieval(
        live_queued, browser, privex_command, subprocess_env, scratch_database, tmp_path):  # noqa: F811
    app, base = live_queued
    tab = Tab(browser, viewport=PHONE)
    page = tab.page
    problems = {}
    polls = []
    page.on("request", lambda request: "/progress?" in request.url and polls.append(request.url))

    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Your name").fill("Ada")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("link", name="Add your documents").click()
    expect(page).to_have_url(f"{base}/knowledge")
    expect(page.get_by_text("No knowledge bases yet")).to_be_visible()
    page.get_by_role("link", name="Create your first knowledge base").click()

    expect(page.get_by_text("Step 1 of 2")).to_be_visible()
    expect(page.get_by_text("a small model that runs on this server")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Shop")
    page.get_by_label("Description").fill("What the shop tells its customers")
    page.get_by_role("button", name="Continue: add documents").click()
    expect(page.get_by_role("heading", name="Add documents to “Shop”")).to_be_visible()

    # One file through the file chooser (the drop zone's input), one by a real drop event with a DataTransfer.
    page.get_by_label("Drop files here, or choose them").set_input_files(
        files=[{"name": "hours.md", "mimeType": "text/markdown", "buffer": HOURS}])
    uploads = page.locator("[data-uploads] li")
    expect(uploads.nth(0)).to_contain_text("hours.md")
    expect(uploads.nth(0)).to_contain_text("Uploaded")
    page.locator("[data-dropzone]").evaluate("""(zone, text) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([text], 'returns.md', {type: 'text/markdown'}));
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }
    }""", RETURNS.decode())
    expect(uploads.nth(1)).to_contain_text("returns.md")
    expect(uploads.nth(1)).to_contain_text("Uploaded")
    expect(page.locator("[data-upload-status]")).to_have_text("1 file added.")
    sources = page.locator("#sources")
    expect(sources.get_by_role("heading")).to_have_text("Documents to index (2)")  # redrawn by htmx
    expect(sources).to_contain_text("hours.md")
    expect(sources).to_contain_text("returns.md")

    page.get_by_label("Source", exact=True).select_option(label="returns.md")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("status").filter(has_text="makes 2 passages")).to_be_visible()
    expect(page.locator("#preview .kb-chunks")).to_contain_text("within sixty days for a full refund")
    problems["draft with preview"] = tab.check("knowledge-journey-draft")

    page.get_by_role("button", name="Create the knowledge base").click()
    expect(page.get_by_role("heading", name="Shop", exact=True)).to_be_visible()
    documents = page.locator("#documents .kb-document")
    expect(documents).to_have_count(2)
    expect(page.locator("#documents .badge.kb-status-pending")).to_have_count(2)  # nothing indexes them yet
    expect(page.locator("#documents progress")).to_have_count(2)
    problems["pending"] = tab.check("knowledge-journey-pending")

    worker, log = start_worker(privex_command, subprocess_env, scratch_database, tmp_path / "worker.log")
    try:
        expect(page.locator("#documents .badge.kb-status-indexed")).to_have_count(2, timeout=180_000)
        expect(page.locator("#kb-summary")).to_contain_text("2 documents: 2 indexed")
        expect(page.locator("#documents-progress")).not_to_have_attribute("hx-get", re.compile(".*"))  # it stopped
        assert polls, "the page never polled"  # it watched them change, without a reload
        problems["indexed"] = tab.check("knowledge-journey-indexed")

        page.get_by_role("link", name="Test retrieval").click()
        page.get_by_label("Question").fill("Can I get my money back for an unused widget?")
        page.get_by_label("Search by").select_option("hybrid")
        page.get_by_role("button", name="Search").click()
        first = page.locator(".kb-hit").first
        # The test's server loads the embedding model on its first question (`privex serve` does it as it starts).
        expect(first.locator(".kb-cite")).to_contain_text("returns.md", timeout=120_000)
        expect(first.locator(".kb-cite")).to_contain_text("score")
        expect(first.locator(".kb-cite")).to_contain_text("Unused items")
        expect(first).to_contain_text("within sixty days for a full refund")
        expect(page).to_have_url(re.compile(r"/search\?q=Can(%20|\+)I"))  # the search's address can be shared
        problems["search"] = tab.check("knowledge-journey-search")
        first.locator(".kb-cite").get_by_role("link", name="returns.md").click()
        expect(page.get_by_role("heading", name="Its passages (2)")).to_be_visible()
    finally:
        stop(worker)
        log.close()
    tab.close()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()
    assert not tab.problems, tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def every_page(app) -> tuple[dict, dict]:
    """Olga's workspace holding one of everything the area shows; the pages to visit, as the owner and as a viewer."""
    with app.app_context():
        olga = registration.sign_up("olga@example.com", PASSWORD, "Olga Maria Konstantinopoulou")
        vic = registration.sign_up("vic@example.com", PASSWORD, "Vic")
        db.session.commit()
        workspace = db.session.query(Workspace).filter_by(created_by_id=olga.id).one()
        invitations.invite_or_add(db.session.get(Organization, workspace.organization_id), olga, "owner",
                                  "vic@example.com", "member", workspace_id=workspace.id, workspace_role="viewer")
        handbook = knowledge.create(workspace, olga.id, {
            "name": "Staff handbook with a rather long name for a phone",
            "description": "Opening hours, returns and everything the shop's staff ask about."})
        knowledge.add_uploads(handbook, [upload("hours.md", HOURS), upload("returns.md", RETURNS)])  # eager here
        db.session.add_all([
            Document(workspace_id=workspace.id, knowledge_base_id=handbook.id, name="scanned-contract.pdf",
                     status="failed", size_bytes=120_000,
                     error="no text could be extracted from the file: it may be a scan without a text layer"),
            Document(workspace_id=workspace.id, knowledge_base_id=handbook.id, name="price-list-2027.csv",
                     status="processing", chunks_done=12, chunks_total=40, size_bytes=8_200)])
        knowledge.create(workspace, olga.id, {"name": "Empty one"})
        credentials.create(workspace, olga.id, {"name": "Our Notion", "provider": "notion"}, {"token": "secret_x"})
        db.session.commit()
        draft = drafts.create(workspace, olga.id, {"name": "Website"})
        drafts.add_uploads(workspace, draft["id"], [upload("faq.md", RETURNS)])
        document = db.session.query(Document).filter_by(name="hours.md").one()
        kb, doc = handbook.id, document.id
        source_id = drafts.get(workspace, draft["id"])["sources"][0]["id"]
    owner = {
        "kb-list": "/knowledge", "kb-new": "/knowledge/new", "kb-draft": f"/knowledge/drafts/{draft['id']}",
        "kb-preview": f"/knowledge/drafts/{draft['id']}/preview?preview-source_id={source_id}"
                      f"&preview-chunking_strategy=sentence",
        "kb-documents": f"/knowledge/{kb}", "kb-search": f"/knowledge/{kb}/search?q=when+does+the+shop+open",
        "kb-search-refused": f"/knowledge/{kb}/search?q=&top_k=99", "kb-settings": f"/knowledge/{kb}/settings",
        "kb-document": f"/knowledge/{kb}/documents/{doc}"}
    viewer = {"kb-viewer-documents": f"/knowledge/{kb}", "kb-viewer-settings": f"/knowledge/{kb}/settings"}
    return owner, viewer


def test_every_page_of_the_area_at_phone_and_desktop_width(live, browser):  # noqa: F811
    app, base = live
    owner, viewer = every_page(app)
    problems = {}
    for viewport in (PHONE, DESKTOP):
        for email, pages in (("olga@example.com", owner), ("vic@example.com", viewer)):
            tab = Tab(browser, viewport=viewport)
            tab.expected_statuses = {422}
            sign_in(tab.page, base, email)
            if email == "vic@example.com":  # work in Olga's workspace
                tab.page.goto(f"{base}/app")
                tab.page.get_by_label("Working in").select_option(label="Olga Maria Konstantinopoulou's organization"
                                                                        " › Default")
                tab.page.get_by_role("button", name="Switch").click()
            for name, path in pages.items():
                tab.page.goto(base + path)
                if name == "kb-new":  # the advanced section open, and a refusal beside the name
                    tab.page.get_by_text("Advanced: how documents are split").click()
                    tab.page.get_by_label("How documents are split into passages").select_option("token")
                    expect(tab.page.locator("#details-chunker-group legend")).to_have_text("Fixed-size pieces")
                    problems[f"{name}-advanced {viewport['width']}"] = tab.check(f"{name}-advanced")
                    tab.page.get_by_role("button", name="Continue: add documents").click()
                    expect(tab.page.locator("#details-name-error")).to_be_visible()
                if name == "kb-draft":
                    for section in ("A web site", "Notion pages", "Google Docs", "Name and splitting"):
                        tab.page.get_by_role("heading", name=section).click()
                if name == "kb-document":
                    dialog = tab.page.get_by_role("dialog", name="Delete “hours.md”?")
                    tab.page.get_by_role("button", name="Delete…").click()
                    expect(dialog).to_be_visible()
                    problems[f"{name}-confirm {viewport['width']}"] = tab.check(f"{name}-confirm")
                    dialog.get_by_role("button", name="Cancel").click()
                problems[f"{name} {viewport['width']}"] = tab.check(name)
            tab.close()
            problems[f"console {email} {viewport['width']}"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)
