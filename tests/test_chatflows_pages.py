"""The Chatflows pages through the test client: the list and its empty state, a new chatflow opening on its canvas,
the palette of every installed node type (a third-party one too), saving a graph (a refused one answers 422 with
the problems per node and saves nothing), the node panel's form generated from the type's schema with the refusals
beside their fields, a test run's answer and trace (and a paused run resumed), publishing, rolling back, deleting,
CSRF on all of it, viewers reading only, odd bodies refused without a 500, and another workspace's chatflow the 404
page on every route. The same journey runs in a real browser in test_chatflows_browser.py."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from conftest import rolled_back
from privex import hookimpl
from privex.extensions import db
from privex.models import Chatflow, Organization
from privex.services import credentials, invitations, knowledge
from privex.services.chatflows import store
from tests.test_web_shell import error_of, html, own_workspace, person, sign_in


@pytest.fixture()
def olga(client):
    user = person("olga@example.com")
    sign_in(client, "olga@example.com")
    return user


@pytest.fixture()
def workspace(olga):
    return own_workspace(olga)


def new_flow(workspace, user, name="Support triage") -> Chatflow:
    return store.create(workspace, user, name)


def boot(page: str) -> dict:
    """What the canvas script starts from: the graph, the node types and the saved graph's problems."""
    found = re.search(r'<script type="application/json" id="cf-boot">(.*?)</script>', page, re.S)
    assert found, "no boot data on the canvas page"
    return json.loads(found.group(1))


def node(node_id, type_, config=None, **extra):
    return {"id": node_id, "type": type_, "version": "1", "config": config or {}, "position": {"x": 0, "y": 0},
            **extra}


def edge(source, target, source_port="out", target_port="in"):
    return {"source": source, "source_port": source_port, "target": target, "target_port": target_port}


def branching(kb_config=None, cases=None):
    """start -> knowledge_base -> condition -(if)-> response, -(else)-> response."""
    nodes = [node("start", "start"),
             node("kb", "knowledge_base", kb_config if kb_config is not None else {"knowledge_bases": [], "query": ""}),
             node("check", "condition", {"cases": cases if cases is not None else [
                 {"left": "{{ input }}", "op": "contains", "right": "holiday", "port": "if"}]}),
             node("yes", "response", {"text": "Holidays: {{ kb.text }}"}),
             node("no", "response", {"text": "You said: {{ input }}"})]
    edges = [edge("start", "kb"), edge("kb", "check"), edge("check", "yes", "if"), edge("check", "no", "else")]
    return nodes, edges


# -- the list and a new chatflow -----------------------------------------------------------------------------------

def test_the_empty_list_says_to_create_one_and_the_header_links_it(client, olga, workspace):
    page = html(client.get("/chatflows"))
    assert "No chatflows yet — create one" in page and 'href="/chatflows/new"' in page
    assert '<a href="/chatflows" aria-current="page">Chatflows</a>' in page


def test_a_new_chatflow_needs_a_name_then_opens_on_its_starter_graph(client, olga, workspace):
    refused = client.post("/chatflows/new", data={"name": "  "})
    assert refused.status_code == 422
    assert re.search(r'<div class="error" id="name-error"><p>Give your chatflow a name.</p></div>', html(refused))
    made = client.post("/chatflows/new", data={"name": "Support triage", "description": "Sorts questions"})
    assert made.status_code == 302
    chatflow = db.session.query(Chatflow).one()
    assert made.headers["Location"] == f"/chatflows/{chatflow.id}"
    page = html(client.get(made.headers["Location"]))
    assert "<h1>Support triage" in page and "Not published" in page and chatflow.public_id in page
    data = boot(page)
    assert {n["type"] for n in data["graph"]["nodes"]} == {"start", "response"} and data["problems"] is None
    listed = html(client.get("/chatflows"))
    assert "Support triage" in listed and "Sorts questions" in listed and "No chatflows yet" not in listed


