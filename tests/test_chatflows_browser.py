"""The Chatflows pages in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on.

A person creates a chatflow from the empty list, adds a variable node and a condition between start and response
(from the palette by mouse and by keyboard), connects them (the panel's Connect form, and a drag from an output port
to an input port), configures them through the forms generated from their schemas (a JSON setting that does not
parse is refused beside its field), saves and sees the refusal on the condition node, follows the problem's link
to the node, fixes it, saves, moves a node with the arrow keys, deletes one with the Delete key, tests the flow and
reads each node's trace, publishes, edits and publishes version 2, and rolls back to version 1. The list and the
canvas are checked by axe-core (0 serious or critical violations) at desktop width and at 360 px, where the canvas
scrolls inside its box and nothing scrolls sideways; screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from privex.extensions import db
from privex.models import Chatflow
from privex.services.chatflows import store
from tests.test_builder_browser import PHONE, Tab, make_person, sign_in
from tests.test_widget_browser import browser, live  # noqa: F401 (fixtures)

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
    make_person(app, "olga@example.com", "Olga")
    tab = Tab(browser)
    page = tab.page
    problems = {}
    sign_in(page, base, "olga@example.com")

    # The empty list says what to do; a name is all a new chatflow needs.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chatflows").click()
    expect(page.get_by_text("No chatflows yet — create one")).to_be_visible()
    problems["empty list"] = tab.check("chatflows-empty")
    page.get_by_role("link", name="Create a chatflow").click()
    page.get_by_label("Name").fill("Mood check")
    page.get_by_role("button", name="Create and open the canvas").click()
    expect(page.get_by_role("heading", name="Mood check")).to_be_visible()
    expect(node(page, "start")).to_be_visible()
    [response_id] = [n["id"] for n in saved_flow(app).nodes if n["type"] == "response"]
    start_id = next(n["id"] for n in saved_flow(app).nodes if n["type"] == "start")
    expect(node(page, response_id)).to_be_visible()
    problems["new canvas"] = tab.check("chatflow-canvas-new")
    panel = page.locator("[data-cf-panel]")

    # Add a condition by mouse (found by searching) and a variable by keyboard.
    search = page.get_by_label("Search the node types")
    search.fill("cond")
    expect(page.get_by_role("status").filter(has_text="1 node type matches.")).to_be_visible()
    page.get_by_role("button", name="Condition").click()
    expect(node(page, "condition_1")).to_be_focused()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    search.fill("")
    page.get_by_role("button", name="Variable", exact=True).focus()
    page.keyboard.press("Enter")
    expect(node(page, "variable_1")).to_be_focused()
    expect(panel.get_by_role("heading", name="variable_1")).to_be_visible()

    # Configure the variable through its generated form: JSON that does not parse is refused beside its field.
    values = panel.get_by_label("Values")
    values.fill('{"mood": ')
    expect(panel.locator("#cfg-values-error")).to_contain_text("Not valid JSON")
    expect(values).to_have_attribute("aria-invalid", "true")
    values.fill('{"mood": "{{ input }}"}')
    expect(panel.locator("#cfg-values-error")).to_have_text("")
    panel.get_by_label("Transform").select_option("lower")

    # Connect by keyboard: start's output to the variable instead of straight to the response.
    node(page, start_id).focus()
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name=start_id)).to_be_visible()
    panel.get_by_role("button", name=f"Remove the connection to {response_id} from out").click()
    expect(panel.get_by_text("Not connected yet.")).to_be_visible()
    panel.get_by_label("From output", exact=True).select_option("out")
    panel.get_by_label("To node", exact=True).select_option(label="variable_1 (Variable)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text("out → variable_1 (in)")).to_be_visible()

    # Connect by mouse: drag from the variable's output port to the condition's input port.
    port(page, "variable_1", "out").drag_to(port(page, "condition_1", "in"))
    expect(page.locator("[data-cf-said]")).to_have_text("Connected variable_1 (out) to condition_1 (in).")

    # The condition: "if" goes to the response, "else" to a second response; its case has a mistake.
    node(page, "condition_1").click()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    panel.get_by_label("Cases").fill(json.dumps([{"left": "{{ variable_1.mood }}", "op": "has", "right": "happy",
                                                  "port": "if"}]))
    panel.get_by_label("From output", exact=True).select_option("if")
    panel.get_by_label("To node", exact=True).select_option(label=f"{response_id} (Response)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text(f"if → {response_id} (in)")).to_be_visible()
    page.get_by_role("button", name="Response", exact=True).click()
    expect(panel.get_by_role("heading", name="response_1")).to_be_visible()
    panel.get_by_label("Text").fill("Sorry to hear that. You said: {{ variable_1.mood }}")
    node(page, "condition_1").click()
    expect(panel.get_by_role("heading", name="condition_1")).to_be_visible()
    panel.get_by_label("From output", exact=True).select_option("else")
    panel.get_by_label("To node", exact=True).select_option(label="response_1 (Response)")
    panel.get_by_role("button", name="Connect", exact=True).click()
    expect(panel.get_by_text("else → response_1 (in)")).to_be_visible()

    # Save: refused, the problem drawn on the node and listed with a link to it; nothing is lost.
    tab.expected_statuses = {422}
    page.get_by_role("button", name="Save", exact=True).click()
    box = page.locator("[data-cf-problems]")
    expect(box).to_be_visible()
    expect(box).to_contain_text("this chatflow has 1 problem")
    expect(box).to_contain_text("'has' is not one of")
    expect(page.locator("#cf-node-condition_1")).to_have_class(re.compile(r"\binvalid\b"))
    problems["refused save"] = tab.check("chatflow-canvas-refused")
    node(page, start_id).click()  # somewhere else, then the link brings the node back
    box.get_by_role("link", name="condition_1 (Condition)").click()
    expect(node(page, "condition_1")).to_be_focused()
    expect(panel.locator("#cfg-cases-error")).to_contain_text("'has' is not one of")
    cases = panel.get_by_label("Cases")
    cases.fill(cases.input_value().replace('"has"', '"contains"'))
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("[data-cf-said]")).to_have_text("Saved.")
    expect(box).to_be_hidden()
    expect(page.locator("#cf-node-condition_1")).not_to_have_class(re.compile(r"\binvalid\b"))
    with app.app_context():
        flow = db.session.scalar(sa.select(Chatflow))
        assert {n["id"] for n in flow.nodes} == {start_id, response_id, "condition_1", "variable_1", "response_1"}
        assert {(e["source"], e["source_port"], e["target"]) for e in flow.edges} == {
            (start_id, "out", "variable_1"), ("variable_1", "out", "condition_1"),
            ("condition_1", "if", response_id), ("condition_1", "else", "response_1")}
        assert next(n for n in flow.nodes if n["id"] == "variable_1")["config"] == {
            "values": {"mood": "{{ input }}"}, "transform": "lower"}

    # Keyboard: arrow keys move the focused node; Delete removes one.
    item = page.locator("#cf-node-response_1")
    top = item.evaluate("e => parseInt(e.style.top)")
    node(page, "response_1").focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowRight")
    assert item.evaluate("e => parseInt(e.style.top)") == top + 30
    page.get_by_role("button", name="Memory", exact=True).click()
    expect(node(page, "memory_1")).to_be_focused()
    page.keyboard.press("Delete")
    expect(node(page, "memory_1")).to_have_count(0)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("[data-cf-said]")).to_have_text("Saved.")

    # Test it: the answer and each node's trace.
    page.get_by_label("Message").fill("I am HAPPY today")
    page.get_by_role("button", name="Run the test").click()
    result = page.locator("[data-cf-result]")
    expect(result.locator(".cf-answer")).to_have_text("You said: I am HAPPY today")
    expect(result.get_by_role("heading", name="What each node did")).to_be_visible()
    steps = result.locator(".cf-step-head strong")
    expect(steps).to_have_text([start_id, "variable_1", "condition_1", response_id])
    result.get_by_text("Outputs of variable_1").click()
    expect(result.locator(".cf-step").nth(1).locator("pre").last).to_contain_text('"mood": "i am happy today"')
    problems["test run"] = tab.check("chatflow-canvas-tested")
    page.get_by_label("Message").fill("Meh")
    page.get_by_role("button", name="Run the test").click()
    expect(result.locator(".cf-answer")).to_have_text("Sorry to hear that. You said: meh")

    # Publish version 1.
    page.get_by_label("What changed").fill("first")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Version 1 is published")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Version 1 live")

    # Edit again and publish version 2: the canvas saves first.
    node(page, "response_1").click()
    panel.get_by_label("Text").fill("Version two says: {{ variable_1.mood }}")
    page.get_by_label("What changed").fill("second")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Version 2 is published")).to_be_visible()
    versions = page.locator(".cf-versions > li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("Version 2")
    expect(versions.first).to_contain_text("second")
    problems["published"] = tab.check("chatflow-canvas-published")

    # Roll back to version 1: deployed again, the canvas keeps version 2's text.
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status").filter(has_text="Version 1 is deployed again")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Version 1 live")
    with app.app_context():
        flow = db.session.scalar(sa.select(Chatflow))
        assert flow.version == 1
        texts = {v.number: next(n for n in v.nodes if n["id"] == "response_1")["config"]["text"]
                 for v in store.versions(flow)}
        assert texts == {1: "Sorry to hear that. You said: {{ variable_1.mood }}",
                         2: "Version two says: {{ variable_1.mood }}"}
    page.goto(f"{base}/chatflows")
    expect(page.locator(".bot-list")).to_contain_text("Mood check")
    problems["list"] = tab.check("chatflows-list")
    tab.close()

    # A phone: the canvas scrolls inside its box, the palette and the panel below it.
    phone = Tab(browser, viewport=PHONE)
    sign_in(phone.page, base, "olga@example.com")
    phone.page.goto(f"{base}/chatflows")
    problems["list 360"] = phone.check("chatflows-list")
    phone.page.get_by_role("link", name="Mood check").click()
    expect(node(phone.page, "condition_1")).to_be_visible()
    viewport = phone.page.locator("[data-cf-viewport]")
    assert viewport.evaluate("e => e.scrollWidth > e.clientWidth")  # the graph is wider than the phone: it scrolls
    canvas_box, palette_box = (phone.page.locator(s).bounding_box() for s in (".cf-canvas", ".cf-palette"))
    assert palette_box["y"] > canvas_box["y"] + canvas_box["height"] - 1
    node(phone.page, "condition_1").click()
    expect(phone.page.locator("[data-cf-panel]").get_by_role("heading", name="condition_1")).to_be_visible()
    problems["canvas 360"] = phone.check("chatflow-canvas")
    phone.close()
    assert not tab.problems and not phone.problems, (tab.problems, phone.problems)
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)
