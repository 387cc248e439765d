"""Chatflows through the API, with the real node types, PostgreSQL, Redis and a knowledge base ingested for real:
drafts, validation with per-node errors, the working copy against published versions, rollback, test runs with a
trace per node, execution as a stored conversation, human input across messages, and deployment through the same
public API and widget routes as a chatbot."""

from __future__ import annotations

import json

import sqlalchemy as sa

from privex.models import ChatMessage, ChatSession, Chatflow, ChatflowVersion, Lead, TokenUsage
from tests.helpers import sign_up
from tests.test_chatbots_api import kb, openai_stream, owner  # noqa: F401 (fixtures)
from tests.test_public_api import SITE, events_of, from_site

API = "/api/v1"


def start_response(text="You said: {{ input }}"):
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "answer", "type": "response", "config": {"text": text}}]
    edges = [{"source": "start", "source_port": "out", "target": "answer", "target_port": "in"}]
    return nodes, edges


def grounded(kb_id):
    """start -> knowledge base -> condition (found anything?) -> response with citations | sorry."""
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        {"id": "search", "type": "knowledge_base",
         "config": {"knowledge_bases": [kb_id], "query": "{{ input }}", "mode": "hybrid", "top_k": 2}},
        {"id": "check", "type": "condition",
         "config": {"cases": [{"left": "{{ search.text }}", "op": "is_not_empty", "port": "if"}]}},
        {"id": "cite", "type": "response", "config": {"text": "From the handbook: {{ search.text }}",
                                                      "citations_from": "search"}},
        {"id": "sorry", "type": "response", "config": {"text": "I found nothing."}},
    ]
    edges = [{"source": "start", "source_port": "out", "target": "search", "target_port": "in"},
             {"source": "search", "source_port": "out", "target": "check", "target_port": "in"},
             {"source": "check", "source_port": "if", "target": "cite", "target_port": "in"},
             {"source": "check", "source_port": "else", "target": "sorry", "target_port": "in"}]
    return nodes, edges


def create(person, name="Flow", nodes=None, edges=None, **extra):
    body = {"name": name, **extra}
    if nodes is not None:
        body.update(nodes=nodes, edges=edges)
    response = person.post(f"{API}/chatflows", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def publish(person, flow, note=None):
    response = person.post(f"{API}/chatflows/{flow['id']}/publish", json={"note": note} if note else {})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_draft_keeps_an_unfinished_graph_and_finalizing_publishes_version_one(owner):  # noqa: F811
    draft = owner.post(f"{API}/chatflows/drafts", json={"name": "Greeter"})
    assert draft.status_code == 201, draft.get_json()
    draft = draft.get_json()
    assert [node["type"] for node in draft["nodes"]] == ["start", "response"] and draft["problems"] is None
    assert all(node["version"] == "1" for node in draft["nodes"])
    # An unfinished graph is kept (nothing lost), with what finalizing would refuse.
    half = owner.patch(f"{API}/chatflows/drafts/{draft['id']}", json={"nodes": draft["nodes"][:1], "edges": []})
    assert half.status_code == 200
    assert "The chatflow needs a response node." in half.get_json()["problems"]["graph"]
    refused = owner.post(f"{API}/chatflows/drafts/{draft['id']}/finalize")
    assert refused.status_code == 422 and "response node" in str(refused.get_json()["errors"])
    assert owner.get(f"{API}/chatflows/drafts/{draft['id']}").get_json()["nodes"] == draft["nodes"][:1]
    nodes, edges = start_response("Hello {{ input }}!")
    owner.patch(f"{API}/chatflows/drafts/{draft['id']}", json={"nodes": nodes, "edges": edges})
    flow = owner.post(f"{API}/chatflows/drafts/{draft['id']}/finalize")
    assert flow.status_code == 201, flow.get_json()
    flow = flow.get_json()
    assert flow["version"] == 1 and flow["name"] == "Greeter" and flow["public_id"].startswith("bot_")
    assert owner.get(f"{API}/chatflows/drafts/{draft['id']}").status_code == 404
    ran = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "Ada"}).get_json()
    assert ran["answer"] == "Hello Ada!" and ran["finish_reason"] == "stop"


