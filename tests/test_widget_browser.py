"""The chat widget in a real browser (Debian's Chromium driven by Playwright) against the real app and public API.

The app is served by a werkzeug server in a thread, on its own migrated database (requests come from the browser,
outside any test transaction), with Celery eager so an upload is indexed before its request returns. A second small
server on another origin plays someone's site with hostile CSS embedding the widget: a bot that lists that origin
works there, one that does not shows a readable error.

Never run `playwright install`: the browser is /usr/bin/chromium (`.ci/run` installs the `chromium` package).
"""

from __future__ import annotations

import io
import re
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, request
from flask_migrate import upgrade
from markupsafe import escape
from werkzeug.serving import make_server

from privex.extensions import db
from privex.models import ChatMessage, Lead, MessageFeedback
from tests.helpers import sign_up

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

API = "/api/v1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HANDBOOK = b"""# Handbook

## Holidays
Every employee has twenty-five days of paid holiday a year. Unused days carry over until March.

## Security
Laptops must use full-disk encryption. Report a lost laptop to the security team within one hour.
"""
QUESTION = "How many days of paid holiday does an employee have?"
PASSAGE = "Every employee has twenty-five days of paid holiday a year."
# A host page doing its worst to the widget: none of it may change how the widget looks.
HOSTILE_CSS = """
* { color: red !important; font-size: 40px !important; font-family: serif !important; line-height: 3 !important;
    letter-spacing: 5px !important; text-transform: uppercase !important; }
button { display: none !important; }
textarea, input { background: black !important; border: 9px dashed lime !important; }
"""
# Computed styles compared between the demo page and the hostile page, per element of the widget.
LOOK = {".bubble": ["display", "width", "height", "color", "background-color", "position"],
        ".title": ["font-size", "font-family", "color", "letter-spacing", "line-height", "text-transform"],
        "textarea": ["font-size", "color", "background-color", "border-top-width", "border-top-style"],
        ".send": ["display", "width", "background-color"],
        ".msg.assistant": ["font-size", "font-family", "color", "line-height", "background-color"]}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    context.close()
    assert not errors, errors  # the widget never throws, whatever the server answers


def serve(application) -> tuple[str, object]:
    server = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture()
def live(make_app, scratch_database):
    """The app on its own migrated database, served over HTTP; yields (app, base URL)."""
    application = make_app(SQLALCHEMY_DATABASE_URI=scratch_database, CELERY_TASK_ALWAYS_EAGER=True)
    with application.app_context():
        upgrade()  # the app knows its migrations (privex/migrations)
    base, server = serve(application)
    application.config["PUBLIC_URL"] = base  # PRIVEX_PUBLIC_URL: known once the server has its port
    yield application, base
    server.shutdown()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture()
def host_site(live):
    """Another origin: someone's site with hostile CSS embedding the widget. Yields ``(origin, page_url(bot))``."""
    app_base = live[1]
    site = Flask("host-site")

    @site.get("/")
    def home():
        bot = request.args["bot"]
        return (f"<!doctype html><html><head><title>Someone's shop</title><style>{HOSTILE_CSS}</style></head>"
                f"<body><h1>Someone's shop</h1><p class='bubble panel'>Not part of the widget.</p>"
                f'<script src="{app_base}/widget.js" data-bot="{escape(bot)}" async></script></body></html>')

    origin, server = serve(site)
    yield origin, lambda bot: f"{origin}/?bot={bot['public_id']}"
    server.shutdown()


def make_bot(app, **config) -> dict:
    """A signed-up owner's bot answering from an indexed handbook.md, made through the real API."""
    client = app.test_client()
    owner = sign_up(client, "olga")
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Handbook"})
    assert kb.status_code == 201, kb.get_json()
    kb_id = kb.get_json()["id"]
    uploaded = owner.post(f"{API}/knowledge-bases/{kb_id}/documents/upload",
                          data={"files": [(io.BytesIO(HANDBOOK), "handbook.md")]}, content_type="multipart/form-data")
    assert uploaded.status_code == 202, uploaded.get_json()
    [document] = uploaded.get_json()
    assert owner.get(f"{API}/documents/{document['id']}").get_json()["status"] == "indexed"
    bot = owner.post(f"{API}/chatbots", json={"name": "Handbook helper", "knowledge_base_ids": [kb_id],
                                              "config": config})
    assert bot.status_code == 201, bot.get_json()
    return bot.get_json()


# -- reaching into the widget's shadow root ----------------------------------------------------------------------

def widget(page):
    """Playwright's CSS locators pierce open shadow roots: this finds elements inside the widget."""
    return page.locator("privex-chat")


