"""The public chat API (docs/public-api.md): who may call it (API keys, allowed origins, CORS per bot), sessions,
answers streamed as server-sent events or whole, feedback, leads and the lead gate, rate limits."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from privex.models import ChatMessage, Lead, MessageFeedback, TokenUsage
from tests.helpers import sign_up
from tests.test_chatbots_api import kb, make_bot, openai_stream  # noqa: F401 (fixture)

API = "/api/v1"
SITE = "https://shop.example"


@pytest.fixture()
def owner(client):
    return sign_up(client, "paula")


@pytest.fixture()
def bot(owner, kb):  # noqa: F811
    return make_bot(owner, kb, allowed_origins=[SITE], welcome_message="Hello from the handbook!")


def from_site(client, method, url, origin=SITE, **kwargs):
    return client.open(url, method=method, headers={"Origin": origin, **kwargs.pop("headers", {})}, **kwargs)


def start(client, bot, origin=SITE):
    response = from_site(client, "POST", f"{API}/public/bots/{bot['public_id']}/sessions", origin, json={})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["session_id"]


def ask(client, bot, session_id, message, origin=SITE, **body):
    return from_site(client, "POST", f"{API}/public/bots/{bot['public_id']}/sessions/{session_id}/messages", origin,
                     json={"message": message, **body})


def events_of(response) -> list[tuple[str, dict]]:
    events = []
    for block in response.get_data(as_text=True).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_the_public_config_shows_what_a_widget_needs(client, bot):
    config = from_site(client, "GET", f"{API}/public/bots/{bot['public_id']}").get_json()
    assert config["name"] == "Helper" and config["welcome_message"] == "Hello from the handbook!"
    assert config["appearance"]["title"] == "Helper" and config["lead_capture"]["enabled"] is False
    assert "system_prompt" not in json.dumps(config) and "allowed_origins" not in config
    assert from_site(client, "GET", f"{API}/public/bots/bot_nope").status_code == 404


def test_the_public_config_is_shown_only_where_the_bot_is_deployed(client, owner, bot):
    url = f"{API}/public/bots/{bot['public_id']}"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and "API key" in anonymous.get_json()["message"]
    assert "name" not in anonymous.get_json() and "Helper" not in anonymous.get_data(as_text=True)
    elsewhere = from_site(client, "GET", url, origin="https://phish.example")
    assert elsewhere.status_code == 403 and "Helper" not in elsewhere.get_data(as_text=True)
    # The app's own page (the demo): a same-origin GET carries no Origin header, only Sec-Fetch-Site.
    own_page = client.get(url, headers={"Sec-Fetch-Site": "same-origin"})
    assert own_page.status_code == 200 and own_page.get_json()["name"] == "Helper"
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 401
    key = owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "server", "permissions": ["chat"]}).get_json()["key"]
    assert client.get(url, headers={"X-API-Key": key}).get_json()["name"] == "Helper"
    stranger = sign_up(client, "stranger")
    foreign = stranger.post(f"{API}/workspaces/{stranger.workspace_id}/api-keys",
                            json={"name": "server", "permissions": ["chat"]}).get_json()["key"]
    assert client.get(url, headers={"X-API-Key": foreign}).status_code == 403
    read_only = owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                           json={"name": "reader", "permissions": ["read"]}).get_json()["key"]
    assert client.get(url, headers={"Authorization": f"Bearer {read_only}"}).status_code == 403


def test_a_visitor_on_an_allowed_site_gets_a_grounded_cited_answer(client, bot, database):
    session_id = start(client, bot)
    response = ask(client, bot, session_id, "How many days of holiday do I get?")
    assert response.status_code == 200, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    body = response.get_json()
    assert "twenty-five days of paid holiday" in body["answer"]
    assert body["citations"][0]["document_name"] == "handbook.md" and body["latency_ms"] >= 0
    stored = database.session.scalars(sa.select(ChatMessage).where(ChatMessage.session_id == session_id)
                                      .order_by(ChatMessage.created_at)).all()
    assert [(m.role, m.content) for m in stored] == [("user", "How many days of holiday do I get?"),
                                                     ("assistant", body["answer"])]
    assert stored[1].citations == body["citations"] and stored[1].completion_tokens > 0
    usage = database.session.scalar(sa.select(TokenUsage).where(TokenUsage.message_id == stored[1].id))
    assert usage.provider == "extractive" and usage.estimated and usage.organization_id is not None


def test_answers_stream_as_server_sent_events(client, bot):
    session_id = start(client, bot)
    response = ask(client, bot, session_id, "What if I lose my laptop?", stream=True)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = events_of(response)
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"delta"} and len(kinds) > 3
    answer = "".join(data["text"] for kind, data in events if kind == "delta")
    assert "within one hour" in answer
    assert events[-1][1]["message_id"] and events[-1][1]["session_id"] == session_id


def test_a_stream_read_after_the_request_ended_still_stores_the_answer(client, bot, database):
    session_id = start(client, bot)
    response = ask(client, bot, session_id, "What if I lose my laptop?", stream=True)
    database.session.remove()  # what a real server does first: end the request's app context, and its session
    events = events_of(response)
    assert [kind for kind, _ in events][-2:] == ["citations", "done"], events[-1]
    stored = database.session.scalars(sa.select(ChatMessage).where(ChatMessage.session_id == session_id)
                                      .order_by(ChatMessage.created_at)).all()
    assert [message.role for message in stored] == ["user", "assistant"]
    assert str(stored[1].id) == events[-1][1]["message_id"] and stored[1].session.last_message_at is not None


def test_the_model_hears_the_last_history_window_messages_of_the_conversation(client, owner, kb,  # noqa: F811
                                                                              httpserver):
    # The history is read in the statement that reads the bot and the session, with the window of the bot as it
    # is at that message: an edit of the window shows at the very next one.
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        openai_stream("Twenty-five [1]."), content_type="text/event-stream")
    bot = make_bot(owner, kb, allowed_origins=[SITE], provider="openai", history_window=3,
                   max_context_tokens=100_000,  # room for every passage and the whole window
                   model_params={"base_url": httpserver.url_for("/v1"), "model": "m"})
    session_id = start(client, bot)

    def heard(question, **body):
        response = ask(client, bot, session_id, question, **body)
        assert response.status_code == 200 and "Twenty-five" in response.get_data(as_text=True)  # the stream read
        return [(message["role"], message["content"]) for message in json.loads(httpserver.log[-1][0].data)[
            "messages"] if message["role"] != "system"]

    assert heard("first?") == [("user", "first?")]
    assert heard("second?", stream=True) == [("user", "first?"), ("assistant", "Twenty-five [1]."),
                                             ("user", "second?")]
    assert heard("third?") == [("assistant", "Twenty-five [1]."), ("user", "second?"),
                               ("assistant", "Twenty-five [1]."), ("user", "third?")]
    assert owner.patch(f"{API}/chatbots/{bot['id']}", json={"config": {"history_window": 0}}).status_code == 200
    assert heard("fourth?") == [("user", "fourth?")]
    assert owner.patch(f"{API}/chatbots/{bot['id']}", json={"config": {"history_window": 1}}).status_code == 200
    assert heard("fifth?", stream=True) == [("assistant", "Twenty-five [1]."), ("user", "fifth?")]


def test_sites_not_allowed_and_callers_without_credentials_are_refused(client, owner, bot):
    refused = from_site(client, "POST", f"{API}/public/bots/{bot['public_id']}/sessions", "https://evil.example",
                        json={})
    assert refused.status_code == 403 and "https://evil.example" in refused.get_json()["message"]
    assert refused.headers["Access-Control-Allow-Origin"] == "https://evil.example"  # the reason, readable
    config = client.get(f"{API}/public/bots/{bot['public_id']}", headers={"Origin": "https://evil.example"})
    assert config.status_code == 403 and set(config.get_json()) == {"code", "message", "errors"}  # no bot in it
    anonymous = client.post(f"{API}/public/bots/{bot['public_id']}/sessions", json={})
    assert anonymous.status_code == 401
    preflight = client.options(f"{API}/public/bots/{bot['public_id']}/sessions",
                               headers={"Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code in (200, 204) and preflight.headers["Access-Control-Allow-Origin"] == SITE


def test_servers_use_an_api_key_with_the_chat_scope(client, owner, bot):
    def key(scopes):
        return owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                          json={"name": "+".join(scopes), "permissions": scopes}).get_json()["key"]

    chat_key, read_key = key(["chat"]), key(["read"])
    url = f"{API}/public/bots/{bot['public_id']}/sessions"
    assert client.post(url, json={}, headers={"Authorization": f"Bearer {read_key}"}).status_code == 403
    started = client.post(url, json={"external_user_id": "crm-42"}, headers={"Authorization": f"Bearer {chat_key}"})
    assert started.status_code == 201
    session_id = started.get_json()["session_id"]
    answered = client.post(f"{url}/{session_id}/messages", json={"message": "holiday days?"},
                           headers={"X-API-Key": chat_key})
    assert answered.status_code == 200 and "twenty-five" in answered.get_json()["answer"]
    stranger = sign_up(client, "stan")
    their_key = stranger.post(f"{API}/workspaces/{stranger.workspace_id}/api-keys",
                              json={"name": "x", "permissions": ["chat"]}).get_json()["key"]
    assert client.post(url, json={}, headers={"Authorization": f"Bearer {their_key}"}).status_code == 403
    assert client.post(url, json={}, headers={"Authorization": "Bearer pk_bogus.key"}).status_code == 401


def test_a_key_revoked_deleted_or_narrowed_is_refused_at_the_very_next_message(client, owner, bot, database):
    # The message route reads the key in the statement that reads the bot and the session: nothing is kept of it.
    from privex.models import APIKey

    def key():
        created = owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                             json={"name": "server", "permissions": ["chat"]}).get_json()
        return created["id"], created["key"]

    def send(secret, message="holiday days?"):
        return client.post(f"{API}/public/bots/{bot['public_id']}/sessions/{session_id}/messages",
                           json={"message": message}, headers={"X-API-Key": secret})

    (revoked_id, revoked), (deleted_id, deleted), (narrowed_id, narrowed) = key(), key(), key()
    session_id = client.post(f"{API}/public/bots/{bot['public_id']}/sessions", json={},
                             headers={"Authorization": f"Bearer {revoked}"}).get_json()["session_id"]
    assert [send(secret).status_code for secret in (revoked, deleted, narrowed)] == [200, 200, 200]
    assert owner.delete(f"{API}/workspaces/{owner.workspace_id}/api-keys/{revoked_id}").status_code == 204
    database.session.execute(sa.delete(APIKey).where(APIKey.id == deleted_id))
    database.session.execute(sa.update(APIKey).where(APIKey.id == narrowed_id).values(permissions=["read"]))
    database.session.commit()
    refused = send(revoked)
    assert refused.status_code == 401 and "revoked" in refused.get_json()["message"]
    assert send(deleted).status_code == 401
    assert send(narrowed).status_code == 403
    assert send(narrowed[:-1] + "x").status_code == 401  # its prefix with another secret
    stranger = sign_up(client, "stan")
    their_key = stranger.post(f"{API}/workspaces/{stranger.workspace_id}/api-keys",
                              json={"name": "x", "permissions": ["chat"]}).get_json()["key"]
    assert send(their_key).status_code == 403
    asked = database.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(
        ChatMessage.session_id == session_id, ChatMessage.role == "user"))
    assert asked == 3  # nothing refused was stored


def test_feedback_replaces_an_earlier_vote(client, bot, database):
    session_id = start(client, bot)
    message_id = ask(client, bot, session_id, "holiday days?").get_json()["message_id"]
    url = f"{API}/public/bots/{bot['public_id']}/messages/{message_id}/feedback"
    assert from_site(client, "POST", url, json={"rating": 1}).get_json() == {"message_id": message_id, "rating": 1}
    assert from_site(client, "POST", url, json={"rating": -1, "comment": "too short"}).status_code == 200
    feedback = database.session.scalars(sa.select(MessageFeedback).where(MessageFeedback.message_id == message_id))
    assert [(f.rating, f.comment) for f in feedback] == [(-1, "too short")]
    assert from_site(client, "POST", url, json={"rating": 5}).status_code == 422
    other = f"{API}/public/bots/{bot['public_id']}/messages/00000000-0000-0000-0000-000000000000/feedback"
    assert from_site(client, "POST", other, json={"rating": 1}).status_code == 404


def test_a_bot_that_asks_for_a_lead_first_gets_one_before_answering(client, owner, kb, database):  # noqa: F811
    bot = make_bot(owner, kb, allowed_origins=[SITE], lead_capture={
        "enabled": True, "when": "before", "consent_text": "You may email me about my question.",
        "fields": [{"name": "email", "type": "email", "required": True}, {"name": "company", "required": False}]})
    session_id = start(client, bot)
    gated = ask(client, bot, session_id, "holiday days?")
    assert gated.status_code == 428 and gated.get_json()["errors"] == {"lead": ["required"]}
    leads = f"{API}/public/bots/{bot['public_id']}/leads"
    missing = from_site(client, "POST", leads, json={"session_id": session_id, "consent": True})
    assert missing.status_code == 422 and missing.get_json()["errors"] == {"email": ["required"]}
    bad = from_site(client, "POST", leads, json={"session_id": session_id, "email": "not-an-email", "consent": True})
    assert bad.status_code == 422 and "email" in bad.get_json()["errors"]
    no_consent = from_site(client, "POST", leads, json={"session_id": session_id, "email": "ann@example.com"})
    assert no_consent.status_code == 422 and "consent" in no_consent.get_json()["errors"]
    created = from_site(client, "POST", leads, json={"session_id": session_id, "email": "Ann@Example.com",
                                                     "custom_fields": {"company": "Acme"}, "consent": True})
    assert created.status_code == 201
    lead = database.session.get(Lead, created.get_json()["lead_id"])
    assert (lead.email, lead.custom_fields, lead.consent, lead.channel) == (
        "Ann@example.com", {"company": "Acme"}, True, "widget")
    assert str(lead.chatbot_id) == bot["id"] and str(lead.session_id) == session_id
    assert lead.consent_text == "You may email me about my question."
    assert ask(client, bot, session_id, "holiday days?").status_code == 200


def test_a_bot_can_ask_for_a_lead_after_some_messages(client, owner, kb):  # noqa: F811
    bot = make_bot(owner, kb, allowed_origins=[SITE], lead_capture={"enabled": True, "when": "after",
                                                                    "after_messages": 1})
    session_id = start(client, bot)
    assert ask(client, bot, session_id, "holiday days?").status_code == 200
    assert ask(client, bot, session_id, "and laptops?").status_code == 428


def test_the_bot_rate_limit_answers_429(client, owner, kb, app):  # noqa: F811
    bot = make_bot(owner, kb, allowed_origins=[SITE], rate_limit_per_minute=2)
    session_id = start(client, bot)
    assert ask(client, bot, session_id, "holiday days?").status_code == 200
    assert ask(client, bot, session_id, "holiday days?").status_code == 200
    limited = ask(client, bot, session_id, "holiday days?")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["Access-Control-Expose-Headers"] == "Retry-After"
    redis = app.extensions["privex"].redis
    counters = redis.keys(f"privex:rate:bot:{bot['id']}:*")
    assert len(counters) == 1 and 60 < redis.ttl(counters[0]) <= 120  # counted this minute, forgotten after the next


def test_a_paused_bot_is_not_reachable(client, owner, bot):
    owner.patch(f"{API}/chatbots/{bot['id']}", json={"status": "paused"})
    assert client.get(f"{API}/public/bots/{bot['public_id']}").status_code == 404
    assert from_site(client, "POST", f"{API}/public/bots/{bot['public_id']}/sessions", json={}).status_code == 404


def test_sessions_belong_to_their_bot(client, owner, kb, bot):  # noqa: F811
    other = make_bot(owner, kb, allowed_origins=[SITE])
    session_id = start(client, other)
    assert ask(client, bot, session_id, "holiday days?").status_code == 404


def test_analytics_count_real_conversations(client, owner, bot):
    session_id = start(client, bot)
    message_id = ask(client, bot, session_id, "holiday days?").get_json()["message_id"]
    ask(client, bot, session_id, "what is the weather on Mars?")
    from_site(client, "POST", f"{API}/public/bots/{bot['public_id']}/messages/{message_id}/feedback",
              json={"rating": 1})
    owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "holiday days?"})
    analytics = owner.get(f"{API}/chatbots/{bot['id']}/analytics").get_json()
    assert analytics["sessions"] == 1 and analytics["messages"] == 4 and analytics["answers"] == 2
    assert analytics["thumbs_up"] == 1 and analytics["unanswered"] == 1 and analytics["completion_tokens"] > 0