def test_the_palette_lists_every_installed_node_type_grouped_with_its_ports(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    page = html(client.get(f"/chatflows/{chatflow.id}"))
    types = {entry["type"]: entry for entry in boot(page)["types"]}
    for name in ("start", "response", "variable", "condition", "loop", "memory", "llm", "knowledge_base",
                 "human_input"):
        assert f'data-cf-add="{name}"' in page, name
    assert types["condition"]["outputs"] == ["if", "elif1", "elif2", "elif3", "else"]
    assert types["knowledge_base"]["starter"] == {"knowledge_bases": [], "query": ""}
    assert page.index(">Start and answer</h3>") < page.index(">Branches and loops</h3>") < page.index(">Steps</h3>")
    branches = page[page.index(">Branches and loops</h3>"):page.index(">Steps</h3>")]
    assert 'data-cf-add="condition"' in branches and 'data-cf-add="loop"' in branches


class Shout:
    """Shouts its text back in capitals."""
    name, version = "shout", "1"
    config_schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        return {"text": inputs["config"]["text"].upper()}


class ShoutPlugin:
    @hookimpl
    def privex_node_types(self):
        return [Shout]


def test_a_third_party_node_type_is_in_the_palette_and_runs_in_a_test(make_app):
    shouting = make_app(plugins=(ShoutPlugin(),))
    with rolled_back(shouting):
        client = shouting.test_client()
        user = person("olga@example.com")
        sign_in(client, "olga@example.com")
        chatflow = new_flow(own_workspace(user), user)
        page = html(client.get(f"/chatflows/{chatflow.id}"))
        assert 'data-cf-add="shout"' in page and "Shouts its text back in capitals." in page
        nodes = [node("start", "start"), node("loud", "shout", {"text": "{{ input }}"}),
                 node("r", "response", {"text": "{{ loud.text }}"})]
        result = client.post(f"/chatflows/{chatflow.id}/test", json={
            "nodes": nodes, "edges": [edge("start", "loud"), edge("loud", "r")], "message": "hello there"})
        assert result.status_code == 200 and "HELLO THERE" in html(result)


# -- saving --------------------------------------------------------------------------------------------------------

def test_saving_a_valid_graph_keeps_it_as_the_working_copy(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    nodes, edges = branching({"knowledge_bases": [str(uuid.uuid4())], "query": "{{ input }}", "top_k": 3})
    saved = client.post(f"/chatflows/{chatflow.id}/graph", json={"nodes": nodes, "edges": edges})
    assert saved.status_code == 200 and saved.get_json()["message"] == "Saved."
    db.session.refresh(chatflow)
    assert [n["id"] for n in chatflow.nodes] == ["start", "kb", "check", "yes", "no"] and len(chatflow.edges) == 4
    assert boot(html(client.get(f"/chatflows/{chatflow.id}")))["graph"]["nodes"][1]["config"]["top_k"] == 3


def test_a_refused_save_names_the_problems_per_node_and_saves_nothing(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    before = json.dumps(chatflow.nodes, sort_keys=True)
    nodes, edges = branching(cases=[{"left": "x", "op": "is about", "port": "if"}])
    nodes.append(node("lost", "variable", {"values": {"a": "b"}}))
    edges.append(edge("kb", "nowhere"))
    refused = client.post(f"/chatflows/{chatflow.id}/graph", json={"nodes": nodes, "edges": edges})
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert any("[] should be non-empty" in m or "too short" in m for m in errors["nodes"]["kb"]), errors
    assert any("'is about' is not one of" in m for m in errors["nodes"]["check"])
    assert errors["nodes"]["lost"] == ["No path from the start node reaches this node."]
    assert "nowhere" in errors["edges"]["4"][0]
    db.session.refresh(chatflow)
    assert json.dumps(chatflow.nodes, sort_keys=True) == before


def test_the_panel_is_a_form_generated_from_the_schema_with_the_refusals_beside_their_fields(client, olga,
                                                                                              workspace):
    chatflow = new_flow(workspace, olga)
    nodes, edges = branching({"knowledge_bases": [], "query": "{{ input }}", "mode": "keyword"})
    panel = html(client.post(f"/chatflows/{chatflow.id}/panel", json={
        "nodes": nodes, "edges": edges, "node_id": "kb",
        "errors": ["knowledge_bases: [] should be non-empty", "'query' is a required property", "something else"]}))
    # an array of text is one item per line, an enum a select (JSON values), an integer a number input
    assert re.search(r'<textarea [^>]*id="cfg-knowledge_bases" data-setting="knowledge_bases" data-kind="lines" '
                     r'data-required="true"', panel)
    assert re.search(r'<select id="cfg-mode" data-setting="mode" data-kind="select"', panel)
    assert '<option value="&#34;keyword&#34;" selected>keyword</option>' in panel
    assert re.search(r'<input type="number" [^>]*min="1" max="20"\s+value="" id="cfg-top_k"', panel)
    assert re.search(r'<textarea rows="3" spellcheck="true" id="cfg-query"[^>]*>\{\{ input \}\}</textarea>', panel)
    assert re.search(r'<input type="text" value="x"[^>]*id="cfg-key"', html(client.post(
        f"/chatflows/{chatflow.id}/panel", json={"nodes": [node("m", "memory", {"action": "get", "key": "x"})],
                                                 "edges": [], "node_id": "m"})))  # short text: one line
    assert '<div class="error" id="cfg-knowledge_bases-error" data-cf-error-for="knowledge_bases"><p>[] should be ' \
           'non-empty.</p></div>' in panel
    assert '<div class="error" id="cfg-query-error" data-cf-error-for="query"><p>Required.</p></div>' in panel
    assert 'aria-describedby="cfg-knowledge_bases-hint cfg-knowledge_bases-error" aria-invalid="true"' in panel
    assert "<p>Something else.</p>" in panel  # what no field took, at the top
    # retry and error policy, the connections, and connecting by keyboard
    assert 'data-policy="attempts"' in panel and '<option value="error_port">' in panel
    assert "From <strong>start</strong> (out) into in" in panel and "out → <strong>check</strong> (in)" in panel
    assert '<option value="{&#34;target&#34;: &#34;yes&#34;, &#34;target_port&#34;: &#34;in&#34;}">yes (Response)' \
        in panel
    condition = html(client.post(f"/chatflows/{chatflow.id}/panel", json={"nodes": nodes, "edges": edges,
                                                                          "node_id": "check"}))
    assert re.search(r'<textarea rows="6" spellcheck="false" id="cfg-cases" data-setting="cases" data-kind="json"',
                     condition)
    assert "&#34;op&#34;: &#34;contains&#34;" in condition
    for port in ("if", "elif1", "elif2", "elif3", "else", "error"):
        assert f'<option value="{port}">' in condition


def test_a_list_of_knowledge_bases_is_chosen_by_name_not_typed_as_ids(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    nodes, edges = branching({"knowledge_bases": [], "query": "{{ input }}"})
    empty = html(client.post(f"/chatflows/{chatflow.id}/panel", json={"nodes": nodes, "edges": edges,
                                                                      "node_id": "kb"}))
    assert "This workspace has no knowledge base yet" in empty and 'data-kind="lines"' in empty
    handbook = knowledge.create(workspace, olga.id, {"name": "Handbook"})
    knowledge.create(workspace, olga.id, {"name": "Price list"})
    stranger = person("sam@example.com")
    theirs = knowledge.create(own_workspace(stranger), stranger.id, {"name": "Sam's secrets"})
    nodes[1]["config"]["knowledge_bases"] = [str(handbook.id), str(theirs.id)]
    panel = html(client.post(f"/chatflows/{chatflow.id}/panel", json={"nodes": nodes, "edges": edges,
                                                                      "node_id": "kb"}))
    assert re.search(r'<fieldset class="field group" id="cfg-knowledge_bases" data-setting="knowledge_bases" '
                     r'data-kind="checks"', panel)
    checked = re.findall(r'value="([^"]+)" checked>\s*<label for="[^"]+">([^<]+)</label>', panel)
    assert checked == [(str(handbook.id), "Handbook"), (str(theirs.id), f"{theirs.id} (not in this workspace)")]
    assert ">Price list</label>" in panel and "Sam&#39;s secrets" not in panel


def test_a_credential_is_chosen_from_the_workspaces_by_name(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    mine = credentials.create(workspace, olga.id, {"name": "Orders database", "provider": "postgres"},
                              {"password": "secret-password"})
    nodes = [node("start", "start"), node("db", "database", {"credential_id": "", "query": "select 1"}),
             node("r", "response", {"text": "{{ db.rows }}"})]
    panel = html(client.post(f"/chatflows/{chatflow.id}/panel", json={
        "nodes": nodes, "edges": [edge("start", "db"), edge("db", "r")], "node_id": "db"}))
    assert re.search(r'<select id="cfg-credential_id" data-setting="credential_id" data-kind="select"', panel)
    assert '<option value="">Choose a credential</option>' in panel
    assert f'<option value="&#34;{mine.id}&#34;">Orders database (postgres)</option>' in panel
    assert "secret-password" not in panel


# -- testing -------------------------------------------------------------------------------------------------------

def test_a_test_run_shows_the_answer_and_each_nodes_trace(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    nodes = [node("start", "start"), node("v", "variable", {"values": {"shout": "{{ input }}"}, "transform": "upper"}),
             node("r", "response", {"text": "You said: {{ v.shout }}"})]
    result = client.post(f"/chatflows/{chatflow.id}/test",
                         json={"nodes": nodes, "edges": [edge("start", "v"), edge("v", "r")], "message": "hi there"})
    page = html(result)
    assert result.status_code == 200 and '<p class="text">You said: HI THERE</p>' in page
    steps = re.findall(r'<li class="cf-step">\s*<p class="cf-step-head"><strong>(\w+)</strong>', page)
    assert steps == ["start", "v", "r"]
    assert "&#34;shout&#34;: &#34;HI THERE&#34;" in page and "<summary>Outputs" in page


def test_a_failing_node_is_named_and_a_refused_graph_is_not_run(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    nodes = [node("start", "start"), node("r", "response", {"text": "{{ nobody.text }}"})]
    stopped = html(client.post(f"/chatflows/{chatflow.id}/test",
                               json={"nodes": nodes, "edges": [edge("start", "r")], "message": "hi"}))
    assert "The flow stopped" in stopped and 'data-cf-goto="r"' in stopped and 'cf-step failed' in stopped
    refused = client.post(f"/chatflows/{chatflow.id}/test", json={"nodes": nodes[:1], "edges": [], "message": "hi"})
    assert refused.status_code == 422 and refused.get_json()["errors"]["graph"] == [
        "The chatflow needs a response node."]
    empty = client.post(f"/chatflows/{chatflow.id}/test", json={"nodes": nodes, "edges": [], "message": " "})
    assert empty.status_code == 422 and "message" in empty.get_json()["errors"]


def test_a_paused_run_asks_and_an_answer_carries_it_on(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    nodes = [node("start", "start"), node("ask", "human_input", {"question": "Which order number?"}),
             node("r", "response", {"text": "Looking up order {{ ask.answer }}."})]
    graph = {"nodes": nodes, "edges": [edge("start", "ask"), edge("ask", "r")]}
    paused = html(client.post(f"/chatflows/{chatflow.id}/test", json={**graph, "message": "where is my parcel?"}))
    assert "The flow asks a question" in paused
    assert '<label for="cf-resume-answer">Which order number?</label>' in paused
    state = json.loads(re.search(r'data-state="([^"]+)"', paused).group(1).replace("&#34;", '"'))
    resumed = html(client.post(f"/chatflows/{chatflow.id}/test",
                               json={**graph, "message": "where is my parcel?", "state": state, "answer": "A-42"}))
    assert '<p class="text">Looking up order A-42.</p>' in resumed and "with your answer “A-42”" in resumed


# -- publish, roll back, delete ------------------------------------------------------------------------------------

def test_publish_then_roll_back_to_an_earlier_version(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    assert client.post(f"/chatflows/{chatflow.id}/publish", data={"note": "first"}).status_code == 302
    nodes = [node("start", "start"), node("r", "response", {"text": "Version two: {{ input }}"})]
    assert client.post(f"/chatflows/{chatflow.id}/graph",
                       json={"nodes": nodes, "edges": [edge("start", "r")]}).status_code == 200
    published = client.post(f"/chatflows/{chatflow.id}/publish", data={"note": "second"}, follow_redirects=True)
    page = html(published)
    assert "Version 2 is published" in page and "Visitors get <strong>version 2</strong>" in page
    assert "first" in page and "second" in page and ">Roll back to version 1</button>" in page
    rolled = html(client.post(f"/chatflows/{chatflow.id}/rollback", data={"number": "1"}, follow_redirects=True))
    assert "Version 1 is deployed again" in rolled and "Visitors get <strong>version 1</strong>" in rolled
    assert ">Deploy to version 2</button>" in rolled
    assert boot(rolled)["graph"]["nodes"][1]["config"]["text"] == "Version two: {{ input }}"  # the working copy stays
    missing = html(client.post(f"/chatflows/{chatflow.id}/rollback", data={"number": "9"}, follow_redirects=True))
    assert "Visitors get <strong>version 1</strong>" in missing and 'class="flash error"' in missing


def test_the_sites_allowed_to_show_it_are_saved_and_a_bad_line_is_named(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    refused = client.post(f"/chatflows/{chatflow.id}/origins",
                          data={"allowed_origins": "https://shop.example/\nnot a site"})
    assert refused.status_code == 422 and "Line 2 (“not a site”)" in error_of(html(refused), "allowed_origins")
    db.session.refresh(chatflow)
    assert not (chatflow.config or {}).get("allowed_origins")
    saved = client.post(f"/chatflows/{chatflow.id}/origins", data={"allowed_origins": "https://shop.example/"},
                        follow_redirects=True)
    assert "Allowed sites saved." in html(saved), html(saved)[html(saved).find("<main"):][:600]
    assert re.search(r">\s*https://shop.example</textarea>", html(saved))
    db.session.refresh(chatflow)
    assert chatflow.config["allowed_origins"] == ["https://shop.example"]


def test_delete_takes_the_chatflow(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    page = html(client.get(f"/chatflows/{chatflow.id}"))
    assert f'action="/chatflows/{chatflow.id}/delete"' in page
    gone = client.post(f"/chatflows/{chatflow.id}/delete", follow_redirects=True)
    assert "“Support triage” was deleted" in html(gone) and db.session.query(Chatflow).count() == 0


# -- CSRF, viewers, odd bodies, other tenants ----------------------------------------------------------------------

def test_every_chatflow_form_and_request_needs_the_csrf_token(make_app):
    guarded = make_app(WTF_CSRF_ENABLED=True)
    with rolled_back(guarded):
        client = guarded.test_client()
        user = person("olga@example.com")
        chatflow = new_flow(own_workspace(user), user)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html(client.get("/login"))).group(1)
        client.post("/login", data={"email": "olga@example.com", "password": "Sup3r-secret!", "csrf_token": token})
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html(client.get("/chatflows"))).group(1)
        graph = {"nodes": chatflow.nodes, "edges": chatflow.edges, "node_id": "start", "message": "hi"}
        for path in ("graph", "panel", "test"):
            assert client.post(f"/chatflows/{chatflow.id}/{path}", json=graph).status_code == 400, path
            assert client.post(f"/chatflows/{chatflow.id}/{path}", json=graph,
                               headers={"X-CSRFToken": token}).status_code == 200, path
        for path, data in (("publish", {}), ("rollback", {"number": "1"}), ("origins", {"allowed_origins": ""}),
                           ("delete", {})):
            assert client.post(f"/chatflows/{chatflow.id}/{path}", data=data).status_code == 400, path
        assert client.post("/chatflows/new", data={"name": "x"}).status_code == 400
        page = html(client.get(f"/chatflows/{chatflow.id}"))
        assert page.count('name="csrf_token"') >= 2  # publish and delete carry it
        assert client.post(f"/chatflows/{chatflow.id}/publish", data={"csrf_token": token}).status_code == 302


def test_a_viewer_reads_the_canvas_and_changes_nothing(client, olga, workspace):
    chatflow = new_flow(workspace, olga)
    person("vic@example.com")
    organization = db.session.get(Organization, workspace.organization_id)
    invitations.invite_or_add(organization, olga, "owner", "vic@example.com", "member", workspace_id=workspace.id,
                              workspace_role="viewer")
    client.post("/logout")
    sign_in(client, "vic@example.com")
    client.post("/context", data={"context": f"{organization.id}/{workspace.id}"})
    listed = html(client.get("/chatflows"))
    assert "Support triage" in listed and "New chatflow" not in listed
    page = html(client.get(f"/chatflows/{chatflow.id}"))
    assert "data-cf-save" not in page and "data-cf-add=" not in page and "Delete this chatflow" not in page
    assert 'data-can-write="false"' in page
    panel = html(client.post(f"/chatflows/{chatflow.id}/panel",
                             json={"nodes": chatflow.nodes, "edges": chatflow.edges,
                                   "node_id": chatflow.nodes[-1]["id"]}))
    assert '<fieldset class="plain" disabled>' in panel and "data-cf-connect" not in panel
    graph = {"nodes": chatflow.nodes, "edges": [], "message": "hi"}
    for path in ("graph", "test", "publish", "rollback", "origins", "delete"):
        assert client.post(f"/chatflows/{chatflow.id}/{path}", json=graph).status_code == 403, path
    assert client.get("/chatflows/new").status_code == 403
    db.session.refresh(chatflow)
    assert chatflow.edges and not store.versions(chatflow)


@pytest.mark.parametrize("body", [
    None, [], "text", {"nodes": "x", "edges": []}, {"nodes": [1], "edges": []}, {"nodes": [{"id": 1}], "edges": []},
    {"nodes": [{"id": "a", "type": "start", "config": []}], "edges": []},
    {"nodes": [], "edges": [{"source": "a"}]}, {"nodes": [], "edges": ["x"]},
    {"nodes": [{"id": "a", "type": "start"}], "edges": [], "node_id": "b", "message": 5},
    {"nodes": [{"id": "a", "type": "start"}], "edges": [], "node_id": "a", "message": "hi", "state": "x"},
    {"nodes": [{"id": "a", "type": "nope"}], "edges": [], "node_id": "a", "message": "hi", "errors": "x"},
    *({"nodes": [{"id": "s", "type": "start"}, {"id": "r", "type": "response", "config": {"text": "x"}}],
       "edges": [{"source": "s", "source_port": "out", "target": "r", "target_port": "in"}], "node_id": "s",
       "message": "hi", "answer": "yes", "state": state}
      for state in ({"paused_at": "nowhere", "variables": {}}, {"paused_at": "r", "variables": 5},
                    {"paused_at": "r", "variables": {}, "rest": ["ghost"]}, {"paused_at": "r", "variables": {},
                                                                             "steps": "many"},
                    {"paused_at": "r", "variables": {}, "session": "abc"})),
])
def test_odd_bodies_are_refused_never_a_500(client, olga, workspace, body):
    chatflow = new_flow(workspace, olga)
    for path in ("graph", "panel", "test"):
        response = client.post(f"/chatflows/{chatflow.id}/{path}", json=body) if body is not None else \
            client.post(f"/chatflows/{chatflow.id}/{path}", data="not json", content_type="application/json")
        assert response.status_code < 500, (path, body, response.get_data(as_text=True)[:300])
        if response.status_code >= 400 and response.is_json:
            assert response.get_json()["message"], (path, body)
    unknown = client.post(f"/chatflows/{chatflow.id}/panel",
                          json={"nodes": [{"id": "a", "type": "nope"}], "edges": [], "node_id": "a"})
    assert unknown.status_code == 200 and "The node type “nope” is not installed here" in html(unknown)


ROUTES = [("get", ""), ("post", "/graph"), ("post", "/panel"), ("post", "/test"), ("post", "/publish"),
          ("post", "/rollback"), ("post", "/origins"), ("post", "/delete")]


def test_another_workspaces_chatflow_is_the_404_page_everywhere(client, olga, workspace):
    stranger = person("sam@example.com")
    theirs = new_flow(own_workspace(stranger), stranger, name="Sam's flow")
    new_flow(workspace, olga)
    for method, route in ROUTES:
        for chatflow_id in (theirs.id, "not-a-uuid", uuid.uuid4()):
            path = f"/chatflows/{chatflow_id}{route}"
            response = getattr(client, method)(path, json={"nodes": [], "edges": [], "node_id": "x", "message": "x"})
            assert response.status_code == 404 and response.mimetype == "text/html", (method, path)
            assert "Sam&#39;s flow" not in html(response)
    assert "Sam&#39;s flow" not in html(client.get("/chatflows"))
    db.session.refresh(theirs)
    assert theirs.name == "Sam's flow" and len(theirs.nodes) == 2