def in_shadow(page, script: str, arg=None):
    """Evaluate ``script`` (a function of the shadow root and ``arg``) inside the widget's shadow root."""
    return page.evaluate(f"([arg]) => {{ const root = document.querySelector('privex-chat').shadowRoot; "
                         f"return ({script})(root, arg); }}", [arg])


def look(page) -> dict:
    return in_shadow(page, """(root, look) => Object.fromEntries(Object.entries(look).map(([selector, names]) => {
        const style = getComputedStyle(root.querySelector(selector));
        return [selector, Object.fromEntries(names.map(name => [name, style.getPropertyValue(name)]))];
    }))""", LOOK)


def focused(page) -> str:
    """What has the focus inside the widget: its class, or its tag name."""
    return in_shadow(page, "root => root.activeElement && (root.activeElement.className || "
                           "root.activeElement.tagName.toLowerCase())")


def ask(page, question: str) -> None:
    box = widget(page).locator("textarea")
    box.fill(question)
    box.press("Enter")


def answers(page) -> list[str]:
    return widget(page).locator(".msg.assistant .text").all_inner_texts()


# -- the tests -----------------------------------------------------------------------------------------------------

def test_the_demo_page_chats_with_a_streamed_cited_answer_and_the_keyboard(live, page):
    app, base = live
    bot = make_bot(app, welcome_message="Hello! Ask me about the handbook.", appearance={"color": "#0f766e"})
    sent = []
    page.on("request", lambda r: sent.append(r) if r.method == "POST" and r.url.endswith("/messages") else None)
    page.goto(f"{base}/widget/demo/{bot['public_id']}")

    bubble = widget(page).locator("button.bubble")
    bubble.wait_for()
    assert page.evaluate("() => { const host = document.querySelector('privex-chat'); "
                         "return host.shadowRoot.contains(host.shadowRoot.querySelector('button.bubble')) && "
                         "!document.querySelector('button.bubble'); }")  # in the shadow root, not the page
    expect(bubble).to_have_attribute("aria-label", "Open chat: Handbook helper")  # the config has arrived
    assert in_shadow(page, "root => getComputedStyle(root.querySelector('.bubble')).backgroundColor") == \
        "rgb(15, 118, 110)"
    bubble.click()
    panel = widget(page).locator("[role=dialog]")
    expect(panel).to_be_visible()
    assert bubble.get_attribute("aria-expanded") == "true"
    assert focused(page) == "textarea"  # focus goes to the input when the panel opens
    expect(widget(page).locator(".title")).to_have_text("Handbook helper")
    assert widget(page).locator("[role=log]").get_attribute("aria-live") == "polite"
    expect(widget(page).get_by_text("Hello! Ask me about the handbook.")).to_be_visible()

    box = widget(page).locator("textarea")
    box.press_sequentially("first line")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("second line")
    assert box.input_value() == "first line\nsecond line" and not sent

    ask(page, QUESTION)
    citations = widget(page).locator(".citations")
    citations.wait_for(timeout=30_000)
    expect(widget(page).locator(".msg.user .text")).to_have_text(QUESTION)
    assert box.input_value() == ""
    assert PASSAGE in answers(page)[-1]
    assert re.match(r"\[\d+\] handbook\.md", citations.locator("li").first.inner_text())
    [request_sent] = sent
    assert request_sent.post_data_json == {"message": QUESTION, "stream": True}
    assert request_sent.response().headers["content-type"].startswith("text/event-stream")

    helpful = widget(page).get_by_role("button", name="Helpful answer", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(widget(page).get_by_role("button", name="Unhelpful answer")).to_have_attribute("aria-pressed", "false")
    with app.app_context():
        assert [f.rating for f in db.session.scalars(sa.select(MessageFeedback))] == [1]

    box.focus()
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert bubble.get_attribute("aria-expanded") == "false"
    assert focused(page) == "bubble"  # focus returns to the bubble
    page.keyboard.press("Enter")  # the bubble is a real button
    expect(panel).to_be_visible()

    # A reload keeps the conversation's session (sessionStorage, per bot).
    session_key = f"privex:session:{bot['public_id']}"
    session_id = page.evaluate(f"sessionStorage.getItem({session_key!r})")
    assert session_id
    page.reload()
    widget(page).locator("button.bubble").click()
    ask(page, "What must laptops use?")
    widget(page).locator(".citations").wait_for(timeout=30_000)
    assert "full-disk encryption" in answers(page)[-1]
    assert page.evaluate(f"sessionStorage.getItem({session_key!r})") == session_id
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(
            ChatMessage.session_id == uuid.UUID(session_id), ChatMessage.role == "user")) == 2


