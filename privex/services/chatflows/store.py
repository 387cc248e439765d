"""Chatflows as saved things: the working copy the builder edits, published versions, rollback, drafts in Redis.

Every front end (the API, the builder's canvas, the back office) writes a chatflow through these functions, so a
graph that does not validate against the installed node types is never saved. ``chatflow.nodes`` / ``.edges`` are
the working copy; ``publish`` freezes it into a ``ChatflowVersion`` and deploys it (``chatflow.version`` is the
deployed number, 0 before the first publish); ``rollback`` deploys an older version and leaves the working copy as
it is. What a visitor talks to is always a version, so saving never changes a live flow.
"""

from __future__ import annotations

import copy
import uuid

import sqlalchemy as sa
from flask import current_app

from privex.clock import now
from privex.extensions import db, state
from privex.models import Chatflow, ChatflowVersion, Organization, Workspace
from privex.services import chatbots, plans
from privex.services.chatflows import graph as graphs
from privex.services.drafting import DraftStore
from privex.services.errors import Conflict, Invalid, NotFound
from privex.services.fields import check_text

MAX_NOTE = 2000


def registry():
    return state().plugins.node_types


def starter_graph() -> tuple[list, list]:
    """What a new chatflow starts with: it answers at once, so the first test run shows something."""
    nodes = [{"id": "start", "type": "start", "config": {}, "position": {"x": 40, "y": 120}},
             {"id": "answer", "type": "response", "config": {"text": "You said: {{ input }}"},
              "position": {"x": 360, "y": 120}}]
    edges = [{"source": "start", "source_port": "out", "target": "answer", "target_port": "in"}]
    return _stamped(nodes), edges


def _stamped(nodes: list) -> list:
    """Nodes with the installed version of their type where they name none (a stored graph keeps resolving when a
    node type evolves, because it says which version it was written for)."""
    types = registry()
    stamped = []
    for node in nodes:
        node = dict(node)
        try:
            cls = types[node["type"]] if isinstance(node.get("type"), str) else None
        except LookupError:  # not installed: validation names it
            cls = None
        if "version" not in node and cls is not None:
            node["version"] = str(getattr(cls, "version", "1"))
        stamped.append(node)
    return stamped


def checked_graph(nodes, edges) -> tuple[list, list]:
    """The graph, validated (``Invalid`` with per-node, per-edge and graph errors) and stamped with versions."""
    _graph_shape(nodes, edges)
    nodes = _stamped(nodes)
    graphs.validate({"nodes": nodes, "edges": edges}, registry())
    return nodes, copy.deepcopy(edges)


def problems(nodes, edges) -> dict | None:
    """The validation errors of a graph (``{"nodes": ..., "edges": ..., "graph": [...]}``), None when it is valid."""
    try:
        checked_graph(nodes, edges)
    except Invalid as error:
        return error.errors or {"graph": [str(error)]}
    return None


def check_details(changes: dict) -> None:
    errors: dict = {}
    chatbots.check_details({key: changes[key] for key in ("name", "description", "status") if key in changes})
    if "note" in changes:
        check_text(changes, errors, "note")
    if errors:
        raise Invalid("some chatflow details are invalid; see `errors`", errors=errors)


def _user_id(user):
    return getattr(user, "id", user)


def create(workspace: Workspace, user, name, description=None, nodes=None, edges=None, config=None,
           status: str = "active") -> Chatflow:
    """A chatflow from a name and optionally a graph (a starter graph otherwise) and deployment settings; within
    the plan's limit. Not live until it is published. Commits."""
    check_details({"name": name, "description": description, "status": status})
    plans.enforce(db.session.get(Organization, workspace.organization_id), "chatflows")
    if nodes is None and edges is None:
        nodes, edges = starter_graph()
    nodes, edges = checked_graph(nodes if nodes is not None else [], edges if edges is not None else [])
    chatflow = Chatflow(workspace_id=workspace.id, name=name, description=description, status=status,
                        nodes=nodes, edges=edges, version=0, created_by_id=_user_id(user),
                        config=chatbots.resolve_config(workspace, {}, config or {}))
    db.session.add(chatflow)
    db.session.commit()
    return chatflow


def get(workspace: Workspace, chatflow_id) -> Chatflow:
    try:
        chatflow_id = chatflow_id if isinstance(chatflow_id, uuid.UUID) else uuid.UUID(str(chatflow_id))
    except ValueError:
        raise NotFound("Chatflow not found.") from None
    chatflow = db.session.scalar(sa.select(Chatflow).where(Chatflow.workspace_id == workspace.id,
                                                           Chatflow.id == chatflow_id))
    if chatflow is None:
        raise NotFound("Chatflow not found.")
    return chatflow


