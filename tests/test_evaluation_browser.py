"""The Quality tab in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on and
Celery eager: the empty state, a run started from the page by keyboard (the file chosen, a mode unticked), its results
with the chart and the failing questions; then a run under way whose progress bar htmx polls until the run finishes
and its results replace it, the list of recent runs and the form following, without a reload. axe-core finds no serious or critical violation, nothing scrolls
sideways at 360 px; screenshots go to tests/screenshots/."""

from __future__ import annotations

import json

import pytest

from privex.extensions import db
from privex.models import Workspace
from privex.services import evaluation_runs, knowledge, registration
from privex.services.evaluation import Question
from tests.test_builder_browser import DESKTOP, PASSWORD, PHONE, Tab, sign_in
from tests.test_drafts_api import HOURS
from tests.test_evaluation_runs import PLANTS, QUESTIONS, VOLCANO, jsonl
from tests.test_knowledge_pages import RETURNS, upload
from tests.test_widget_browser import browser, live, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def handbook(app) -> str:
    with app.app_context():
        olga = registration.sign_up("olga@example.com", PASSWORD, "Olga")
        db.session.commit()
        workspace = db.session.query(Workspace).filter_by(created_by_id=olga.id).one()
        knowledge_base = knowledge.create(workspace, olga.id, {"name": "Shop handbook"})
        knowledge.add_uploads(knowledge_base, [upload(name, content) for name, content in (
            ("hours.md", HOURS), ("returns.md", RETURNS), ("101.txt", PLANTS), ("202.txt", VOLCANO))])
        db.session.commit()
        return str(knowledge_base.id)


def test_evaluate_from_the_quality_tab_and_watch_a_run_finish(live, browser, tmp_path):  # noqa: F811
    app, base = live
    kb_id = handbook(app)
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes(jsonl(QUESTIONS))
    problems = {}
    for viewport in (PHONE, DESKTOP):
        tab = Tab(browser, viewport=viewport)
        page = tab.page
        width = viewport["width"]
        sign_in(page, base, "olga@example.com")
        page.goto(f"{base}/knowledge/{kb_id}")
        page.get_by_role("link", name="Quality").click()
        if width == PHONE["width"]:
            expect(page.get_by_role("heading", name="How well does this knowledge base find answers?")).to_be_visible()
            expect(page.locator(".eval-example")).to_contain_text('"relevant_document_names": ["returns.md"]')
            problems[f"empty {width}"] = tab.check("kb-quality-empty")

        # By keyboard: the file is chosen through its label, "Words" unticked with the space bar, then Enter.
        page.get_by_label("Questions file").set_input_files(str(questions))
        page.get_by_label("Words", exact=True).focus()
        page.keyboard.press("Space")
        expect(page.get_by_label("Words", exact=True)).not_to_be_checked()
        page.get_by_role("button", name="Start the evaluation").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=120_000)
        table = page.locator(".eval-table table")
        expect(table.locator("thead th")).to_have_count(3)  # the two modes asked for, as columns
        expect(table.locator("tbody tr")).to_have_count(5)  # nDCG@10, recall@1, @5, @10, MRR@10
        expect(page.get_by_role("img", name="nDCG@10 and Recall@10 per way of searching")).to_be_visible()
        if width == DESKTOP["width"]:  # the second run: changes against the first
            expect(page.get_by_role("link", name="the run of")).to_be_visible()
            expect(table.locator(".eval-delta").first).to_be_visible()
        problems[f"results {width}"] = tab.check(f"kb-quality-results{'-again' if width == DESKTOP['width'] else ''}")
        page.get_by_role("link", name="Failing only (").click()
        expect(page.locator(".eval-questions > li")).to_have_count(0)  # vector and hybrid find all four
        expect(page.get_by_text("No question fails")).to_be_visible()
        page.get_by_role("link", name="All (4)").click()
        expect(page.locator(".eval-questions > li")).to_have_count(4)
        tab.close()
        problems[f"console {width}"] = tab.problems

    # A run under way (no worker takes it): the bar shows its progress, and htmx polls until it is done.
    with app.app_context():
        from privex.models import KnowledgeBase

        knowledge_base = db.session.get(KnowledgeBase, kb_id)
        run = evaluation_runs.start(knowledge_base, None, [Question(q["question"], document_names=frozenset(
            q["relevant_document_names"])) for q in QUESTIONS], "slow.jsonl", evaluation_runs.settings_of(),
            queue=False)
        run_id = run.id
        run.questions_done = 1
        db.session.commit()
    for viewport in (PHONE, DESKTOP):
        tab = Tab(browser, viewport=viewport)
        page = tab.page
        sign_in(page, base, "olga@example.com")
        polls = []
        page.on("request", lambda request: "quality?run=" in request.url and request.headers.get("hx-request")
                and polls.append(request.url))
        page.goto(f"{base}/knowledge/{kb_id}/quality")
        expect(page.get_by_role("heading", name="Evaluation in progress")).to_be_visible()
        expect(page.get_by_label("1 of 4 questions scored")).to_have_attribute("value", "1")
        expect(page.get_by_text("Another evaluation can start when this one has finished.")).to_be_visible()
        expect(page.locator("#evaluation-runs li").first).to_contain_text("Queued")
        problems[f"running {viewport['width']}"] = tab.check("kb-quality-running")
        if viewport is DESKTOP:
            with app.app_context():
                evaluation_runs.execute(run_id)
            expect(page.get_by_role("heading", name="Results")).to_be_visible(timeout=30_000)
            assert polls, "the page never polled"  # it watched the run finish, without a reload
            expect(page.locator("#evaluation-run")).not_to_have_attribute("hx-trigger", "every 1500ms")
            expect(page.locator(".eval-table thead th")).to_have_count(4)
            # The rest of the tab followed: the run is Done in the list, and the form is back.
            expect(page.locator("#evaluation-runs li").first).to_contain_text("Done · best nDCG@10")
            expect(page.get_by_role("button", name="Start the evaluation")).to_be_visible()
            problems["finished by polling"] = tab.check("kb-quality-polled")
        tab.close()
        problems[f"console running {viewport['width']}"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)