def test_saving_an_invalid_graph_answers_422_per_node_and_changes_nothing(owner):  # noqa: F811
    flow = create(owner)
    nodes, edges = start_response()
    bad_nodes = nodes + [{"id": "mystery", "type": "teleport", "config": {}},
                         {"id": "cond", "type": "condition", "config": {"cases": "yes"}}]
    bad_edges = edges + [{"source": "answer", "source_port": "nowhere", "target": "ghost", "target_port": "in"}]
    response = owner.patch(f"{API}/chatflows/{flow['id']}", json={"nodes": bad_nodes, "edges": bad_edges})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert "teleport" in errors["nodes"]["mystery"][0] and "installed" in errors["nodes"]["mystery"][0]
    assert "condition" in errors["nodes"]["mystery"][0]  # the installed types are named
    assert any("cases" in message for message in errors["nodes"]["cond"])
    assert "ghost" in " ".join(errors["edges"]["1"])
    assert owner.get(f"{API}/chatflows/{flow['id']}").get_json()["nodes"] == flow["nodes"]
    # A cycle without a loop node, and a node no path reaches.
    cyclic = nodes + [{"id": "v", "type": "variable", "config": {"values": {"a": "1"}}},
                      {"id": "island", "type": "variable", "config": {"values": {"b": "2"}}}]
    cyclic_edges = edges + [{"source": "start", "source_port": "out", "target": "v", "target_port": "in"},
                            {"source": "v", "source_port": "out", "target": "v", "target_port": "in"}]
    errors = owner.patch(f"{API}/chatflows/{flow['id']}", json={"nodes": cyclic, "edges": cyclic_edges}).get_json()
    assert "cycle" in " ".join(errors["errors"]["nodes"]["v"])
    assert "No path from the start node" in " ".join(errors["errors"]["nodes"]["island"])
    for body in ({"nodes": "all of them"}, {"nodes": [1, 2]}, {"edges": [{"source": ["x"]}]}, {"config": []}):
        assert owner.patch(f"{API}/chatflows/{flow['id']}", json=body).status_code == 422, body


def test_saving_never_changes_the_deployed_version_and_rollback_brings_an_old_one_back(client, owner,  # noqa: F811
                                                                                       database):
    flow = create(owner, "Versions", *start_response("v1: {{ input }}"), config={"allowed_origins": [SITE]})
    assert owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "x"}).status_code == 409
    publish(owner, flow, "first")
    nodes, edges = start_response("v2: {{ input }}")
    assert owner.patch(f"{API}/chatflows/{flow['id']}", json={"nodes": nodes, "edges": edges}).status_code == 200
    # The working copy changed; visitors still get version 1 until it is published.
    assert owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "a"}).get_json()["answer"] == "v1: a"
    tested = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "a"}).get_json()
    assert tested["answer"] == "v2: a" and tested["status"] == "done"
    second = publish(owner, flow, "second")
    assert second["number"] == 2 and second["deployed"] is True
    assert owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "b"}).get_json()["answer"] == "v2: b"
    versions = owner.get(f"{API}/chatflows/{flow['id']}/versions").get_json()
    assert [(v["number"], v["note"], v["deployed"]) for v in versions] == [(2, "second", True), (1, "first", False)]
    rolled = owner.post(f"{API}/chatflows/{flow['id']}/rollback", json={"version": 1})
    assert rolled.status_code == 200 and rolled.get_json()["number"] == 1
    assert owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "c"}).get_json()["answer"] == "v1: c"
    # Rolled back for visitors of the public API too (the same conversation service as a chatbot).
    session = from_site(client, "POST", f"{API}/public/bots/{flow['public_id']}/sessions", json={}).get_json()
    said = from_site(client, "POST", f"{API}/public/bots/{flow['public_id']}/sessions/{session['session_id']}"
                     "/messages", json={"message": "d"})
    assert said.status_code == 200 and said.get_json()["answer"] == "v1: d"
    assert owner.get(f"{API}/chatflows/{flow['id']}").get_json()["nodes"][1]["config"]["text"] == "v2: {{ input }}"
    assert owner.post(f"{API}/chatflows/{flow['id']}/rollback", json={"version": 7}).status_code == 404
    assert owner.post(f"{API}/chatflows/{flow['id']}/rollback", json={"version": "one"}).status_code == 422
    stored = database.session.scalars(sa.select(ChatflowVersion.number).where(
        ChatflowVersion.chatflow_id == flow["id"]).order_by(ChatflowVersion.number)).all()
    assert stored == [1, 2]