def test_on_another_allowed_origin_the_page_css_cannot_touch_it_and_a_lead_is_asked_for(live, page, host_site):
    app, base = live
    origin, page_url = host_site
    bot = make_bot(app, allowed_origins=[origin], lead_capture={
        "enabled": True, "when": "after", "after_messages": 1,
        "fields": [{"name": "email", "label": "Email", "type": "email", "required": True},
                   {"name": "company", "label": "Company", "type": "text", "required": False}],
        "consent_text": "I agree to be contacted about my question."})

    # The same widget on the demo page (the app's own plain styles) and on the hostile page looks the same.
    page.goto(f"{base}/widget/demo/{bot['public_id']}")
    widget(page).locator("button.bubble").click()
    expect(widget(page).locator(".title")).to_have_text("Handbook helper")
    calm = look(page)
    page.goto(page_url(bot))
    widget(page).locator("button.bubble").click()
    expect(widget(page).locator(".title")).to_have_text("Handbook helper")
    assert look(page) == calm
    assert calm[".title"]["font-size"] == "16px" and calm[".bubble"]["display"] != "none"
    # Even the host element, which the page's `*` rules do match, is reset (the shadow root's !important wins).
    assert page.evaluate("getComputedStyle(document.querySelector('privex-chat')).fontSize") == "16px"
    # ... and the widget's styles do not reach the page: its .bubble and .panel classes style nothing there.
    assert page.evaluate("getComputedStyle(document.querySelector('p.bubble')).position") == "static"

    ask(page, QUESTION)
    widget(page).locator(".citations").wait_for(timeout=30_000)
    assert PASSAGE in answers(page)[-1]

    # The second question is refused with 428 until the visitor leaves their details.
    ask(page, "What must laptops use?")
    form = widget(page).locator("form.lead")
    form.wait_for()
    expect(widget(page).get_by_text("I agree to be contacted about my question.")).to_be_visible()
    assert in_shadow(page, "root => root.activeElement.name") == "email"
    form.get_by_role("button", name="Continue").click()
    expect(form).to_contain_text("Email is required.")
    expect(form).to_contain_text("Please agree to continue.")
    form.get_by_label("Email").fill("not-an-email")
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="Continue").click()
    expect(form).to_contain_text("Enter a valid email address.")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 0  # nothing sent yet

    form.get_by_label("Email").fill("visitor@example.com")
    form.get_by_label("Company").fill("Acme")
    form.get_by_role("button", name="Continue").click()
    expect(form).to_be_hidden()
    expect(widget(page).locator(".citations")).to_have_count(2, timeout=30_000)
    assert "full-disk encryption" in answers(page)[-1]  # the pending question was sent again
    with app.app_context():
        [lead] = db.session.scalars(sa.select(Lead)).all()
        assert (lead.email, lead.consent, lead.custom_fields) == ("visitor@example.com", True, {"company": "Acme"})
        assert str(lead.chatbot_id) == bot["id"]


def test_a_lead_asked_before_the_first_message_comes_first(live, page):
    app, base = live
    bot = make_bot(app, lead_capture={"enabled": True, "when": "before",
                                      "fields": [{"name": "name", "label": "Your name", "required": True}]})
    page.goto(f"{base}/widget/demo/{bot['public_id']}")
    widget(page).locator("button.bubble").click()
    form = widget(page).locator("form.lead")
    form.wait_for()
    expect(widget(page).locator("form.composer")).to_be_hidden()
    page.keyboard.type("Ada")  # the first field has the focus
    page.keyboard.press("Enter")
    expect(form).to_be_hidden()
    ask(page, QUESTION)
    widget(page).locator(".citations").wait_for(timeout=30_000)
    assert PASSAGE in answers(page)[-1]
    with app.app_context():
        assert [lead.name for lead in db.session.scalars(sa.select(Lead))] == ["Ada"]


def test_a_site_the_bot_does_not_allow_gets_a_readable_error_not_a_crash(live, page, host_site):
    app, base = live
    bot = make_bot(app, allowed_origins=["https://only-this.example"])
    page.goto(host_site[1](bot))
    bubble = widget(page).locator("button.bubble")
    bubble.click()
    error = widget(page).locator(".msg.error")
    expect(error).to_contain_text("may not use this bot")  # the server's reason, readable across origins
    expect(widget(page).locator("[role=dialog]")).to_be_visible()
    page.keyboard.press("Escape")
    assert focused(page) == "bubble"
