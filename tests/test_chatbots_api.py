"""Chatbots through the API: drafts, settings validation, test chats grounded in a knowledge base (the offline
`extractive` provider), saved bots with their knowledge bases, sessions, analytics and plan limits; and an
OpenAI-compatible provider served by a local server."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from privex.models import ChatMessage, ChatSession, TokenUsage
from tests.helpers import add_member, sign_up

API = "/api/v1"
HANDBOOK = b"""# Handbook

## Holidays
Every employee has twenty-five days of paid holiday a year. Unused days carry over until March.

## Security
Laptops must use full-disk encryption. Report a lost laptop to the security team within one hour.
"""


@pytest.fixture()
def owner(client):
    return sign_up(client, "bea")


@pytest.fixture()
def kb(owner):
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Handbook"}).get_json()
    response = owner.post(f"{API}/knowledge-bases/{kb['id']}/documents/upload",
                          data={"file": (io.BytesIO(HANDBOOK), "handbook.md")}, content_type="multipart/form-data")
    assert response.status_code == 202
    return kb


def make_bot(person, kb=None, **config):
    response = person.post(f"{API}/chatbots", json={"name": "Helper", "config": config,
                                                    "knowledge_base_ids": [kb["id"]] if kb else []})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_draft_is_tested_then_finalized_into_a_live_bot(owner, kb, database):
    draft = owner.post(f"{API}/chatbots/drafts", json={"name": "HR bot", "knowledge_base_ids": [kb["id"]]})
    assert draft.status_code == 201, draft.get_json()
    draft = draft.get_json()
    assert draft["config"]["provider"] == "extractive" and draft["config"]["retrieval"]["mode"] == "hybrid"
    tested = owner.post(f"{API}/chatbots/drafts/{draft['id']}/test",
                        json={"message": "How many days of holiday do I get?"})
    assert tested.status_code == 200, tested.get_json()
    body = tested.get_json()
    assert "twenty-five days of paid holiday" in body["answer"]
    assert body["citations"][0]["document_name"] == "handbook.md" and body["citations"][0]["position"]["heading"]
    again = owner.post(f"{API}/chatbots/drafts/{draft['id']}/test",
                       json={"message": "And what if I lose my laptop?", "session_id": body["session_id"]})
    assert "within one hour" in again.get_json()["answer"] and again.get_json()["session_id"] == body["session_id"]
    session = database.session.get(ChatSession, body["session_id"])
    assert session.is_test and len(session.messages) == 4

    changed = owner.patch(f"{API}/chatbots/drafts/{draft['id']}", json={
        "name": "People bot", "config": {"welcome_message": "Hello!", "appearance": {"color": "#112233"}}})
    assert changed.status_code == 200
    config = changed.get_json()["config"]
    assert config["welcome_message"] == "Hello!" and config["appearance"]["color"] == "#112233"
    assert config["appearance"]["position"] == "right"  # sections merge
    bot = owner.post(f"{API}/chatbots/drafts/{draft['id']}/finalize")
    assert bot.status_code == 201, bot.get_json()
    bot = bot.get_json()
    assert bot["name"] == "People bot" and bot["status"] == "active" and bot["public_id"].startswith("bot_")
    assert bot["knowledge_base_ids"] == [kb["id"]]
    assert owner.get(f"{API}/chatbots/drafts/{draft['id']}").status_code == 404
    assert database.session.get(ChatSession, body["session_id"]) is None  # the draft's test chats went with it


@pytest.mark.parametrize("config, field", [
    ({"provider": "gpt-99"}, "provider"),
    ({"allowed_origins": ["https://example.com/path"]}, "allowed_origins"),
    ({"appearance": {"color": "blue"}}, "appearance"),
    ({"max_context_tokens": 1000, "max_answer_tokens": 1000}, "max_answer_tokens"),
    ({"model_params": {"temperature": 0.2}}, "model_params"),  # extractive has no temperature
    ({"retrieval": {"top_k": 0}}, "retrieval"),
    ({"lead_capture": {"fields": [{"name": "Bad Name!"}]}}, "lead_capture"),
    ({"credential_id": "00000000-0000-0000-0000-000000000000"}, "credential_id"),
])
def test_bad_settings_are_refused_naming_the_field(owner, config, field):
    response = owner.post(f"{API}/chatbots", json={"name": "x", "config": config})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["config"]


def test_knowledge_bases_of_another_workspace_cannot_be_attached(client, owner, kb):
    other = sign_up(client, "olga")
    theirs = other.post(f"{API}/knowledge-bases", json={"name": "Theirs"}).get_json()
    response = owner.post(f"{API}/chatbots", json={"name": "x", "knowledge_base_ids": [theirs["id"]]})
    assert response.status_code == 422 and response.get_json()["errors"]["knowledge_base_ids"] == [theirs["id"]]
    bot = make_bot(owner)
    assert owner.post(f"{API}/chatbots/{bot['id']}/kb/attach",
                      json={"knowledge_base_id": theirs["id"]}).status_code == 422


def test_attach_and_detach_knowledge_bases(owner, kb):
    bot = make_bot(owner)
    attached = owner.post(f"{API}/chatbots/{bot['id']}/kb/attach", json={"knowledge_base_id": kb["id"]})
    assert attached.status_code == 200 and attached.get_json()["knowledge_base_ids"] == [kb["id"]]
    assert owner.post(f"{API}/chatbots/{bot['id']}/kb/attach", json={"knowledge_base_id": kb["id"]}).get_json()[
        "knowledge_base_ids"] == [kb["id"]]  # attaching twice is harmless
    assert owner.delete(f"{API}/chatbots/{bot['id']}/kb/{kb['id']}").status_code == 204
    assert owner.get(f"{API}/chatbots/{bot['id']}").get_json()["knowledge_base_ids"] == []
    assert owner.delete(f"{API}/chatbots/{bot['id']}/kb/{kb['id']}").status_code == 404
    assert owner.get(f"{API}/knowledge-bases/{kb['id']}").status_code == 200


def test_without_knowledge_the_bot_answers_with_its_fallback(owner):
    bot = make_bot(owner, fallback_message="I only know the handbook.")
    answer = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "What is the capital of Peru?"})
    assert answer.status_code == 200 and answer.get_json()["answer"] == "I only know the handbook."
    assert answer.get_json()["citations"] == []


def test_list_update_pause_and_delete(owner, kb, database):
    first, second = make_bot(owner, kb), make_bot(owner)
    owner.patch(f"{API}/chatbots/{second['id']}", json={"name": "Sales", "status": "paused"})
    assert [b["name"] for b in owner.get(f"{API}/chatbots?status=paused").get_json()] == ["Sales"]
    assert [b["id"] for b in owner.get(f"{API}/chatbots?q=help").get_json()] == [first["id"]]
    owner.post(f"{API}/chatbots/{first['id']}/test", json={"message": "holiday days?"})
    assert owner.delete(f"{API}/chatbots/{first['id']}").status_code == 204
    assert owner.get(f"{API}/chatbots/{first['id']}").status_code == 404
    usage = database.session.scalars(sa.select(TokenUsage).where(TokenUsage.workspace_id == owner.workspace_id)).all()
    assert len(usage) == 1 and usage[0].chatbot_id is None  # usage outlives the bot, for billing


def test_test_chats_stay_out_of_analytics_and_sessions(owner, kb):
    bot = make_bot(owner, kb)
    owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many holiday days?"})
    analytics = owner.get(f"{API}/chatbots/{bot['id']}/analytics").get_json()
    assert analytics["sessions"] == 0 and analytics["messages"] == 0
    assert owner.get(f"{API}/chatbots/{bot['id']}/sessions").get_json() == []
    [test] = owner.get(f"{API}/chatbots/{bot['id']}/sessions?include_tests=true").get_json()
    detail = owner.get(f"{API}/chatbots/{bot['id']}/sessions/{test['id']}").get_json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["latency_ms"] >= 0 and detail["messages"][1]["completion_tokens"] > 0


def test_the_free_plan_allows_five_chatbots(owner):
    for _ in range(5):
        make_bot(owner)
    response = owner.post(f"{API}/chatbots", json={"name": "sixth"})
    assert response.status_code == 402 and "5 chatbots" in response.get_json()["message"]
    draft = owner.post(f"{API}/chatbots/drafts", json={"name": "seventh"}).get_json()
    assert owner.post(f"{API}/chatbots/drafts/{draft['id']}/finalize").status_code == 402


def test_a_viewer_reads_bots_but_cannot_change_or_test_them(client, owner):
    bot = make_bot(owner)
    viewer = add_member(owner, sign_up(client, "vic"), org_role="member", workspace_role="viewer")
    assert viewer.get(f"{API}/chatbots/{bot['id']}").status_code == 200
    assert viewer.patch(f"{API}/chatbots/{bot['id']}", json={"name": "x"}).status_code == 403
    assert viewer.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "hi"}).status_code == 403


def openai_stream(*texts, usage=True):
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]} for text in texts]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append({"choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}})
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"


def test_an_openai_compatible_server_answers_with_the_retrieved_passages(owner, kb, httpserver, database):
    credential = owner.post(f"{API}/credentials", json={"name": "vLLM", "provider": "openai",
                                                        "secret": {"api_key": "sk-local-test-key-123456"}}).get_json()
    httpserver.expect_request("/v1/chat/completions", method="POST",
                              headers={"Authorization": "Bearer sk-local-test-key-123456"}).respond_with_data(
        openai_stream("You get ", "twenty-five days [1]."), content_type="text/event-stream")
    bot = make_bot(owner, kb, provider="openai", credential_id=credential["id"],
                   model_params={"base_url": httpserver.url_for("/v1"), "model": "local-model"})
    response = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many holiday days?"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["answer"] == "You get twenty-five days [1]." and body["usage"]["prompt_tokens"] == 42
    assert body["citations"][0]["n"] == 1 and "twenty-five days" in body["citations"][0]["text"]
    sent = json.loads(httpserver.log[0][0].data)
    assert sent["model"] == "local-model" and sent["stream"] is True
    assert sent["messages"][0]["role"] == "system" and "twenty-five days of paid holiday" in sent["messages"][0][
        "content"]
    assert sent["messages"][-1] == {"role": "user", "content": "How many holiday days?"}
    message = database.session.get(ChatMessage, body["message_id"])
    assert (message.prompt_tokens, message.completion_tokens, message.model) == (42, 7, "local-model")


def test_a_model_that_fails_is_a_clear_502(owner, kb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json({"error": {"message": "bad key"}}, status=401)
    bot = make_bot(owner, kb, provider="openai", model_params={"base_url": httpserver.url_for("/v1"),
                                                               "model": "m", "api_key": "sk-wrong"})
    response = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many holiday days?"})
    assert response.status_code == 502 and "API key" in response.get_json()["message"]


def test_a_credential_that_can_no_longer_be_decrypted_is_explained_not_a_500(owner, kb, httpserver, database,
                                                                             app, monkeypatch):
    credential = owner.post(f"{API}/credentials", json={"name": "vLLM", "provider": "openai",
                                                        "secret": {"api_key": "sk-local-test-key-123456"}}).get_json()
    bot = make_bot(owner, kb, provider="openai", credential_id=credential["id"],
                   model_params={"base_url": httpserver.url_for("/v1"), "model": "local-model"})
    # The operator changed the credentials key: what was stored cannot be read any more.
    monkeypatch.setitem(app.config, "CREDENTIALS_KEYS", [Fernet.generate_key().decode()])
    response = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many holiday days?"})
    assert response.status_code == 422 and "enter its secret again" in response.get_json()["message"]
    assert httpserver.log == []


def test_usage_is_summed_per_organization_and_bot(client, owner, kb):
    first, second = make_bot(owner, kb), make_bot(owner, kb)
    for bot, times in ((first, 2), (second, 1)):
        for _ in range(times):
            assert owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "holiday days?"}).status_code == 200
    usage = owner.get(f"{API}/orgs/{owner.organization_id}/usage?days=7").get_json()
    assert usage["messages"] == 3 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert [row["chatbot_id"] for row in usage["by_chatbot"]] == [first["id"], second["id"]]
    assert usage["estimated_share"] == 1.0  # extractive counts its tokens with a tokenizer
    outsider = sign_up(client, "ozzy")
    assert outsider.get(f"{API}/orgs/{owner.organization_id}/usage").status_code == 404
    member = add_member(owner, sign_up(client, "mo"), org_role="member", workspace_role="editor")
    assert member.get(f"{API}/orgs/{owner.organization_id}/usage").status_code == 403


def test_a_provider_plugin_that_answers_nothing_is_a_502_not_a_crash(owner, register_plugin):
    from privex import hookimpl

    class Silent:
        name = "silent"
        config_schema = {"type": "object", "properties": {}}

        def chat(self, messages, params, *, context=None):
            return iter(())

    class Plugin:
        @hookimpl
        def privex_llm_providers(self):
            return [Silent()]

    register_plugin(Plugin(), name="silent-provider")
    bot = make_bot(owner, provider="silent")
    response = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "hello?"})
    assert response.status_code == 502 and "returned no events" in response.get_json()["message"]


def test_settings_validated_once_are_refused_again_when_wrong_and_each_bot_keeps_its_own(owner, client):
    """Validated settings are kept per app (a chatflow's llm node resolves them for every message): a change to one
    bot's copy never reaches another bot with the same settings, bad settings are refused every time, and a
    credential deleted since is refused although the rest of the settings were validated before."""
    settings = {"appearance": {"color": "#0f766e"}, "welcome_message": "Hi"}
    first, second = make_bot(owner, **settings), make_bot(owner, **settings)
    response = owner.patch(f"{API}/chatbots/{first['id']}", json={"config": {"appearance": {"color": "#000000"}}})
    assert response.status_code == 200, response.get_json()
    assert owner.get(f"{API}/chatbots/{second['id']}").get_json()["config"]["appearance"]["color"] == "#0f766e"
    assert make_bot(owner, **settings)["config"]["appearance"]["color"] == "#0f766e"

    for _ in range(2):
        response = owner.post(f"{API}/chatbots", json={"name": "x", "config": {"retrieval": {"top_k": 0}}})
        assert response.status_code == 422 and "retrieval" in response.get_json()["errors"]["config"]

    credential = owner.post(f"{API}/credentials", json={"name": "vLLM", "provider": "openai",
                                                        "secret": {"api_key": "sk-local-test-key-123456"}}).get_json()
    keyed = {"provider": "openai", "credential_id": credential["id"],
             "model_params": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    make_bot(owner, **keyed)
    assert owner.delete(f"{API}/credentials/{credential['id']}").status_code in (200, 204)
    response = owner.post(f"{API}/chatbots", json={"name": "y", "config": keyed})
    assert response.status_code == 422 and "credential_id" in response.get_json()["errors"]["config"]