def test_a_grounded_flow_answers_from_the_knowledge_base_and_keeps_its_trace(owner, kb, database):  # noqa: F811
    flow = create(owner, "Handbook flow", *grounded(kb["id"]))
    tested = owner.post(f"{API}/chatflows/{flow['id']}/test",
                        json={"message": "How many days of paid holiday?"}).get_json()
    assert tested["status"] == "done" and "twenty-five days" in tested["answer"], tested
    assert [entry["node_id"] for entry in tested["trace"]] == ["start", "search", "check", "cite"]
    assert tested["trace"][2]["outputs"]["matched"] == "if" and tested["citations"][0]["document_name"] == \
        "handbook.md"
    assert all(entry["duration_ms"] >= 0 and entry["error"] is None for entry in tested["trace"])
    publish(owner, flow)
    ran = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "lost laptop?"}).get_json()
    assert "within one hour" in ran["answer"] and ran["citations"]
    assert [entry["node_id"] for entry in ran["trace"]] == ["start", "search", "check", "cite"]
    message = database.session.get(ChatMessage, ran["message_id"])
    assert message.metadata_["chatflow_version"] == 1 and len(message.metadata_["trace"]) == 4
    session = database.session.get(ChatSession, ran["session_id"])
    assert session.chatflow_id is not None and session.chatbot_id is None and not session.is_test
    listed = owner.get(f"{API}/chatflows/{flow['id']}/sessions").get_json()
    assert [item["id"] for item in listed] == [ran["session_id"]]
    detail = owner.get(f"{API}/chatflows/{flow['id']}/sessions/{ran['session_id']}").get_json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["chatflow_version"] == 1 and len(detail["messages"][1]["trace"]) == 4


def test_a_failing_node_answers_with_the_fallback_and_the_test_run_names_it(owner, database):  # noqa: F811
    nodes, edges = start_response("{{ missing.value }}")
    flow = create(owner, "Broken", nodes, edges, config={"fallback_message": "Sorry, try later."})
    tested = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "hi"}).get_json()
    assert tested["status"] == "error" and tested["error"]["node_id"] == "answer"
    assert "missing" in tested["error"]["message"] and tested["trace"][-1]["error"]
    publish(owner, flow)
    ran = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "hi"})
    assert ran.status_code == 200
    ran = ran.get_json()
    assert ran["answer"] == "Sorry, try later." and ran["finish_reason"] == "error" and "missing" in ran["flow_error"]
    assert database.session.get(ChatMessage, ran["message_id"]).metadata_["flow_error"]["node_id"] == "answer"


def test_human_input_pauses_the_conversation_and_the_next_message_resumes_it(owner, database):  # noqa: F811
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "ask", "type": "human_input", "config": {"question": "What is your name?"}},
             {"id": "remember", "type": "memory", "config": {"action": "set", "key": "name",
                                                             "value": "{{ ask.answer }}"}},
             {"id": "answer", "type": "response", "config": {"text": "Nice to meet you, {{ ask.answer }}."}}]
    edges = [{"source": "start", "source_port": "out", "target": "ask", "target_port": "in"},
             {"source": "ask", "source_port": "out", "target": "remember", "target_port": "in"},
             {"source": "remember", "source_port": "out", "target": "answer", "target_port": "in"}]
    flow = create(owner, "Names", nodes, edges)
    paused = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "hello"}).get_json()
    assert paused["status"] == "paused" and paused["question"] == "What is your name?"
    resumed = owner.post(f"{API}/chatflows/{flow['id']}/test",
                         json={"state": paused["state"], "answer": "Grace"}).get_json()
    assert resumed["answer"] == "Nice to meet you, Grace." and resumed["status"] == "done"
    publish(owner, flow)
    first = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "hello"}).get_json()
    assert first["answer"] == "What is your name?" and first["finish_reason"] == "awaiting_input"
    second = owner.post(f"{API}/chatflows/{flow['id']}/execute",
                        json={"message": "Linus", "session_id": first["session_id"]}).get_json()
    assert second["answer"] == "Nice to meet you, Linus." and second["finish_reason"] == "stop"
    session = database.session.get(ChatSession, first["session_id"])
    assert session.user_metadata["flow"]["values"] == {"name": "Linus"}
    assert session.user_metadata["flow"]["paused"] is None
    # The next message starts the flow afresh.
    third = owner.post(f"{API}/chatflows/{flow['id']}/execute",
                       json={"message": "again", "session_id": first["session_id"]}).get_json()
    assert third["answer"] == "What is your name?"