def listing(workspace: Workspace):
    """The workspace's chatflows, newest first, as a statement (the API pages and filters it)."""
    return sa.select(Chatflow).where(Chatflow.workspace_id == workspace.id).order_by(Chatflow.created_at.desc(),
                                                                                     Chatflow.id)


def update(workspace: Workspace, chatflow: Chatflow, *, name=None, description=None, nodes=None, edges=None,
           status=None, config=None, **unused) -> Chatflow:
    """Change details, deployment settings or the working copy; nothing is saved unless all of it is valid, and the
    deployed version is untouched. Commits."""
    changes = {key: value for key, value in (("name", name), ("description", description), ("status", status))
               if value is not None}
    check_details(changes)
    graph = None
    if nodes is not None or edges is not None:
        graph = checked_graph(chatflow.nodes if nodes is None else nodes, chatflow.edges if edges is None else edges)
    settings = chatbots.resolve_config(workspace, chatflow.config, config) if config is not None else None
    if graph is not None:
        chatflow.nodes, chatflow.edges = graph
    if settings is not None:
        chatflow.config = settings
    for key, value in changes.items():
        setattr(chatflow, key, value)
    db.session.commit()
    return chatflow


def publish(workspace: Workspace, chatflow: Chatflow, user, note: str | None = None) -> ChatflowVersion:
    """Freeze the working copy (validated again: a node type may have gone since it was saved) into the next
    version and deploy it. Commits."""
    check_details({"note": note} if note is not None else {})
    nodes, edges = checked_graph(chatflow.nodes, chatflow.edges)
    db.session.execute(sa.select(Chatflow.id).where(Chatflow.id == chatflow.id).with_for_update())
    number = (db.session.scalar(sa.select(sa.func.max(ChatflowVersion.number)).where(
        ChatflowVersion.chatflow_id == chatflow.id)) or 0) + 1
    version = ChatflowVersion(workspace_id=workspace.id, chatflow_id=chatflow.id, number=number, nodes=nodes,
                              edges=edges, note=note, created_by_id=_user_id(user))
    db.session.add(version)
    chatflow.version = number
    chatflow.deployed_at = now()
    db.session.commit()
    return version


def versions(chatflow: Chatflow) -> list[ChatflowVersion]:
    return list(db.session.scalars(sa.select(ChatflowVersion).where(ChatflowVersion.chatflow_id == chatflow.id)
                                   .order_by(ChatflowVersion.number.desc())))


def version_of(chatflow: Chatflow, number: int) -> ChatflowVersion:
    version = db.session.scalar(sa.select(ChatflowVersion).where(ChatflowVersion.chatflow_id == chatflow.id,
                                                                 ChatflowVersion.number == number))
    if version is None:
        raise NotFound(f"This chatflow has no version {number}.", errors={"version": ["no such version"]})
    return version


def deployed(chatflow: Chatflow) -> ChatflowVersion | None:
    return version_of(chatflow, chatflow.version) if chatflow.version else None


def rollback(workspace: Workspace, chatflow: Chatflow, number) -> ChatflowVersion:
    """Deploy version ``number`` again (checked against today's node types); the working copy stays. Commits."""
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number < 2**31:
        raise Invalid("version must be a version number", errors={"version": ["a whole number from 1"]})
    version = version_of(chatflow, number)
    checked_graph(version.nodes, version.edges)
    chatflow.version = version.number
    chatflow.deployed_at = now()
    db.session.commit()
    return version


def restore(workspace: Workspace, chatflow: Chatflow, number) -> Chatflow:
    """Copy version ``number`` into the working copy (to edit from it); what is deployed stays. Commits."""
    version = version_of(chatflow, number)
    return update(workspace, chatflow, nodes=copy.deepcopy(version.nodes), edges=copy.deepcopy(version.edges))


def delete(workspace: Workspace, chatflow: Chatflow) -> None:
    """Delete a chatflow with its versions and conversations (its leads and token usage stay). Commits."""
    db.session.delete(chatflow)
    db.session.commit()


# -- drafts: a chatflow being built before it exists (the seed's /chatflows/drafts) ---------------------------------

DRAFTS = DraftStore("privex:flow-draft")


def get_draft(workspace: Workspace, draft_id) -> dict:
    draft = DRAFTS.read(draft_id)
    if draft is None or draft["workspace_id"] != str(workspace.id):
        raise NotFound("Chatflow draft not found: it never existed, was finalized or deleted, or expired "
                       f"({current_app.config.get('DRAFT_HOURS', 24)} hours after its last change).")
    return draft


