"""What the canvas script asks while a chatflow is edited: save the graph (JSON in, the store's verdict out as
JSON), the side panel of one node and a test run (JSON in, an HTML fragment out, rendered here so the forms and the
trace are the server's templates like every other page).

Each takes the graph being edited from the request body, not from the database: the person sees their unsaved
changes in the panel and tests them before saving. The body's shape is checked here (objects and lists where the
store and the templates expect them) so odd input is a 422 with a message, never a 500.
"""

from __future__ import annotations

import json

from flask import jsonify, render_template, request

from privex.extensions import db
from privex.models import Chatflow
from privex.services.chatflows import runtime, store
from privex.services.errors import Invalid, ServiceError
from privex.statuses import status_of
from privex.web.chatflows import bp
from privex.web.chatflows.schema_form import config_fields, type_label
from privex.web.forms import credential_choices, knowledge_choices
from privex.web.shell import may, resource_or_404, workspace_for

ON_ERROR = (("stop", "Stop the flow with an error"), ("default", "Carry on with the default outputs"),
            ("error_port", "Follow this node’s “error” connections"))
MAX_MESSAGE = 4000


@bp.post("/<chatflow_id>/graph")
def save(chatflow_id):
    """Save the graph being edited as the working copy; refused (422) with the problems per node, nothing saved."""
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    try:
        nodes, edges = posted_graph(body())
        store.update(workspace_for("resources.write"), chatflow, nodes=nodes, edges=edges)
    except ServiceError as error:
        return refusal(error)
    return jsonify({"message": "Saved."})


@bp.post("/<chatflow_id>/panel")
def panel(chatflow_id):
    """The side panel of one node of the graph being edited: its settings form, policies and connections."""
    chatflow = resource_or_404(Chatflow, chatflow_id)
    try:
        posted = body()
        nodes, edges = posted_graph(posted)
        node_id = posted.get("node_id")
        node = next((n for n in nodes if n["id"] == node_id), None)
        if node is None:
            raise Invalid("That node is not in the graph.", errors={"node_id": ["not in the graph"]})
        messages = [str(m) for m in posted.get("errors") or [] if isinstance(m, (str, int, float))][:50] \
            if isinstance(posted.get("errors"), list) else []
    except ServiceError as error:
        return refusal(error)
    types = {entry["type"]: entry for entry in runtime.catalogue()}
    entry = types.get(node["type"])
    fields, rest = config_fields((entry or {}).get("config_schema") or {}, node.get("config") or {}, messages,
                                 knowledge=knowledge_choices(), credentials=credential_choices())
    return render_template(
        "partials/chatflows/panel.html", chatflow=chatflow, node=node, entry=entry, fields=fields, rest=rest,
        policies=policies(node), on_error=ON_ERROR, types=types, type_label=type_label,
        outgoing=[(index, e) for index, e in enumerate(edges) if e.get("source") == node_id],
        incoming=[(index, e) for index, e in enumerate(edges) if e.get("target") == node_id],
        targets=[(n, types.get(n["type"])) for n in nodes if n["id"] != node_id],
        outputs=list((entry or {}).get("outputs") or ()) + ["error"], can_write=may("resources.write"))


@bp.post("/<chatflow_id>/test")
def test(chatflow_id):
    """Run the graph being edited on one message (or resume a paused run with the answer): the answer and each
    node's trace."""
    chatflow = resource_or_404(Chatflow, chatflow_id, "resources.write")
    try:
        posted = body()
        nodes, edges = posted_graph(posted)
        message, state, answer = test_input(posted, {n["id"] for n in nodes})
        events = list(runtime.test_run(workspace_for("resources.write"), nodes, edges, message, state=state,
                                       answer=answer, config=chatflow.config))  # its model, as visitors get
    except ServiceError as error:
        return refusal(error)
    return render_template("partials/chatflows/test_result.html", chatflow=chatflow, message=message, answer=answer,
                           run=summary(events), type_label=type_label)


# -- the request body ----------------------------------------------------------------------------------------------

def body() -> dict:
    found = request.get_json(silent=True) if request.is_json else None
    if not isinstance(found, dict):
        raise Invalid("Send a JSON object.", errors={"body": ["a JSON object with nodes and edges"]})
    return found


def posted_graph(posted: dict) -> tuple[list, list]:
    """The posted ``nodes`` and ``edges``, each node an object with a text ``id`` and ``type``."""
    nodes, edges = posted.get("nodes"), posted.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise Invalid("A chatflow is a list of nodes and a list of edges.", errors={"graph": ["nodes and edges"]})
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not isinstance(node.get("type"), str):
            raise Invalid("Each node is an object with a text id and type.", errors={"graph": ["bad node"]})
        for key in ("config", "position", "retry"):
            if key in node and not isinstance(node[key], dict):
                raise Invalid(f"A node's {key} is an object.", errors={"graph": [f"bad node {key}"]})
    for edge in edges:
        if not isinstance(edge, dict) or not all(isinstance(edge.get(key), str) for key in
                                                 ("source", "source_port", "target", "target_port")):
            raise Invalid("Each edge is an object naming its source, source_port, target and target_port.",
                          errors={"graph": ["bad edge"]})
    return nodes, edges


def test_input(posted: dict, node_ids: set) -> tuple[str, dict | None, str | None]:
    message, state, answer = posted.get("message"), posted.get("state"), posted.get("answer")
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        raise Invalid("Type a message to test with.", errors={"message": ["required, at most 4000 characters"]})
    if state is not None:
        if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_MESSAGE:
            raise Invalid("Answer the question to carry on.", errors={"answer": ["required"]})
        if not paused_state(state, node_ids):
            raise Invalid("That paused run does not belong to this graph: run the test again.",
                          errors={"state": ["not a paused run of this graph"]})
    return message, state, answer


def paused_state(state, node_ids: set) -> bool:
    """Whether ``state`` looks like a paused run of a graph with these nodes. It came back from the browser: the
    engine judges its frames, but reads ``steps`` and ``session`` as they are (a made-up one was a 500)."""
    steps = state.get("steps", 0) if isinstance(state, dict) else None
    return (isinstance(state, dict) and state.get("paused_at") in node_ids
            and isinstance(state.get("session") or {}, dict)
            and isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0)


def refusal(error: ServiceError):
    db.session.rollback()
    return jsonify({"code": status_of(error), "message": error.message, "errors": error.errors}), status_of(error)


# -- what the templates show ---------------------------------------------------------------------------------------

def policies(node: dict) -> dict:
    retry = node.get("retry") or {}
    default = node.get("default")
    return {"attempts": retry.get("attempts", 1), "backoff_ms": retry.get("backoff_ms", 0),
            "on_error": node.get("on_error") or "stop",
            "default": json.dumps(default, indent=2, ensure_ascii=False) if default is not None else ""}


def summary(events) -> dict:
    """A run's events as the result shows them: the answer, its sources, each node's trace and how it ended."""
    run = runtime.gathered(events)
    return {"answer": run["answer"], "citations": run["citations"], "error": run["error"],
            "ended": {"paused": "pause"}.get(run["status"], run["status"]),
            "trace": [{**step, "inputs_json": pretty(step.get("inputs")), "outputs_json": pretty(step.get("outputs"))}
                      for step in run["trace"]],
            "pause": {"question": run["question"], "state": run["state"], "state_json": json.dumps(run["state"])}
            if run["status"] == "paused" else None}


def pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