def test_a_published_flow_deploys_like_a_chatbot_through_the_public_api(client, owner, database):  # noqa: F811
    flow = create(owner, "Public flow", *start_response("Echo: {{ input }}"),
                  config={"allowed_origins": [SITE], "welcome_message": "Hi from a flow",
                          "lead_capture": {"enabled": True, "when": "before"}})
    url = f"{API}/public/bots/{flow['public_id']}"
    assert from_site(client, "GET", url).status_code == 404  # not published yet
    publish(owner, flow)
    shown = from_site(client, "GET", url).get_json()
    assert shown["welcome_message"] == "Hi from a flow" and shown["name"] == "Public flow"
    assert from_site(client, "GET", url, origin="https://evil.example").status_code == 403
    session_id = from_site(client, "POST", f"{url}/sessions", json={}).get_json()["session_id"]
    gated = from_site(client, "POST", f"{url}/sessions/{session_id}/messages", json={"message": "hi"})
    assert gated.status_code in (403, 409, 428) and "contact" in gated.get_json()["message"]
    lead = from_site(client, "POST", f"{url}/leads", json={"session_id": session_id, "email": "a@example.com",
                                                           "consent": True})
    assert lead.status_code == 201, lead.get_json()
    assert database.session.scalar(sa.select(Lead.chatflow_id)) is not None
    streamed = from_site(client, "POST", f"{url}/sessions/{session_id}/messages",
                         json={"message": "streams", "stream": True})
    events = events_of(streamed)
    assert "".join(data["text"] for kind, data in events if kind == "delta") == "Echo: streams"
    assert [kind for kind, _ in events][-2:] == ["citations", "done"]
    message_id = events[-1][1]["message_id"]
    rated = from_site(client, "POST", f"{url}/messages/{message_id}/feedback", json={"rating": 1})
    assert rated.status_code == 200
    owner.patch(f"{API}/chatflows/{flow['id']}", json={"status": "paused"})
    assert from_site(client, "POST", f"{url}/sessions", json={}).status_code == 404