def draft_view(draft: dict) -> dict:
    """The draft with its current validation problems: a draft may be unfinished, so saving it never refuses a
    graph for being incomplete (only for not being a graph at all)."""
    return {**draft, "problems": problems(draft["nodes"], draft["edges"])}


NODE_TEXT = ("id", "type", "version")
EDGE_TEXT = ("source", "source_port", "target", "target_port")
MAX_ID = 100
SHAPES = {"config": "an object", "position": "an object of x and y numbers"}
TEXT_SHAPE = f"a text of 1 to {MAX_ID} characters"


def _graph_shape(nodes, edges) -> None:
    """Refuse what is not a graph at all (the validator judges a graph; this judges JSON): lists of objects whose
    ids, types, versions and ports are short strings, a position of two numbers, settings an object."""
    if not isinstance(nodes, list) or not isinstance(edges, list) or not all(
            isinstance(item, dict) for item in [*nodes, *edges]):
        raise Invalid("nodes and edges must be lists of objects",
                      errors={"graph": ["nodes and edges must be lists of objects"]})
    if len(nodes) > graphs.MAX_NODES:
        raise Invalid(f"A chatflow has at most {graphs.MAX_NODES} nodes.", errors={"nodes": ["too many nodes"]})
    errors: dict = {}
    for where, items, keys, required in (("nodes", nodes, NODE_TEXT, ("id", "type")),
                                         ("edges", edges, EDGE_TEXT, ("source", "target"))):
        for index, item in enumerate(items):
            wrong = [key for key in keys if (key in required or item.get(key) is not None) and not (
                isinstance(item.get(key), str) and 0 < len(item[key]) <= MAX_ID)]
            if where == "nodes":
                if not isinstance(item.get("config", {}), dict):
                    wrong.append("config")
                position = item.get("position")
                if position is not None and not (isinstance(position, dict) and all(
                        isinstance(position.get(axis), (int, float)) and not isinstance(position.get(axis), bool)
                        for axis in ("x", "y"))):
                    wrong.append("position")
            if wrong:
                errors.setdefault(where, {})[str(index)] = [f"{key}: {SHAPES.get(key, TEXT_SHAPE)}" for key in wrong]
    if errors:
        raise Invalid("some nodes or edges are not well formed; see `errors`", errors=errors)


def new_draft(workspace: Workspace, user, payload: dict) -> dict:
    check_details({key: payload[key] for key in ("name", "description") if key in payload} | {
        "name": payload.get("name")})
    if payload.get("nodes") is None and payload.get("edges") is None:
        nodes, edges = starter_graph()
    else:
        nodes, edges = payload.get("nodes") or [], payload.get("edges") or []
    _graph_shape(nodes, edges)
    config = chatbots.resolve_config(workspace, {}, payload.get("config") or {})
    user_id = _user_id(user)
    return draft_view(DRAFTS.save({
        "id": str(uuid.uuid4()), "workspace_id": str(workspace.id), "created_at": now().isoformat(),
        "created_by_id": str(user_id) if user_id else None, "name": payload["name"],
        "description": payload.get("description"), "nodes": _stamped(nodes), "edges": edges, "config": config}))


def update_draft(workspace: Workspace, draft: dict, changes: dict) -> dict:
    check_details({key: changes[key] for key in ("name", "description") if key in changes})
    nodes, edges = changes.get("nodes", draft["nodes"]), changes.get("edges", draft["edges"])
    _graph_shape(nodes, edges)
    if "config" in changes:
        draft["config"] = chatbots.resolve_config(workspace, draft["config"], changes["config"])
    draft["nodes"], draft["edges"] = _stamped(nodes), edges
    for key in ("name", "description"):
        if key in changes:
            draft[key] = changes[key]
    return draft_view(DRAFTS.save(draft))


def finalize_draft(workspace: Workspace, draft: dict, user) -> Chatflow:
    """Save the draft as a chatflow and publish its graph as version 1 (422 with the graph's errors when it does not
    validate; the draft stays). The draft goes."""
    if problems(draft["nodes"], draft["edges"]):
        checked_graph(draft["nodes"], draft["edges"])   # raises the errors
    chatflow = create(workspace, user, draft["name"], draft.get("description"), draft["nodes"], draft["edges"],
                      draft.get("config"))
    publish(workspace, chatflow, user, note="first version")
    DRAFTS.delete(draft["id"])
    return chatflow


def ensure_live(chatflow: Chatflow) -> ChatflowVersion:
    """The version visitors talk to; Conflict when the chatflow was never published or is not active."""
    if chatflow.status != "active":
        raise Conflict("This chatflow is not live: its status is " + chatflow.status)
    version = deployed(chatflow)
    if version is None:
        raise Conflict("This chatflow has not been published yet: publish it to deploy it.")
    return version

