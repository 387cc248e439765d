"""The Chatbots pages in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on.

Journey 2 of issue 10: with a knowledge base made through the services, build a chatbot in the pages, ask in the
preview and watch the answer stream with its citations, publish it, copy the snippet onto a static page of another
origin that the bot allows and chat there through the widget, while a page on an origin it does not allow gets a
clear message. Then the demo page at 360 px (no sideways scroll, the bubble on screen), and every page of the area
at 360 px and at desktop width checked by axe-core (0 serious or critical violations), for sideways scrolling,
console errors and the favicon; screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.datastructures import FileStorage

from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatbot, Organization, User, Workspace
from privex.services import chatbots, conversations, knowledge
from tests.test_builder_browser import DESKTOP, PHONE, Tab, make_person, sign_in
from tests.test_widget_browser import HANDBOOK, PASSAGE, QUESTION, browser, live, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def with_handbook(app, email: str, name: str) -> tuple:
    """Someone signed up, with a knowledge base holding an indexed handbook.md (Celery is eager here)."""
    user_id, organization_id, workspace_id = make_person(app, email, name)
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        knowledge_base = knowledge.create(workspace, user_id, {"name": "Staff handbook"})
        knowledge.add_uploads(knowledge_base, [FileStorage(io.BytesIO(HANDBOOK), "handbook.md")])
        return user_id, workspace_id, knowledge_base.id


class Site:
    """Someone's static site on another origin: the page shows whatever snippet it was given, pasted as is."""

    def __init__(self):
        self.snippet = ""
        site = Flask("someones-site")

        @site.get("/")
        def home():
            return ("<!doctype html><html lang='en'><head><title>Someone's shop</title><link rel='icon' href='data:,'></head><body>"
                    f"<h1>Someone's shop</h1><p>Our opening hours are 9 to 5.</p>{self.snippet}</body></html>")

        self.origin, self.server = serve(site)


@pytest.fixture()
def sites():
    """Two sites, so two origins: the bot will allow the first and not the second."""
    allowed, other = Site(), Site()
    yield allowed, other
    for site in (allowed, other):
        site.server.shutdown()


def widget(page):
    return page.locator("privex-chat")