def test_a_server_chats_with_a_flow_by_api_key_until_the_key_is_revoked(client, owner):  # noqa: F811
    flow = create(owner, "Keyed flow", *start_response("Echo: {{ input }}"))
    publish(owner, flow)
    created = owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                         json={"name": "server", "permissions": ["chat"]}).get_json()
    headers = {"X-API-Key": created["key"]}
    url = f"{API}/public/bots/{flow['public_id']}/sessions"
    session_id = client.post(url, json={}, headers=headers).get_json()["session_id"]
    said = client.post(f"{url}/{session_id}/messages", json={"message": "hi"}, headers=headers)
    assert said.status_code == 200 and said.get_json()["answer"] == "Echo: hi"
    assert owner.delete(f"{API}/workspaces/{owner.workspace_id}/api-keys/{created['id']}").status_code == 204
    refused = client.post(f"{url}/{session_id}/messages", json={"message": "hi"}, headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.get_json()["message"]


def test_another_workspace_cannot_see_or_touch_a_chatflow(client, owner):  # noqa: F811
    flow = create(owner, "Private")
    draft = owner.post(f"{API}/chatflows/drafts", json={"name": "Mine"}).get_json()
    stranger = sign_up(client, "mallory")
    for method, path, body in [("get", "", None), ("patch", "", {"name": "x"}), ("delete", "", None),
                               ("post", "/publish", {}), ("get", "/versions", None),
                               ("post", "/rollback", {"version": 1}), ("post", "/test", {"message": "x"}),
                               ("post", "/execute", {"message": "x"}), ("get", "/sessions", None)]:
        response = getattr(stranger, method)(f"{API}/chatflows/{flow['id']}{path}",
                                             **({"json": body} if body is not None else {}))
        assert response.status_code == 404, (method, path, response.status_code)
    for method, path in [("get", ""), ("patch", ""), ("post", "/finalize"), ("delete", "")]:
        response = getattr(stranger, method)(f"{API}/chatflows/drafts/{draft['id']}{path}",
                                             **({"json": {"name": "x"}} if method == "patch" else {}))
        assert response.status_code == 404, (method, path)
    assert stranger.get(f"{API}/chatflows").get_json() == []
    # A knowledge base of another workspace cannot be searched from a flow.
    their_kb = stranger.post(f"{API}/knowledge-bases", json={"name": "Theirs"}).get_json()
    nodes, edges = grounded(their_kb["id"])
    tested = owner.post(f"{API}/chatflows/{flow['id']}/test",
                        json={"message": "x", "nodes": nodes, "edges": edges}).get_json()
    assert tested["status"] == "error" and "not in this workspace" in tested["error"]["message"]


def test_listing_filters_and_the_node_type_catalogue(owner, database):  # noqa: F811
    published = create(owner, "Sales assistant")
    create(owner, "Support triage")
    publish(owner, published)
    names = [flow["name"] for flow in owner.get(f"{API}/chatflows").get_json()]
    assert sorted(names) == ["Sales assistant", "Support triage"]
    assert [f["name"] for f in owner.get(f"{API}/chatflows?q=SALES").get_json()] == ["Sales assistant"]
    assert [f["name"] for f in owner.get(f"{API}/chatflows?published=false").get_json()] == ["Support triage"]
    catalogue = {entry["type"]: entry for entry in owner.get(f"{API}/chatflows/node-types").get_json()}
    assert {"start", "response", "condition", "llm", "knowledge_base", "loop", "human_input"} <= set(catalogue)
    assert catalogue["condition"]["outputs"][-1] == "else" and catalogue["start"]["role"] == "start"
    assert catalogue["response"]["config_schema"]["required"] == ["text"]
    assert owner.delete(f"{API}/chatflows/{published['id']}").status_code == 204
    assert database.session.get(Chatflow, published["id"]) is None
    assert database.session.scalar(sa.select(sa.func.count()).select_from(ChatflowVersion)) == 0


def test_an_llm_flow_streams_the_model_through_the_public_api_and_counts_its_tokens(client, owner, kb,  # noqa: F811
                                                                                     httpserver, database):
    """kb -> llm (an OpenAI-compatible server with a stored credential) -> condition -> response streaming the
    model's text as it comes: the flow the issue names, deployed through the public API."""
    credential = owner.post(f"{API}/credentials", json={"name": "vLLM", "provider": "openai",
                                                        "secret": {"api_key": "sk-local-test-key-123456"}}).get_json()
    httpserver.expect_request("/v1/chat/completions", method="POST",
                              headers={"Authorization": "Bearer sk-local-test-key-123456"}).respond_with_data(
        openai_stream("You get ", "twenty-five ", "days."), content_type="text/event-stream")
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        {"id": "search", "type": "knowledge_base",
         "config": {"knowledge_bases": [kb["id"]], "query": "{{ input }}", "top_k": 2}},
        {"id": "write", "type": "llm", "config": {"system": "Answer from: {{ search.text }}", "prompt": "{{ input }}"}},
        {"id": "answer", "type": "response", "config": {"text": "", "stream_from": "write",
                                                        "citations_from": "search"}},
    ]
    edges = [{"source": a, "source_port": "out", "target": b, "target_port": "in"}
             for a, b in (("start", "search"), ("search", "write"), ("write", "answer"))]
    flow = create(owner, "LLM flow", nodes, edges, config={
        "provider": "openai", "credential_id": credential["id"], "allowed_origins": [SITE],
        "model_params": {"base_url": httpserver.url_for("/v1"), "model": "local-model"}})
    publish(owner, flow)
    url = f"{API}/public/bots/{flow['public_id']}"
    session_id = from_site(client, "POST", f"{url}/sessions", json={}).get_json()["session_id"]
    events = events_of(from_site(client, "POST", f"{url}/sessions/{session_id}/messages",
                                 json={"message": "How many holiday days?", "stream": True}))
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert deltas == ["You get ", "twenty-five ", "days."]  # the model's pieces, as they came
    done = events[-1][1]
    assert done["usage"] == {"prompt_tokens": 42, "completion_tokens": 7}
    sent = json.loads(httpserver.log[0][0].data)
    assert "twenty-five days of paid holiday" in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "How many holiday days?"}
    usage = database.session.scalars(sa.select(TokenUsage).where(TokenUsage.chatflow_id == flow["id"])).one()
    assert (usage.prompt_tokens, usage.completion_tokens, usage.model) == (42, 7, "local-model")
    message = database.session.get(ChatMessage, done["message_id"])
    assert message.content == "You get twenty-five days." and message.citations[0]["document_name"] == "handbook.md"


