"""The Chatflows pages in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on.

With a knowledge base made through the services, a person creates a chatflow from the empty list and, between start
and response, adds a variable node, a condition and a knowledge base node (from the palette by mouse, by search and
by keyboard), connects them (the panel's Connect form, and a drag from an output port to an input port), configures
them through the forms generated from their schemas (a JSON setting that does not parse is refused beside its
field), saves and sees the refusals on the nodes, follows a problem's link to its node, fixes them, saves, moves a
node with the arrow keys, deletes one with the Delete key, tests the flow and reads the cited answer and each node's
trace, publishes, edits and publishes version 2, rolls back to version 1 — which the public API then answers with —
and at last deletes it, confirmed in a dialog. The list and the canvas are checked by axe-core (0 serious or
critical violations) at desktop width and at 360 px, where the canvas scrolls inside its box and nothing scrolls
sideways; screenshots go to tests/screenshots/. A second test answers a flow that pauses to ask a question.
"""

from __future__ import annotations

import io
import json
import re

import pytest
import sqlalchemy as sa

from privex.extensions import db
from privex.models import Chatflow, Workspace
from privex.services.chatflows import store
from tests.test_builder_browser import PHONE, Tab, make_person, sign_in
from tests.test_chatbots_browser import with_handbook
from tests.test_public_api import events_of
from tests.helpers import sign_up
from tests.test_widget_browser import HANDBOOK, PASSAGE, QUESTION, browser, live  # noqa: F401 (fixtures)
from tests.test_widget_browser import ask as ask_in_widget
from tests.test_widget_browser import widget

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def node(page, node_id):
    return page.locator(f'[data-node="{node_id}"]')


def port(page, node_id, name):
    return page.locator(f'[data-port-node="{node_id}"][data-port="{name}"]')


def saved_flow(app) -> Chatflow:
    with app.app_context():
        chatflow = db.session.scalar(sa.select(Chatflow))
        db.session.expunge(chatflow)
        return chatflow