def test_build_a_bot_try_it_in_the_preview_and_put_it_on_an_allowed_site(live, browser, sites):  # noqa: F811
    app, base = live
    allowed, other = sites
    with_handbook(app, "olga@example.com", "Olga")
    tab = Tab(browser, permissions=["clipboard-read", "clipboard-write"])
    page = tab.page
    problems = {}
    sign_in(page, base, "olga@example.com")

    # Build it: a name and the knowledge, then the steps.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chatbots").click()
    page.get_by_role("link", name="Build a chatbot").click()
    page.get_by_label("Name").fill("Handbook helper")
    expect(page.get_by_label("Staff handbook")).to_be_checked()  # the workspace's one knowledge base
    page.get_by_role("button", name="Create the draft").click()
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    expect(page.locator(".bot-head")).to_contain_text("Draft")
    page.get_by_role("textbox", name="Instructions").fill("You answer staff questions about the handbook, kindly and briefly.")
    page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Knowledge")).to_be_visible()  # htmx brought the next step
    expect(page).to_have_url(f"{base}/chatbots/{bot_id(app)}/build/knowledge")
    expect(page.get_by_role("status").filter(has_text="“Instructions” saved.")).to_be_focused()
    expect(page.get_by_label("Staff handbook")).to_be_checked()
    page.get_by_role("link", name="Behaviour").click()
    top_k = page.get_by_label("Passages per answer")
    top_k.fill("50")
    tab.expected_statuses = {422}
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#retrieval-top_k-error")).to_have_text(
        "Must be greater than or equal to 1 and less than or equal to 20.")
    expect(top_k).to_be_focused()  # where to fix it
    problems["refused step"] = tab.check("chatbot-step-refused")
    top_k.fill("4")
    page.get_by_label("When nothing relevant is found, say").fill("I could not find that in the handbook.")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_focused()
    page.go_back()  # htmx restores the Knowledge step from its history; the preview still works there
    expect(page).to_have_url(f"{base}/chatbots/{bot_id(app)}/build/knowledge")

    # Try it: the answer streams into the preview with its sources.
    preview = page.get_by_role("complementary", name="Try it")
    with page.expect_response(lambda r: r.url.endswith("/preview")) as answered:
        preview.get_by_label("Your question").fill(QUESTION)
        preview.get_by_label("Your question").press("Enter")
    response = answered.value
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.request.headers["x-csrftoken"] == page.locator('meta[name="csrf-token"]').get_attribute("content")
    log = preview.get_by_role("log")
    expect(log.locator(".chat-msg.bot").last).to_contain_text(PASSAGE)
    expect(log.locator(".citations li").first).to_have_text("[1] handbook.md — Handbook > Holidays")
    expect(preview.get_by_role("status")).to_have_text("The bot answered.")
    frames = [line for line in response.text().splitlines() if line.startswith("event: ")]
    assert frames[-2:] == ["event: citations", "event: done"] and set(frames[:-2]) == {"event: delta"}
    problems["preview"] = tab.check("chatbot-preview")
    preview.get_by_label("Your question").fill("What must laptops use?")
    preview.get_by_role("button", name="Ask").click()
    expect(log.locator(".citations")).to_have_count(2)
    expect(log.locator(".chat-msg.bot").last).to_contain_text("full-disk encryption")
    with app.app_context():  # one test conversation, carried on
        [session] = db.session.scalars(sa.select(ChatSession)).all()
        assert session.is_test and db.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage)) == 4

    # Deploy: publish, allow the site, copy the snippet onto it.
    page.get_by_role("link", name="Appearance").click()
    page.get_by_label("Welcome message").fill("Hello! Ask me about the staff handbook.")
    page.get_by_role("button", name="Save and go to Deploy").click()
    expect(page).to_have_url(f"{base}/chatbots/{bot_id(app)}/deploy")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status").filter(has_text="The bot is live")).to_be_visible()
    page.get_by_label("Sites allowed to show this bot").fill(f"{allowed.origin}/")
    page.get_by_role("button", name="Save the allowed sites").click()
    expect(page.get_by_role("status").filter(has_text="Allowed sites saved.")).to_be_visible()
    expect(page.get_by_label("Sites allowed to show this bot")).to_have_value(allowed.origin)
    page.get_by_role("button", name="Copy the snippet").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    snippet = page.evaluate("() => navigator.clipboard.readText()")
    public_id = public_id_of(app)
    assert snippet == f'<script src="{base}/widget.js" data-bot="{public_id}" async></script>'
    problems["deploy"] = tab.check("chatbot-deploy")
    allowed.snippet = other.snippet = snippet

    page.goto(allowed.origin)
    widget(page).locator("button.bubble").click()
    expect(widget(page).get_by_text("Hello! Ask me about the staff handbook.")).to_be_visible()
    box = widget(page).locator("textarea")
    box.fill(QUESTION)
    box.press("Enter")
    widget(page).locator(".citations").wait_for(timeout=30_000)
    assert PASSAGE in widget(page).locator(".msg.assistant .text").last.inner_text()

    page.goto(other.origin)  # a site the bot does not allow
    tab.expected_statuses = {403}
    widget(page).locator("button.bubble").click()
    expect(widget(page).locator(".msg.error")).to_contain_text(f"this site ({other.origin}) may not use this bot")

    # The visitor's conversation is in Conversations; the preview's is not counted.
    page.goto(f"{base}/chatbots/{bot_id(app)}/conversations")
    expect(page.locator(".figures")).to_contain_text("Conversations1")
    expect(page.locator(".session-list > li")).to_have_count(1)
    page.locator(".session-list a").click()
    expect(page.locator(".transcript")).to_contain_text(PASSAGE)
    expect(page.locator(".transcript .citations")).to_contain_text("handbook.md")
    problems["conversation"] = tab.check("chatbot-conversation")
    tab.close()
    assert not tab.problems, tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def bot_id(app) -> str:
    with app.app_context():
        return str(db.session.scalar(sa.select(Chatbot.id)))


def public_id_of(app) -> str:
    with app.app_context():
        return db.session.scalar(sa.select(Chatbot.public_id))