def test_a_chatflows_analytics_count_its_real_conversations_only(owner):  # noqa: F811
    flow = create(owner, "Counted", *start_response("ok"))
    publish(owner, flow)
    first = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "one"}).get_json()
    owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "two", "session_id": first["session_id"]})
    owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "not counted"})
    summary = owner.get(f"{API}/chatflows/{flow['id']}/analytics").get_json()
    assert (summary["sessions"], summary["messages"], summary["answers"]) == (1, 4, 2)


def test_the_organizations_usage_names_the_chatflow_that_spent_the_tokens(owner, httpserver):  # noqa: F811
    httpserver.expect_request("/v1/chat/completions").respond_with_data(openai_stream("Hi."),
                                                                        content_type="text/event-stream")
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "write", "type": "llm", "config": {"prompt": "{{ input }}"}},
             {"id": "answer", "type": "response", "config": {"text": "{{ write.text }}"}}]
    edges = [{"source": a, "source_port": "out", "target": b, "target_port": "in"}
             for a, b in (("start", "write"), ("write", "answer"))]
    flow = create(owner, "Spender", nodes, edges, config={
        "provider": "openai", "model_params": {"base_url": httpserver.url_for("/v1"), "model": "m", "api_key": "k"}})
    publish(owner, flow)
    assert owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "hello"}).get_json()["answer"] == "Hi."
    usage = owner.get(f"{API}/orgs/{owner.organization_id}/usage").get_json()
    assert usage["by_chatbot"] == [{"chatbot_id": None, "chatflow_id": flow["id"], "name": "Spender",
                                    "prompt_tokens": 42, "completion_tokens": 7}]


def test_a_test_run_calls_an_api_with_a_stored_credential(owner, httpserver, app, monkeypatch):  # noqa: F811
    monkeypatch.setitem(app.config, "CHATFLOW_ALLOW_PRIVATE", True)  # the API below is on 127.0.0.1
    credential = owner.post(f"{API}/credentials", json={"name": "CRM", "provider": "custom",
                                                        "secret": {"token": "crm-token-0042"}}).get_json()
    httpserver.expect_request("/customers/7", headers={"Authorization": "Bearer crm-token-0042"}).respond_with_json(
        {"name": "Ada", "plan": "pro"})
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "crm", "type": "http_request", "config": {
                 "url": httpserver.url_for("/customers/7"), "auth": {"type": "bearer",
                                                                     "credential_id": credential["id"]}}},
             {"id": "answer", "type": "response", "config": {"text": "{{ crm.json.name }} is on {{ crm.json.plan }}"}}]
    edges = [{"source": a, "source_port": "out", "target": b, "target_port": "in"}
             for a, b in (("start", "crm"), ("crm", "answer"))]
    flow = create(owner, "CRM lookup", nodes, edges)
    tested = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "who?"}).get_json()
    assert tested["answer"] == "Ada is on pro", tested
    assert tested["trace"][1]["outputs"]["status"] == 200


def test_a_made_up_pause_state_is_refused_as_the_flows_error_not_a_crash(owner):  # noqa: F811
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "ask", "type": "human_input", "config": {"question": "Name?"}},
             {"id": "answer", "type": "response", "config": {"text": "Hi {{ ask.answer }}"}}]
    edges = [{"source": "start", "source_port": "out", "target": "ask", "target_port": "in"},
             {"source": "ask", "source_port": "out", "target": "answer", "target_port": "in"}]
    flow = create(owner, "Pauses", nodes, edges)
    state = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"message": "x"}).get_json()["state"]
    for bad in ({**state, "steps": "many"}, {**state, "session": "abc"}, {**state, "steps": -1},
                {"paused_at": "ask"}, {**state, "paused_at": "nowhere"}):
        response = owner.post(f"{API}/chatflows/{flow['id']}/test", json={"state": bad, "answer": "Ada"})
        assert response.status_code in (200, 422), (bad, response.status_code)
        if response.status_code == 200:
            assert response.get_json()["status"] == "error" and "start again" in response.get_json()["error"][
                "message"]
    assert owner.post(f"{API}/chatflows/{flow['id']}/test",
                      json={"state": state, "answer": "Ada"}).get_json()["answer"] == "Hi Ada"