def test_build_a_branching_flow_on_the_canvas_test_it_publish_twice_and_roll_back(live, browser):  # noqa: F811
    app, base = live
    _user_id, _workspace_id, kb_id = with_handbook(app, "olga@example.com", "Olga")
    tab = Tab(browser)
    page = tab.page
    problems = {}
    sign_in(page, base, "olga@example.com")

    # The empty list says what to do; a name is all a new chatflow needs.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chatflows").click()
    expect(page.get_by_text("No chatflows yet — create one")).to_be_visible()
    problems["empty list"] = tab.check("chatflows-empty")
    page.get_by_role("link", name="Create a chatflow").click()
    page.get_by_label("Name").fill("Handbook triage")
    page.get_by_role("button", name="Create and open the canvas").click()
    expect(page.get_by_role("heading", name="Handbook triage")).to_be_visible()
    start_id = next(n["id"] for n in saved_flow(app).nodes if n["type"] == "start")
    answer_id = next(n["id"] for n in saved_flow(app).nodes if n["type"] == "response")
    expect(node(page, start_id)).to_be_visible()
    expect(node(page, answer_id)).to_be_visible()
    problems["new canvas"] = tab.check("chatflow-canvas-new")
    panel = page.locator("[data-cf-panel]")
    said = page.locator("[data-cf-said]")

    # Add a condition by mouse (found by searching), a variable by keyboard, a knowledge base node by mouse.
    search = page.get_by_label("Search the node types")
    search.fill("if / elif")
    expect(page.get_by_role("status").filter(has_text="1 node type matches.")).to_be_visible()
    expect(page.get_by_role("button", name="Memory", exact=True)).to_be_hidden()
    page.get_by_role("button", name="Condition", exact=True).click()
    expect(node(page, "condition_1")).to_be_focused()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    search.fill("")
    page.get_by_role("button", name="Variable", exact=True).focus()
    page.keyboard.press("Enter")
    expect(node(page, "variable_1")).to_be_focused()
    expect(panel.get_by_role("heading", name="variable_1")).to_be_visible()

    # Configure the variable through its generated form: JSON that does not parse is refused beside its field.
    values = panel.get_by_label("Values")
    values.fill('{"topic": ')
    expect(panel.locator("#cfg-values-error")).to_contain_text("Not valid JSON")
    expect(values).to_have_attribute("aria-invalid", "true")
    values.fill('{"topic": "{{ input }}"}')
    expect(panel.locator("#cfg-values-error")).to_have_text("")
    panel.get_by_label("Transform").select_option("lower")

    # Connect by keyboard: start's output to the variable instead of straight to the answer.
    node(page, start_id).focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name=start_id)).to_be_visible()
    page.keyboard.press("Enter")  # again: into the panel, past the other nodes
    expect(panel.get_by_role("heading", name=start_id)).to_be_focused()
    page.keyboard.press("Escape")
    expect(node(page, start_id)).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(panel.locator(":focus")).to_be_visible()  # the first thing of the panel
    panel.get_by_role("button", name=f"Remove the connection to {answer_id} from out").click()
    expect(panel.get_by_text("Not connected yet.")).to_be_visible()
    panel.get_by_label("From output", exact=True).select_option("out")
    panel.get_by_label("To node", exact=True).select_option(label="variable_1 (Variable)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text("out → variable_1 (in)")).to_be_visible()

    # Connect by mouse: drag from the variable's output port to the condition's input port.
    port(page, "variable_1", "out").drag_to(port(page, "condition_1", "in"))
    expect(said).to_have_text("Connected variable_1 (out) to condition_1 (in).")

    # "if" the question is about holidays: the knowledge base, then the answer; "else" a second response. The
    # condition's case has a mistake and the knowledge base node is left without a knowledge base for now.
    page.get_by_role("button", name="Knowledge base", exact=True).click()
    expect(panel.get_by_role("heading", name="knowledge_base_1")).to_be_visible()
    panel.get_by_label("Query").fill("{{ input }}")
    panel.get_by_label("From output", exact=True).select_option("out")
    panel.get_by_label("To node", exact=True).select_option(label=f"{answer_id} (Response)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text(f"out → {answer_id} (in)")).to_be_visible()
    node(page, answer_id).click()
    panel.get_by_label("Text").fill("From the handbook: {{ knowledge_base_1.text }}")
    panel.get_by_label("Citations from").fill("knowledge_base_1")
    node(page, "condition_1").click()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    panel.get_by_label("Cases").fill(json.dumps([{"left": "{{ variable_1.topic }}", "op": "has",
                                                  "right": "holiday", "port": "if"}]))
    panel.get_by_label("From output", exact=True).select_option("if")
    panel.get_by_label("To node", exact=True).select_option(label="knowledge_base_1 (Knowledge base)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text("if → knowledge_base_1 (in)")).to_be_visible()
    page.get_by_role("button", name="Response", exact=True).click()
    expect(panel.get_by_role("heading", name="response_1")).to_be_visible()
    panel.get_by_label("Text").fill("Ask me about holidays. You said: {{ variable_1.topic }}")
    node(page, "condition_1").click()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    panel.get_by_label("From output", exact=True).select_option("else")
    panel.get_by_label("To node", exact=True).select_option(label="response_1 (Response)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text("else → response_1 (in)")).to_be_visible()

    # Save: refused, the problems drawn on their nodes and listed with links to them; nothing is lost.
    tab.expected_statuses = {422}
    page.get_by_role("button", name="Save", exact=True).click()
    box = page.locator("[data-cf-problems]")
    expect(box).to_be_visible()
    expect(box).to_contain_text("this chatflow has 2 problems")
    expect(box).to_contain_text("'has' is not one of")
    invalid = re.compile(r"\binvalid\b")
    for refused in ("condition_1", "knowledge_base_1"):
        expect(page.locator(f"#cf-node-{refused}")).to_have_class(invalid)
    expect(page.locator(f"#cf-node-{answer_id}")).not_to_have_class(invalid)
    problems["refused save"] = tab.check("chatflow-canvas-refused")
    box.get_by_role("link", name="knowledge_base_1 (Knowledge base)").click()
    expect(node(page, "knowledge_base_1")).to_be_focused()
    expect(panel.locator("#cfg-knowledge_bases-error")).to_contain_text("should be non-empty")
    panel.get_by_label("Staff handbook").check()
    panel.get_by_label("Top k").fill("2")
    box.get_by_role("link", name="condition_1 (Condition)").click()
    expect(node(page, "condition_1")).to_be_focused()
    expect(panel.locator("#cfg-cases-error")).to_contain_text("'has' is not one of")
    cases = panel.get_by_label("Cases")
    cases.fill(cases.input_value().replace('"has"', '"contains"'))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(said).to_have_text("Saved.")
    expect(box).to_be_hidden()
    expect(page.locator("#cf-node-condition_1")).not_to_have_class(invalid)
    with app.app_context():
        flow = db.session.scalar(sa.select(Chatflow))
        assert {n["id"] for n in flow.nodes} == {start_id, answer_id, "condition_1", "variable_1",
                                                 "knowledge_base_1", "response_1"}
        assert {(e["source"], e["source_port"], e["target"]) for e in flow.edges} == {
            (start_id, "out", "variable_1"), ("variable_1", "out", "condition_1"),
            ("condition_1", "if", "knowledge_base_1"), ("knowledge_base_1", "out", answer_id),
            ("condition_1", "else", "response_1")}
        configs = {n["id"]: n["config"] for n in flow.nodes}
        assert configs["variable_1"] == {"values": {"topic": "{{ input }}"}, "transform": "lower"}
        assert configs["knowledge_base_1"] == {"knowledge_bases": [str(kb_id)], "query": "{{ input }}", "top_k": 2}

    # Keyboard: arrow keys move the focused node; Delete removes one.
    item = page.locator("#cf-node-response_1")
    top, left = item.evaluate("e => [parseInt(e.style.top), parseInt(e.style.left)]")
    node(page, "response_1").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowRight")
    assert item.evaluate("e => [parseInt(e.style.top), parseInt(e.style.left)]") == [top + 30, left + 50]
    page.get_by_role("button", name="Memory", exact=True).click()
    expect(node(page, "memory_1")).to_be_focused()
    port(page, "variable_1", "out").drag_to(port(page, "memory_1", "in"))
    expect(said).to_have_text("Connected variable_1 (out) to memory_1 (in).")
    edges = page.locator("path[data-edge]")
    expect(edges).to_have_count(6)
    edges.last.scroll_into_view_if_needed()
    spot = edges.last.evaluate("""path => {  // a point of the curve that no node covers
        for (let part = 0.5; part > 0.05; part -= 0.05) {
            const point = path.getPointAtLength(path.getTotalLength() * part).matrixTransform(path.getScreenCTM());
            if (document.elementFromPoint(point.x, point.y) === path) return [point.x, point.y];
        }
        return null; }""")
    assert spot, "the new connection is hidden under the nodes"
    page.mouse.click(*spot)  # a click on the connection selects it; Delete removes it
    expect(panel.get_by_role("heading", name="Connection", exact=True)).to_be_visible()
    expect(panel).to_contain_text("From variable_1 (out) to memory_1 (in).")
    page.keyboard.press("Delete")
    expect(edges).to_have_count(5)
    node(page, "memory_1").focus()
    page.keyboard.press("Delete")
    expect(node(page, "memory_1")).to_have_count(0)
    page.get_by_role("button", name="Arrange").click()  # left to right in the order the flow runs
    lefts = {name: page.locator(f"#cf-node-{name}").evaluate("e => parseInt(e.style.left)") for name in (
        start_id, "variable_1", "condition_1", "knowledge_base_1", answer_id, "response_1")}
    assert lefts[start_id] < lefts["variable_1"] < lefts["condition_1"] < lefts["knowledge_base_1"] \
        < lefts[answer_id] and lefts["response_1"] == lefts["knowledge_base_1"]
    page.keyboard.press("Control+s")
    expect(said).to_have_text("Saved.")

    # Test it: the cited answer and each node's trace; then the other branch.
    page.get_by_label("Message").fill(QUESTION)
    page.get_by_role("button", name="Run the test").click()
    result = page.locator("[data-cf-result]")
    expect(result.locator(".cf-answer .text")).to_contain_text(PASSAGE, timeout=30_000)
    expect(result.locator(".cf-answer .citations li").first).to_contain_text("handbook.md")
    expect(result.locator(".cf-step-head strong")).to_have_text(
        [start_id, "variable_1", "condition_1", "knowledge_base_1", answer_id])
    result.get_by_text("Outputs of condition_1").click()
    expect(result.locator(".cf-step").nth(2).locator("pre").last).to_contain_text('"matched": "if"')
    problems["test run"] = tab.check("chatflow-canvas-tested")
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Run the test").click()
    expect(result.locator(".cf-answer .text")).to_have_text("Ask me about holidays. You said: hello")

    # The site that will show it, then publish version 1.
    page.get_by_label("Sites allowed to show this bot").fill("https://shop.example/")
    page.get_by_role("button", name="Save the allowed sites").click()
    expect(page.get_by_role("status").filter(has_text="Allowed sites saved.")).to_be_visible()
    page.get_by_label("What changed").fill("first")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Version 1 is published")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Version 1 live")

    # Edit again and publish version 2: the canvas saves first.
    node(page, "response_1").click()
    panel.get_by_label("Text").fill("Version two: {{ variable_1.topic }}")
    page.get_by_label("What changed").fill("second")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Version 2 is published")).to_be_visible()
    versions = page.locator(".cf-versions > li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("Version 2")
    expect(versions.first).to_contain_text("second")
    assert visitor_answer(app, "Hello") == "Version two: hello"
    problems["published"] = tab.check("chatflow-canvas-published")

    # Roll back to version 1: visitors get it again, the canvas keeps version 2's text.
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status").filter(has_text="Version 1 is deployed again")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Version 1 live")
    assert visitor_answer(app, "Hello") == "Ask me about holidays. You said: hello"
    node(page, "response_1").click()
    expect(panel.get_by_label("Text")).to_have_value("Version two: {{ variable_1.topic }}")
    # The chat widget (its demo page) answers with the deployed version too, as a chatbot's does.
    with app.app_context():
        public_id = db.session.scalar(sa.select(Chatflow.public_id))
    page.goto(f"{base}/widget/demo/{public_id}")
    widget(page).locator("button.bubble").click()
    ask_in_widget(page, "Hello")
    expect(widget(page).locator(".msg.assistant .text").last).to_have_text("Ask me about holidays. You said: hello")
    page.goto(f"{base}/chatflows")
    expect(page.locator(".bot-list")).to_contain_text("Handbook triage")
    problems["list"] = tab.check("chatflows-list")
    tab.close()

    # A phone: the canvas scrolls inside its box, the panel and the palette below it.
    phone = Tab(browser, viewport=PHONE)
    sign_in(phone.page, base, "olga@example.com")
    phone.page.goto(f"{base}/chatflows")
    problems["list 360"] = phone.check("chatflows-list")
    phone.page.get_by_role("link", name="Handbook triage").click()
    expect(node(phone.page, "condition_1")).to_be_visible()
    viewport = phone.page.locator("[data-cf-viewport]")
    assert viewport.evaluate("e => e.scrollWidth > e.clientWidth")  # the graph is wider than the phone: it scrolls
    canvas_box, panel_box, palette_box = (phone.page.locator(s).bounding_box()
                                          for s in (".cf-canvas", ".cf-panel", ".cf-palette"))
    assert canvas_box["y"] + canvas_box["height"] <= panel_box["y"] < palette_box["y"]
    node(phone.page, "knowledge_base_1").click()
    expect(phone.page.locator("[data-cf-panel]").get_by_role("heading", name="knowledge_base_1")).to_be_visible()
    problems["canvas 360"] = phone.check("chatflow-canvas")

    # Delete, confirmed in a dialog: the list is empty again and says what to do.
    phone.page.get_by_role("button", name="Delete this chatflow…").click()
    dialog = phone.page.get_by_role("dialog", name="Delete the chatflow “Handbook triage”?")
    expect(dialog).to_contain_text("Its 2 versions go too.")
    dialog.get_by_role("button", name="Delete it").click()
    expect(phone.page.get_by_role("status").filter(has_text="“Handbook triage” was deleted")).to_be_visible()
    expect(phone.page.get_by_text("No chatflows yet — create one")).to_be_visible()
    phone.close()
    assert not tab.problems and not phone.problems, (tab.problems, phone.problems)
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def visitor_answer(app, message: str) -> str:
    """What a visitor of the public API is answered now, on the site the chatflow allows."""
    site = "https://shop.example"
    with app.app_context():
        public_id = db.session.scalar(sa.select(Chatflow.public_id))
    client = app.test_client()
    url = f"/api/v1/public/bots/{public_id}"
    session = client.post(f"{url}/sessions", json={}, headers={"Origin": site}).get_json()["session_id"]
    answered = client.post(f"{url}/sessions/{session}/messages", json={"message": message, "stream": True},
                           headers={"Origin": site})
    return "".join(data["text"] for kind, data in events_of(answered) if kind == "delta")


def test_a_test_run_that_asks_a_question_carries_on_with_the_answer(live, browser):  # noqa: F811
    app, base = live
    user_id, workspace_id = make_person(app, "olga@example.com", "Olga")[0::2]
    with app.app_context():
        nodes = [{"id": "start", "type": "start", "config": {}, "position": {"x": 40, "y": 40}},
                 {"id": "ask", "type": "human_input", "config": {"question": "Which order number?"},
                  "position": {"x": 300, "y": 40}},
                 {"id": "reply", "type": "response", "config": {"text": "Looking up order {{ ask.answer }}."},
                  "position": {"x": 560, "y": 40}}]
        edges = [{"source": "start", "source_port": "out", "target": "ask", "target_port": "in"},
                 {"source": "ask", "source_port": "out", "target": "reply", "target_port": "in"}]
        chatflow_id = store.create(db.session.get(Workspace, workspace_id), user_id, "Orders", nodes=nodes,
                                   edges=edges).id
    tab = Tab(browser)
    page = tab.page
    sign_in(page, base, "olga@example.com")
    page.goto(f"{base}/chatflows/{chatflow_id}")
    page.get_by_label("Message").fill("Where is my parcel?")
    page.get_by_role("button", name="Run the test").click()
    result = page.locator("[data-cf-result]")
    expect(result.get_by_role("heading", name="The flow asks a question")).to_be_focused()
    result.get_by_role("button", name="Answer and carry on").click()
    expect(result.locator("#cf-resume-answer-error")).to_have_text("Type your answer.")
    result.get_by_label("Which order number?").fill("A-42")
    result.get_by_role("button", name="Answer and carry on").click()
    expect(result.locator(".cf-answer .text")).to_have_text("Looking up order A-42.")
    expect(result.locator(".cf-step-head strong")).to_have_text(["ask", "reply"])
    problems = tab.check("chatflow-canvas-resumed")
    tab.close()
    assert not tab.problems, tab.problems
    assert not problems, problems


def test_a_published_flow_answers_over_real_http_while_it_streams(live):  # noqa: F811
    """Served for real (the app in a thread, requests over HTTP): the nodes run while the answer streams, after the
    request's rows were committed, so they must not lean on those rows (a knowledge base node failed there with a
    DetachedInstanceError under gunicorn, which the test client's shared session hid)."""
    import httpx

    app, base = live
    API = "/api/v1"
    owner = sign_up(app.test_client(), "hugo")
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Handbook"}).get_json()
    owner.post(f"{API}/knowledge-bases/{kb['id']}/documents/upload",
               data={"files": [(io.BytesIO(HANDBOOK), "handbook.md")]}, content_type="multipart/form-data")
    nodes = [{"id": "start", "type": "start", "config": {}},
             {"id": "search", "type": "knowledge_base",
              "config": {"knowledge_bases": [kb["id"]], "query": "{{ input }}", "top_k": 1}},
             {"id": "answer", "type": "response", "config": {"text": "{{ search.text }}", "citations_from": "search"}}]
    edges = [{"source": a, "source_port": "out", "target": b, "target_port": "in"}
             for a, b in (("start", "search"), ("search", "answer"))]
    flow = owner.post(f"{API}/chatflows", json={"name": "Served", "nodes": nodes, "edges": edges}).get_json()
    assert owner.post(f"{API}/chatflows/{flow['id']}/publish", json={}).status_code == 201
    key = owner.post(f"{API}/workspaces/{owner.workspace_id}/api-keys",
                     json={"name": "server", "permissions": ["chat"]}).get_json()["key"]
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        session = client.post(f"{API}/public/bots/{flow['public_id']}/sessions", json={}).json()["session_id"]
        answered = client.post(f"{API}/public/bots/{flow['public_id']}/sessions/{session}/messages",
                               json={"message": QUESTION, "stream": True})
    events = [line for line in answered.text.splitlines() if line.startswith("data: ")]
    done = json.loads(events[-1][6:])
    assert done["finish_reason"] == "stop", done
    assert PASSAGE in "".join(json.loads(line[6:]).get("text", "") for line in events)