def test_the_demo_page_fits_a_phone_with_the_bubble_on_screen(live, browser):  # noqa: F811
    app, base = live
    user_id, workspace_id, kb_id = with_handbook(app, "olga@example.com", "Olga")
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        bot = chatbots.create(workspace, user_id, {"name": "Handbook helper with a rather long name",
                                                   "knowledge_base_ids": [kb_id]})
        public_id = bot.public_id
    problems = {}
    for viewport in (PHONE, DESKTOP):
        tab = Tab(browser, viewport=viewport)
        page = tab.page
        page.goto(f"{base}/widget/demo/{public_id}")
        bubble = widget(page).locator("button.bubble")
        expect(bubble).to_have_attribute("aria-label", "Open chat: Handbook helper with a rather long name")
        box = bubble.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], box
        assert 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"], box
        expect(page.locator("pre")).to_contain_text(f'<script src="{base}/widget.js" data-bot="{public_id}" async>')
        problems[f"demo {viewport['width']}"] = tab.check("widget-demo")
        bubble.click()
        panel = widget(page).locator("[role=dialog]")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], box
        tab.close()
        problems[f"console {viewport['width']}"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def test_every_chatbot_page_at_phone_and_desktop_width(live, browser):  # noqa: F811
    """Each page of the area, with content in it: axe-core finds no serious or critical violation, nothing scrolls
    sideways, the console stays clean and the favicon is there, at 360 px and at 1280 px."""
    app, base = live
    user_id, workspace_id, kb_id = with_handbook(app, "olga@example.com", "Olga Maria Konstantinopoulou")
    with app.app_context():
        workspace = db.session.get(Workspace, workspace_id)
        empty = chatbots.create(workspace, user_id, {"name": "Just started", "status": "draft"})
        bot = chatbots.create(workspace, user_id, {
            "name": "Handbook helper", "description": "Answers staff questions from the handbook.",
            "knowledge_base_ids": [kb_id], "config": {"allowed_origins": ["https://www.example.com"],
                                                      "lead_capture": {"enabled": True}}})
        session = conversations.start_session(bot, channel="widget", metadata={"origin": "https://www.example.com"})
        answer = conversations.gather(conversations.respond(conversations.saved_bot(bot), session, QUESTION))
        conversations.rate_answer(bot, answer["message_id"], 1, "Clear")
        organization = db.session.get(Organization, workspace.organization_id)
        ids = {"bot": bot.id, "empty": empty.id, "session": session.id, "org": organization.id}
    pages = {"chatbots": "/chatbots", "chatbot-new": "/chatbots/new",
             "chatbot-deploy-draft": f"/chatbots/{ids['empty']}/deploy",
             "chatbot-conversations-empty": f"/chatbots/{ids['empty']}/conversations",
             **{f"chatbot-step-{step}": f"/chatbots/{ids['bot']}/build/{step}"
                for step in ("instructions", "knowledge", "model", "behaviour", "leads", "appearance")},
             "chatbot-model-openai": f"/chatbots/{ids['bot']}/build/model?provider=openai",
             "chatbot-deploy-live": f"/chatbots/{ids['bot']}/deploy",
             "chatbot-conversations": f"/chatbots/{ids['bot']}/conversations",
             "chatbot-conversation": f"/chatbots/{ids['bot']}/conversations/{ids['session']}"}
    problems = {}
    for viewport in (PHONE, DESKTOP):
        tab = Tab(browser, viewport=viewport)
        page = tab.page
        sign_in(page, base, "olga@example.com")
        for name, path in pages.items():
            page.goto(base + path)
            problems[f"{name} {viewport['width']}"] = tab.check(name)
        page.goto(f"{base}/chatbots/{ids['bot']}/deploy")
        page.get_by_role("button", name="Create a chat key").click()
        expect(page.locator("#secret-key")).to_contain_text("pk_")
        problems[f"key shown {viewport['width']}"] = tab.check("chatbot-deploy-key")
        page.get_by_role("button", name="Delete the chatbot…").click()
        expect(page.get_by_role("dialog", name="Delete the chatbot “Handbook helper”?")).to_be_visible()
        problems[f"delete dialog {viewport['width']}"] = tab.check("chatbot-delete-dialog")
        page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        page.goto(f"{base}/chatbots/{ids['bot']}/conversations")
        page.get_by_text("Messages per day as a table").click()
        problems[f"chart table {viewport['width']}"] = tab.check("chatbot-analytics-table")
        tab.close()
        problems[f"console {viewport['width']}"] = tab.problems

    with app.app_context():  # and as a viewer: the same pages, read-only
        from privex.services import invitations, registration
        viewer = registration.sign_up("vic@example.com", "Sup3r-secret!", "Vic")
        db.session.commit()
        invitations.invite_or_add(db.session.get(Organization, ids["org"]), db.session.get(User, user_id), "owner",
                                  "vic@example.com", "member", workspace_id=workspace_id, workspace_role="viewer")
        assert viewer.id
    tab = Tab(browser, viewport=PHONE)
    sign_in(tab.page, base, "vic@example.com")
    tab.page.get_by_label("Working in").select_option(label="Olga Maria Konstantinopoulou's organization › Default")
    tab.page.get_by_role("button", name="Switch").click()
    for name, path in (("viewer-step", f"/chatbots/{ids['bot']}/build/model"),
                       ("viewer-deploy", f"/chatbots/{ids['bot']}/deploy")):
        tab.page.goto(base + path)
        expect(tab.page.get_by_role("button", name="Save and continue")).to_have_count(0)
        problems[f"{name} 360"] = tab.check(name)
    tab.close()
    problems["viewer console"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)