def test_the_complex_flow_kb_llm_condition_loop_response_runs_deployed(owner, kb, httpserver):  # noqa: F811
    """The issue's complex flow, end to end with the real nodes: the knowledge base's passages go to the model, a
    condition on its answer branches, a loop looks each of the model's topics up in the knowledge base, and the
    response joins what the loop found."""
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        openai_stream("holiday, laptop"), content_type="text/event-stream")
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        {"id": "search", "type": "knowledge_base", "config": {"knowledge_bases": [kb["id"]], "query": "{{ input }}"}},
        {"id": "topics", "type": "llm", "config": {"prompt": "Topics of: {{ search.text }}"}},
        {"id": "check", "type": "condition",
         "config": {"cases": [{"left": "{{ topics.text }}", "op": "is_not_empty", "port": "if"}]}},
        {"id": "split", "type": "variable", "config": {"values": {"items": "{{ topics.text }}"}, "transform": "list"}},
        {"id": "each", "type": "loop", "config": {"items": "{{ split.items }}"}},
        {"id": "lookup", "type": "knowledge_base",
         "config": {"knowledge_bases": [kb["id"]], "query": "{{ each.item }}", "top_k": 1}},
        {"id": "answer", "type": "response", "config": {
            "text": "{% for found in each.results %}{{ found.lookup.citations[0].position.heading }}; {% endfor %}"}},
        {"id": "nothing", "type": "response", "config": {"text": "No topics."}},
    ]
    edges = [{"source": a, "source_port": port, "target": b, "target_port": into} for a, port, b, into in (
        ("start", "out", "search", "in"), ("search", "out", "topics", "in"), ("topics", "out", "check", "in"),
        ("check", "if", "split", "in"), ("check", "else", "nothing", "in"), ("split", "out", "each", "in"),
        ("each", "body", "lookup", "in"), ("lookup", "out", "each", "next"), ("each", "done", "answer", "in"))]
    flow = create(owner, "Complex", nodes, edges, config={
        "provider": "openai", "model_params": {"base_url": httpserver.url_for("/v1"), "model": "m", "api_key": "k"}})
    publish(owner, flow)
    ran = owner.post(f"{API}/chatflows/{flow['id']}/execute", json={"message": "What is in the handbook?"}).get_json()
    assert ran["finish_reason"] == "stop", ran
    assert ran["answer"] == "Handbook > Holidays; Handbook > Security; "
    ran_nodes = [entry["node_id"] for entry in ran["trace"]]
    assert ran_nodes == ["start", "search", "topics", "check", "split", "each", "lookup", "lookup", "answer"]


def test_the_free_plan_allows_five_chatflows(owner):  # noqa: F811
    for number in range(5):
        create(owner, f"Flow {number}")
    refused = owner.post(f"{API}/chatflows", json={"name": "Sixth"})
    assert refused.status_code == 402 and "5 chatflows" in refused.get_json()["message"]
    draft = owner.post(f"{API}/chatflows/drafts", json={"name": "Sixth draft"}).get_json()
    assert owner.post(f"{API}/chatflows/drafts/{draft['id']}/finalize").status_code == 402
    assert owner.get(f"{API}/chatflows/drafts/{draft['id']}").status_code == 200  # the draft is kept


def test_a_live_flow_is_never_served_stale_after_a_publish_rollback_or_pause(client, owner):  # noqa: F811
    """The public API keeps a published flow in a per-process cache: every change shows at the very next message."""
    flow = create(owner, "Cached", *start_response("v1: {{ input }}"), config={"allowed_origins": [SITE]})
    publish(owner, flow)
    url = f"{API}/public/bots/{flow['public_id']}"
    session_id = from_site(client, "POST", f"{url}/sessions", json={}).get_json()["session_id"]

    def said(text):
        response = from_site(client, "POST", f"{url}/sessions/{session_id}/messages", json={"message": text})
        return response.get_json()["answer"] if response.status_code == 200 else response.status_code

    assert said("a") == "v1: a" and said("b") == "v1: b"
    nodes, edges = start_response("v2: {{ input }}")
    owner.patch(f"{API}/chatflows/{flow['id']}", json={"nodes": nodes, "edges": edges})
    assert said("c") == "v1: c"  # saved, not published
    publish(owner, flow)
    assert said("d") == "v2: d"
    owner.post(f"{API}/chatflows/{flow['id']}/rollback", json={"version": 1})
    assert said("e") == "v1: e"
    owner.patch(f"{API}/chatflows/{flow['id']}", json={"status": "paused"})
    assert said("f") == 404
    owner.patch(f"{API}/chatflows/{flow['id']}", json={"status": "active"})
    assert said("g") == "v1: g"
