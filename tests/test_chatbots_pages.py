"""The Chatbots pages through the test client: the list and its empty states, a new bot saved as a draft, each
builder step's form with the services' refusals beside their fields, the preview's server-sent events, the deploy
tab (status, snippet from the configured public URL, allowed origins, a chat key and its examples, delete),
conversations and the analytics card, viewers reading only, and every route walked for another tenant's ids.
The same journey runs in a real browser in test_chatbots_browser.py."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from conftest import rolled_back
from privex.clock import now
from privex.extensions import db
from privex.models import APIKey, ChatMessage, ChatSession, Chatbot, MessageFeedback, Organization
from privex.services import analytics, chatbots, conversations, invitations, knowledge
from privex.services.errors import Invalid
from tests.test_web_shell import error_of, html, own_workspace, person, sign_in

HANDBOOK = b"""# Handbook

## Holidays
Every employee has twenty-five days of paid holiday a year. Unused days carry over until March.

## Security
Laptops must use full-disk encryption. Report a lost laptop to the security team within one hour.
"""
QUESTION = "How many days of paid holiday does an employee have?"
PASSAGE = "Every employee has twenty-five days of paid holiday a year."


@pytest.fixture()
def olga(client):
    user = person("olga@example.com")
    sign_in(client, "olga@example.com")
    return user


@pytest.fixture()
def workspace(olga):
    return own_workspace(olga)


@pytest.fixture()
def handbook(olga, workspace):
    """A knowledge base with handbook.md indexed (Celery is eager here)."""
    knowledge_base = knowledge.create(workspace, olga.id, {"name": "Handbook"})
    knowledge.add_uploads(knowledge_base, [FileStorage(io.BytesIO(HANDBOOK), "handbook.md")])
    return knowledge_base


def new_bot(workspace, user, kb=None, **payload) -> Chatbot:
    return chatbots.create(workspace, user.id, {"name": "Helper", "knowledge_base_ids": [kb.id] if kb else [],
                                                **payload})


def events(response) -> list[tuple[str, dict]]:
    """The server-sent events of a response, as (name, data)."""
    found = []
    for frame in response.get_data(as_text=True).split("\n\n"):
        name = re.search(r"^event: (.+)$", frame, re.M)
        data = re.search(r"^data: (.+)$", frame, re.M)
        if name and data:
            found.append((name.group(1), json.loads(data.group(1))))
    return found


# -- the list and a new bot ----------------------------------------------------------------------------------------

def test_the_empty_list_points_to_knowledge_first_then_to_a_new_bot(client, olga, workspace):
    page = html(client.get("/chatbots"))
    assert "start with your documents" in page and 'href="/knowledge"' in page
    assert 'href="/chatbots/new"' not in page
    knowledge.create(workspace, olga.id, {"name": "Handbook"})
    page = html(client.get("/chatbots"))
    assert "No chatbots yet" in page and 'href="/chatbots/new"' in page


def test_a_new_bot_is_a_draft_on_its_knowledge_and_the_list_shows_it(client, olga, workspace, handbook):
    form = html(client.get("/chatbots/new"))
    assert f'value="{handbook.id}"' in form and "checked" in form  # the one knowledge base, ticked already
    refused = client.post("/chatbots/new", data={"name": "  ", "knowledge_base_ids": [str(handbook.id)]})
    assert refused.status_code == 422
    assert error_of(html(refused), "name") == "Give a name of 1 to 120 characters."
    created = client.post("/chatbots/new", data={"name": "HR helper", "knowledge_base_ids": [str(handbook.id)]})
    bot = db.session.scalar(sa.select(Chatbot).where(Chatbot.name == "HR helper"))
    assert created.status_code == 302 and created.headers["Location"] == f"/chatbots/{bot.id}/build/instructions"
    assert bot.status == "draft" and bot.deployed_at is None and [kb.name for kb in bot.knowledge_bases] == ["Handbook"]
    listed = html(client.get("/chatbots"))
    assert "HR helper" in listed and "Draft" in listed and "Answers from Handbook." in listed
    assert client.get(f"/chatbots/{bot.id}").headers["Location"] == f"/chatbots/{bot.id}/build/instructions"


def test_the_list_is_paginated(client, olga, workspace):
    db.session.get(Organization, workspace.organization_id).subscription_tier = "pro"  # the free plan has 5
    for number in range(23):
        new_bot(workspace, olga, name=f"Bot {number:02}")
    first = html(client.get("/chatbots"))
    assert "Page 1 of 2" in first and first.count('class="card"') == 20
    second = html(client.get("/chatbots?page=2"))
    assert second.count('class="card"') == 3
    shown = set(re.findall(r">(Bot \d\d)</a>", first + second))
    assert len(shown) == 23


# -- the builder's steps -------------------------------------------------------------------------------------------

def test_each_step_saves_its_part_of_the_bot(client, olga, workspace, handbook):
    bot = new_bot(workspace, olga, status="draft")
    base = f"/chatbots/{bot.id}/build"
    for step in ("instructions", "knowledge", "model", "behaviour", "leads", "appearance"):
        page = client.get(f"{base}/{step}")
        assert page.status_code == 200 and 'aria-current="step"' in html(page), step
        assert "data-preview=" in html(page)  # the preview beside every step

    assert client.post(f"{base}/instructions", data={"name": "HR helper", "description": "For staff",
                                                     "system_prompt": "Answer like a kind HR person."}
                       ).headers["Location"] == f"{base}/instructions"
    assert client.post(f"{base}/knowledge", data={"knowledge_base_ids": [str(handbook.id)], "then": "next"}
                       ).headers["Location"] == f"{base}/model"
    client.post(f"{base}/model", data={"provider": "extractive", "credential_id": "", "max_context_tokens": "4000",
                                       "max_answer_tokens": "600", "model_params-max_sentences": "2"})
    client.post(f"{base}/behaviour", data={"retrieval-mode": "keyword", "retrieval-top_k": "3",
                                           "retrieval-threshold": "", "fallback_message": "Ask HR, please.",
                                           "history_window": "4", "citations": "y", "rate_limit_per_minute": "30"})
    client.post(f"{base}/leads", data={
        "lead_capture-enabled": "y", "lead_capture-when": "after", "lead_capture-after_messages": "2",
        "lead_capture-field_0-label": "Work email", "lead_capture-field_0-type": "email",
        "lead_capture-field_0-name": "email", "lead_capture-field_0-required": "y",
        "lead_capture-field_2-label": "Team name", "lead_capture-field_2-type": "text",
        "lead_capture-consent_text": "I agree to be contacted."})
    last = client.post(f"{base}/appearance", data={
        "welcome_message": "Hello!", "appearance-title": "", "appearance-color": "#0f766e",
        "appearance-position": "left", "appearance-avatar_url": "", "appearance-placeholder": "Your question",
        "then": "next"})
    assert last.headers["Location"] == f"/chatbots/{bot.id}/deploy"  # after the last step: Deploy

    db.session.refresh(bot)
    config = bot.config
    assert (bot.name, bot.description, config["system_prompt"]) == ("HR helper", "For staff",
                                                                    "Answer like a kind HR person.")
    assert [kb.id for kb in bot.knowledge_bases] == [handbook.id]
    assert (config["max_context_tokens"], config["max_answer_tokens"], config["model_params"]) == \
        (4000, 600, {"max_sentences": 2})
    assert config["retrieval"] == {"mode": "keyword", "top_k": 3, "threshold": None}
    assert (config["fallback_message"], config["history_window"], config["citations"],
            config["rate_limit_per_minute"]) == ("Ask HR, please.", 4, True, 30)
    assert config["lead_capture"]["fields"] == [
        {"name": "email", "label": "Work email", "type": "email", "required": True},
        {"name": "team_name", "label": "Team name", "type": "text", "required": False}]  # named from its label
    assert config["lead_capture"]["consent_text"] == "I agree to be contacted." and config["lead_capture"]["enabled"]
    assert config["welcome_message"] == "Hello!"
    assert config["appearance"] == {"title": None, "color": "#0f766e", "position": "left", "avatar_url": None,
                                    "placeholder": "Your question"}
    leads = html(client.get(f"{base}/leads"))
    assert re.search(r'id="lead_capture-field_1-name"[^>]*value="team_name"', leads)  # rows close up


@pytest.mark.parametrize("step, data, field, message", [
    ("instructions", {"name": "", "system_prompt": "x"}, "name", "Give a name of 1 to 120 characters."),
    ("behaviour", {"retrieval-mode": "hybrid", "retrieval-top_k": "50", "fallback_message": "x",
                   "history_window": "2", "rate_limit_per_minute": "10"}, "retrieval-top_k",
     "Must be greater than or equal to 1 and less than or equal to 20."),
    ("behaviour", {"retrieval-mode": "hybrid", "retrieval-top_k": "5", "retrieval-threshold": "2",
                   "fallback_message": "x", "history_window": "2", "rate_limit_per_minute": "10"},
     "retrieval-threshold", "Must be greater than or equal to 0 and less than or equal to 1."),
    ("behaviour", {"retrieval-mode": "hybrid", "retrieval-top_k": "many", "fallback_message": "x",
                   "history_window": "2", "rate_limit_per_minute": "10"}, "retrieval-top_k",
     "Not a valid integer value."),
    ("model", {"provider": "extractive", "max_context_tokens": "1000", "max_answer_tokens": "1000"},
     "max_answer_tokens", "Must be smaller than max_context_tokens."),
    ("model", {"provider": "extractive", "max_context_tokens": "3000", "max_answer_tokens": "500",
               "model_params-max_sentences": "50"}, "model_params-max_sentences",
     "Max_sentences must be at most 10, got 50."),
    ("model", {"provider": "openai", "max_context_tokens": "3000", "max_answer_tokens": "500",
               "model_params-base_url": "http://llm.local/v1", "model_params-model": "m",
               "model_params-temperature": "5"}, "model_params-temperature",
     "Temperature must be at most 2, got 5.0."),
    ("model", {"provider": "nope", "max_context_tokens": "3000", "max_answer_tokens": "500"}, "provider",
     "LLM provider &#39;nope&#39; is not installed (installed: extractive, ollama, openai)."),
    ("leads", {"lead_capture-enabled": "y", "lead_capture-when": "after", "lead_capture-after_messages": "1",
               "lead_capture-field_1-label": "Company", "lead_capture-field_1-name": "1st company"},
     "lead_capture-field_1-name", "String does not match expected pattern."),
    ("appearance", {"welcome_message": "Hi", "appearance-color": "red", "appearance-position": "right",
                    "appearance-placeholder": "Ask"}, "appearance-color", "String does not match expected pattern."),
    ("appearance", {"welcome_message": "Hi", "appearance-color": "#123456", "appearance-position": "right",
                    "appearance-placeholder": "Ask", "appearance-avatar_url": "javascript:alert(1)"},
     "appearance-avatar_url", "Not a valid URL."),
])
def test_a_refused_step_says_why_beside_the_field_and_saves_nothing(client, olga, workspace, step, data, field,
                                                                     message):
    bot = new_bot(workspace, olga)
    before = dict(bot.config)
    response = client.post(f"/chatbots/{bot.id}/build/{step}", data=data)
    assert response.status_code == 422
    assert error_of(html(response), field) == message
    db.session.refresh(bot)
    assert bot.config == before and bot.name == "Helper"


def test_knowledge_of_another_workspace_is_refused_beside_the_list(client, olga, workspace):
    stranger = person("sam@example.com")
    theirs = knowledge.create(own_workspace(stranger), stranger.id, {"name": "Secrets"})
    bot = new_bot(workspace, olga)
    refused = client.post(f"/chatbots/{bot.id}/build/knowledge", data={"knowledge_base_ids": [str(theirs.id)]})
    assert refused.status_code == 422
    assert "Some knowledge bases are not in this workspace." in html(refused)
    assert str(theirs.id) not in html(refused)  # neither listed nor echoed as an error
    assert chatbots.knowledge_bases(workspace, []) == [] and not bot.knowledge_bases


def test_the_model_step_shows_the_chosen_providers_settings(client, olga, workspace):
    bot = new_bot(workspace, olga)
    page = html(client.get(f"/chatbots/{bot.id}/build/model"))
    assert 'id="model_params-max_sentences"' in page and "api_key" not in page  # secrets come from credentials
    assert "fallback_message" not in page.split('id="provider-settings"')[1].split("credential_id")[0]
    openai = html(client.get(f"/chatbots/{bot.id}/build/model?provider=openai", headers={"HX-Request": "true"}))
    assert 'id="model_params-base_url"' in openai and 'id="model_params-temperature"' in openai
    assert '<label for="model_params-base_url">Base URL</label>' in openai
    assert "OpenAI-compatible" in openai
    saved = client.post(f"/chatbots/{bot.id}/build/model", data={
        "provider": "openai", "max_context_tokens": "3000", "max_answer_tokens": "500",
        "model_params-base_url": "http://llm.local/v1", "model_params-model": "llama",
        "model_params-temperature": "0.2", "model_params-timeout": "120", "model_params-connect_timeout": "10",
        "model_params-include_usage": "y"})
    assert saved.status_code == 302
    db.session.refresh(bot)
    # Only what differs from the provider's defaults is kept: a better default in a new version applies.
    assert bot.config["model_params"] == {"base_url": "http://llm.local/v1", "model": "llama", "temperature": 0.2}


def test_htmx_saves_a_step_in_place_or_brings_the_next_one(client, olga, workspace):
    bot = new_bot(workspace, olga)
    data = {"name": "Renamed", "system_prompt": "Be brief."}
    stay = client.post(f"/chatbots/{bot.id}/build/instructions", data=data, headers={"HX-Request": "true"})
    assert stay.status_code == 200 and "HX-Push-Url" not in stay.headers
    assert 'data-saved>Saved.</p>' in html(stay) and 'id="builder-main"' in html(stay)
    onward = client.post(f"/chatbots/{bot.id}/build/instructions", data={**data, "then": "next"},
                         headers={"HX-Request": "true"})
    assert onward.headers["HX-Push-Url"] == f"/chatbots/{bot.id}/build/knowledge"
    assert "“Instructions” saved." in html(onward) and 'id="step-title" tabindex="-1">Knowledge' in html(onward)
    last = client.post(f"/chatbots/{bot.id}/build/appearance", headers={"HX-Request": "true"}, data={
        "welcome_message": "Hi", "appearance-color": "#123456", "appearance-position": "right",
        "appearance-placeholder": "Ask", "then": "next"})
    assert last.headers["HX-Redirect"] == f"/chatbots/{bot.id}/deploy"
    refused = client.post(f"/chatbots/{bot.id}/build/instructions", data={"name": ""}, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and 'aria-invalid="true"' in html(refused)  # htmx swaps 422s in


# -- the preview ---------------------------------------------------------------------------------------------------

def test_the_preview_streams_a_cited_answer_and_carries_the_conversation_on(client, olga, workspace, handbook):
    bot = new_bot(workspace, olga, handbook, status="draft")  # a draft answers in the preview too
    response = client.post(f"/chatbots/{bot.id}/preview", json={"message": QUESTION})
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    stream = events(response)
    names = [name for name, _ in stream]
    assert names[0] == "delta" and set(names[:-2]) == {"delta"} and names[-2:] == ["citations", "done"]
    answer = "".join(data["text"] for name, data in stream if name == "delta")
    assert PASSAGE in answer
    citations = stream[-2][1]["citations"]
    assert citations[0]["document_name"] == "handbook.md" and citations[0]["position"]["heading"]
    done = stream[-1][1]
    session = db.session.get(ChatSession, uuid.UUID(done["session_id"]))
    assert session.is_test and session.chatbot_id == bot.id

    again = events(client.post(f"/chatbots/{bot.id}/preview", json={"message": "What must laptops use?",
                                                                   "session_id": done["session_id"]}))
    assert again[-1][1]["session_id"] == done["session_id"]
    assert "full-disk encryption" in "".join(data.get("text", "") for _, data in again)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(
        ChatMessage.session_id == session.id)) == 4
    assert analytics.chatbot_summary(bot)["messages"] == 0  # test chats stay out of analytics


@pytest.mark.parametrize("body, status, message", [
    ({"message": "  "}, 422, "write a message"),
    ({"message": "x" * 4001}, 422, "Field cannot be longer than 4000 characters."),
    ({"message": "hi\x00"}, 422, "contains a NUL character, which cannot be stored"),
    ({"message": "hi", "session_id": "nope"}, 404, "Test session not found."),
    ({"message": "hi", "session_id": str(uuid.uuid4())}, 404, "Test session not found."),
    ({"message": 42}, 422, "message must be text"),
    ({"message": "hi", "session_id": ["x"]}, 422, "session_id must be text"),
    (["hi"], 422, "send a JSON object with your message"),
    ("hi", 422, "send a JSON object with your message"),
])
def test_a_refused_question_is_one_error_event_with_its_status(client, olga, workspace, body, status, message):
    bot = new_bot(workspace, olga)
    response = client.post(f"/chatbots/{bot.id}/preview", json=body)
    assert response.status_code == status and response.mimetype == "text/event-stream"
    [(name, data)] = events(response)
    assert name == "error" and data["code"] == status and data["message"] == message


ODD = ["x" * 5000, "\x00", "-1", "1e999", "../../etc/passwd", "", "nope", "https://a b", "#zzzzzz"]


def test_odd_input_on_every_form_is_refused_never_a_500(client, olga, workspace):
    bot = new_bot(workspace, olga)
    names = ["name", "description", "system_prompt", "knowledge_base_ids", "provider", "credential_id",
             "max_context_tokens", "max_answer_tokens", "model_params-max_sentences", "retrieval-mode",
             "retrieval-top_k", "retrieval-threshold", "fallback_message", "history_window", "citations",
             "rate_limit_per_minute", "lead_capture-enabled", "lead_capture-when", "lead_capture-after_messages",
             "lead_capture-field_0-label", "lead_capture-field_0-name", "lead_capture-field_0-type",
             "lead_capture-consent_text", "welcome_message", "appearance-color", "appearance-position",
             "appearance-avatar_url", "appearance-title", "appearance-placeholder", "allowed_origins", "status",
             "message", "session_id", "then"]
    paths = [f"/chatbots/{bot.id}/build/{step}" for step in ("instructions", "knowledge", "model", "behaviour",
                                                              "leads", "appearance")]
    paths += [f"/chatbots/{bot.id}/{path}" for path in ("status", "origins", "api-key", "preview")] + ["/chatbots/new"]
    for offset in range(len(ODD)):
        data = {name: ODD[(index + offset) % len(ODD)] for index, name in enumerate(names)}
        for path in paths:
            response = client.post(path, data=data)
            assert response.status_code in (200, 302, 404, 422), (path, offset, response.status_code)
    # Malformed JSON never reaches the page: the request boundary refuses it (400) for every route, as for the API.
    preview = client.post(f"/chatbots/{bot.id}/preview", data="{not json", content_type="application/json")
    assert preview.status_code == 400
    assert client.get("/chatbots?page=-1").status_code == 200
    assert client.get(f"/chatbots/{bot.id}/conversations?page=99999999999999999999").status_code == 200
    assert client.get("/chatbots?page=abc").status_code == 200


def test_a_real_conversation_cannot_be_continued_from_the_preview(client, olga, workspace):
    bot = new_bot(workspace, olga)
    real = conversations.start_session(bot, channel="widget")
    [(name, data)] = events(client.post(f"/chatbots/{bot.id}/preview", json={"message": "hi",
                                                                            "session_id": str(real.id)}))
    assert (name, data["code"]) == ("error", 404)


def test_the_preview_needs_the_csrf_token(make_app):
    guarded = make_app(WTF_CSRF_ENABLED=True)
    with rolled_back(guarded):
        client = guarded.test_client()
        user = person("olga@example.com")
        bot = new_bot(own_workspace(user), user)
        page = html(client.get("/login"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        client.post("/login", data={"email": "olga@example.com", "password": "Sup3r-secret!", "csrf_token": token})
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html(client.get("/chatbots"))).group(1)
        assert client.post(f"/chatbots/{bot.id}/preview", json={"message": "hi"}).status_code == 400
        answered = client.post(f"/chatbots/{bot.id}/preview", json={"message": "hi"}, headers={"X-CSRFToken": token})
        assert answered.status_code == 200 and events(answered)[-1][0] == "done"


# -- deploy --------------------------------------------------------------------------------------------------------

def test_deploy_publishes_pauses_and_resumes(client, olga, workspace):
    bot = new_bot(workspace, olga, status="draft")
    page = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert ">Publish</button>" in page and f"/widget/demo/{bot.public_id}" not in page  # not live: no demo
    published = client.post(f"/chatbots/{bot.id}/status", data={"status": "active"})
    assert published.headers["Location"] == f"/chatbots/{bot.id}/deploy"
    db.session.refresh(bot)
    assert bot.status == "active" and bot.deployed_at is not None
    page = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert "The bot is live" in page and ">Pause</button>" in page
    assert f'href="/widget/demo/{bot.public_id}"' in page
    client.post(f"/chatbots/{bot.id}/status", data={"status": "paused"})
    db.session.refresh(bot)
    assert bot.status == "paused" and ">Resume</button>" in html(client.get(f"/chatbots/{bot.id}/deploy"))
    refused = client.post(f"/chatbots/{bot.id}/status", data={"status": "gone"})
    assert refused.status_code == 422 and "Status: one of draft, active, paused, archived." in html(refused)


def test_the_snippet_and_examples_use_the_configured_address_not_the_host_header(app, client, olga, workspace):
    bot = new_bot(workspace, olga)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    client.set_cookie(cookie.key, cookie.value, domain="evil.example")  # signed in there too
    page = html(client.get(f"/chatbots/{bot.id}/deploy", base_url="http://evil.example"))
    assert "Put it on your site" in page
    origin = app.config["PUBLIC_URL"]
    assert f'&lt;script src="{origin}/widget.js" data-bot="{bot.public_id}" async&gt;&lt;/script&gt;' in page
    assert f"curl -X POST {origin}/api/v1/public/bots/{bot.public_id}/sessions" in page
    assert "evil.example" not in page
    assert 'data-copy="snippet"' in page


def test_the_demo_page_shows_a_live_bot_with_the_configured_address(app, client, olga, workspace):
    bot = new_bot(workspace, olga)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    client.set_cookie(cookie.key, cookie.value, domain="evil.example")
    page = html(client.get(f"/widget/demo/{bot.public_id}", base_url="http://evil.example"))
    origin = app.config["PUBLIC_URL"]
    assert f'<pre class="snippet" id="snippet"><code>&lt;script src="{origin}/widget.js" data-bot="{bot.public_id}"' \
        in page and "evil.example" not in page
    chatbots.update(workspace, bot, {"status": "paused"})
    assert client.get(f"/widget/demo/{bot.public_id}").status_code == 404


def test_allowed_origins_are_saved_one_per_line_and_a_bad_line_is_named(client, olga, workspace):
    bot = new_bot(workspace, olga)
    refused = client.post(f"/chatbots/{bot.id}/origins",
                          data={"allowed_origins": "https://shop.example\nshop.example/contact\n"})
    assert refused.status_code == 422
    assert error_of(html(refused), "allowed_origins") == \
        "Line 2 (“shop.example/contact”): an origin like https://www.example.com (scheme and host, no path)."
    assert bot.config["allowed_origins"] == []
    saved = client.post(f"/chatbots/{bot.id}/origins",
                        data={"allowed_origins": " https://shop.example/ \n\nhttp://127.0.0.1:8080\n"})
    assert saved.headers["Location"] == f"/chatbots/{bot.id}/deploy#sites"
    db.session.refresh(bot)
    assert bot.config["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:8080"]
    assert "https://shop.example\nhttp://127.0.0.1:8080</textarea>" in html(client.get(f"/chatbots/{bot.id}/deploy"))


def test_a_chat_key_is_shown_once_and_fills_the_examples(client, olga, workspace):
    bot = new_bot(workspace, olga)
    page = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert "Bearer YOUR_KEY" in page and "Create a chat key" in page
    created = client.post(f"/chatbots/{bot.id}/api-key", data={"name": "Website backend"})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="secret-key"><code>(pk_[^<]+)</code>', html(created)).group(1)
    assert f"Bearer {secret}" in html(created) and 'data-copy="secret-key"' in html(created)
    key = db.session.scalar(sa.select(APIKey).where(APIKey.name == "Website backend"))
    assert key.permissions == ["chat"] and secret.startswith(key.prefix)
    again = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert secret not in again and "Website backend" in again and f"{key.prefix}…" in again  # never again
    refused = client.post(f"/chatbots/{bot.id}/api-key", data={"name": ""})
    assert refused.status_code == 422 and error_of(html(refused), "name") == "Give a name of 1 to 120 characters."


def test_delete_takes_the_bot_and_its_conversations(client, olga, workspace):
    bot = new_bot(workspace, olga)
    conversations.start_session(bot, channel="widget")
    page = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert '<dialog id="confirm-delete"' in page
    deleted = client.post(f"/chatbots/{bot.id}/delete")
    assert deleted.headers["Location"] == "/chatbots"
    assert "“Helper” was deleted with its conversations." in html(client.get("/chatbots"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ChatSession)) == 0
    assert client.get(f"/chatbots/{bot.id}/deploy").status_code == 404


# -- conversations and analytics -----------------------------------------------------------------------------------

def chat(bot, question, channel="widget"):
    session = conversations.start_session(bot, channel=channel)
    answer = conversations.gather(conversations.respond(conversations.saved_bot(bot), session, question))
    return session, answer


def test_conversations_list_real_sessions_and_show_messages_citations_and_feedback(client, olga, workspace,
                                                                                   handbook):
    bot = new_bot(workspace, olga, handbook)
    session, answer = chat(bot, QUESTION)
    conversations.rate_answer(bot, answer["message_id"], 1, "Clear, thanks")
    test = conversations.test_session(conversations.saved_bot(bot))
    db.session.commit()

    page = html(client.get(f"/chatbots/{bot.id}/conversations"))
    assert f"/conversations/{session.id}" in page and f"/conversations/{test.id}" not in page
    assert "2 messages" in page and "through the widget" in page
    assert f"/conversations/{test.id}" in html(client.get(f"/chatbots/{bot.id}/conversations?tests=1"))

    shown = html(client.get(f"/chatbots/{bot.id}/conversations/{session.id}"))
    assert QUESTION in shown and PASSAGE in shown
    assert "[1] handbook.md — Handbook &gt; Holidays</li>" in shown
    assert "Rated helpful: “Clear, thanks”" in shown


def test_the_analytics_card_counts_messages_per_day_and_satisfaction(client, olga, workspace, handbook):
    bot = new_bot(workspace, olga, handbook)
    _, first = chat(bot, QUESTION)
    _, second = chat(bot, "What must laptops use?", channel="api")
    conversations.rate_answer(bot, first["message_id"], 1)
    conversations.rate_answer(bot, second["message_id"], -1)
    earlier = db.session.scalar(sa.select(ChatMessage).where(ChatMessage.role == "user").limit(1))
    earlier.created_at = now() - timedelta(days=3)
    db.session.commit()

    days = analytics.messages_per_day(bot, 30)
    assert len(days) == 30 and days[-1]["day"] == now().date() and days[0]["day"] == now().date() - timedelta(29)
    assert days[-1]["messages"] == 3 and days[-4]["messages"] == 1 and sum(d["messages"] for d in days) == 4
    with pytest.raises(Invalid):
        analytics.messages_per_day(bot, 0)

    page = html(client.get(f"/chatbots/{bot.id}/conversations"))
    assert "Messages a day, last 30 days: 4 in all" in page
    assert "<dt>Satisfaction</dt><dd>50%</dd>" in page
    assert "<strong>1</strong> helpful and\n    <strong>1</strong> not helpful" in page
    assert page.count("<rect ") == 30 and 'role="img"' in page
    assert f'<time datetime="{now().date().isoformat()}">' in page  # the table fallback, every day


def test_a_bot_with_no_conversations_says_what_to_do(client, olga, workspace):
    bot = new_bot(workspace, olga, status="draft")
    page = html(client.get(f"/chatbots/{bot.id}/conversations"))
    assert "No conversations yet" in page and "Publish the bot on Deploy" in page
    assert "No messages in these days yet." in page and "<rect" not in page


# -- who may do what -----------------------------------------------------------------------------------------------

def test_a_viewer_reads_everything_and_changes_nothing(client, workspace, olga):
    bot = new_bot(workspace, olga)
    session, _ = chat(bot, "hello")
    viewer = person("vic@example.com")
    organization = db.session.get(Organization, workspace.organization_id)
    invitations.invite_or_add(organization, olga, "owner", "vic@example.com", "member", workspace_id=workspace.id,
                              workspace_role="viewer")
    client.post("/logout")
    sign_in(client, "vic@example.com")
    client.post("/context", data={"context": f"{organization.id}/{workspace.id}"})
    assert viewer.id

    listed = html(client.get("/chatbots"))
    assert "Helper" in listed and "New chatbot" not in listed
    for path in ("build/instructions", "build/model", "build/leads", "deploy", "conversations",
                 f"conversations/{session.id}"):
        page = client.get(f"/chatbots/{bot.id}/{path}")
        assert page.status_code == 200, path
        assert "Save and continue" not in html(page) and "data-preview=" not in html(page)
    deploy = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert "Delete the chatbot" not in deploy and ">Pause</button>" not in deploy and "Create a chat key" not in deploy
    assert "<fieldset class=\"plain\" disabled>" in deploy
    for path, data in (("build/instructions", {"name": "x"}), ("status", {"status": "paused"}),
                       ("origins", {"allowed_origins": ""}), ("api-key", {"name": "k"}), ("delete", {}),
                       ("preview", {"message": "hi"})):
        assert client.post(f"/chatbots/{bot.id}/{path}", data=data).status_code == 403, path
    assert client.get("/chatbots/new").status_code == 403
    db.session.refresh(bot)
    assert bot.name == "Helper" and bot.status == "active"


def test_an_editor_builds_but_an_admin_creates_the_keys(client, workspace, olga):
    bot = new_bot(workspace, olga)
    person("eve@example.com")
    organization = db.session.get(Organization, workspace.organization_id)
    invitations.invite_or_add(organization, olga, "owner", "eve@example.com", "member", workspace_id=workspace.id,
                              workspace_role="editor")
    client.post("/logout")
    sign_in(client, "eve@example.com")
    client.post("/context", data={"context": f"{organization.id}/{workspace.id}"})
    deploy = html(client.get(f"/chatbots/{bot.id}/deploy"))
    assert "An admin of this workspace creates API keys." in deploy and "Delete the chatbot" in deploy
    assert client.post(f"/chatbots/{bot.id}/api-key", data={"name": "k"}).status_code == 403
    assert client.post(f"/chatbots/{bot.id}/status", data={"status": "paused"}).status_code == 302


ROUTES = [("get", "/chatbots/{bot}"), ("get", "/chatbots/{bot}/build/instructions"),
          ("post", "/chatbots/{bot}/build/instructions"), ("get", "/chatbots/{bot}/build/model"),
          ("post", "/chatbots/{bot}/preview"), ("get", "/chatbots/{bot}/deploy"),
          ("post", "/chatbots/{bot}/status"), ("post", "/chatbots/{bot}/origins"),
          ("post", "/chatbots/{bot}/api-key"), ("post", "/chatbots/{bot}/delete"),
          ("get", "/chatbots/{bot}/conversations"), ("get", "/chatbots/{bot}/conversations/{session}")]


def test_another_tenants_bots_and_conversations_are_the_404_page(client, olga, workspace):
    stranger = person("sam@example.com")
    theirs = new_bot(own_workspace(stranger), stranger, name="Sam's bot")
    their_session, _ = chat(theirs, "hello")
    mine = new_bot(workspace, olga)
    for method, route in ROUTES:
        for bot, session in ((theirs.id, their_session.id), ("not-a-uuid", "nope"), (mine.id, their_session.id),
                             (uuid.uuid4(), uuid.uuid4())):
            path = route.format(bot=bot, session=session)
            if bot == mine.id and "{session}" not in route:
                continue
            response = getattr(client, method)(path, data={"name": "x", "status": "paused", "message": "hi"})
            assert response.status_code == 404 and response.mimetype == "text/html", (method, path)
            assert "Sam&#39;s bot" not in html(response)
    assert client.get("/chatbots/{}/build/nonsense".format(mine.id)).status_code == 404
    assert "Sam&#39;s bot" not in html(client.get("/chatbots"))
    db.session.refresh(theirs)
    assert theirs.name == "Sam's bot" and theirs.status == "active"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageFeedback)) == 0
