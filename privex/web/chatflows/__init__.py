"""Chatflows: build a conversation as a graph of nodes on a canvas, try it, publish it, roll it back.

The list, a new chatflow and deleting one are ordinary server-rendered pages (``pages``). The canvas page is
server-rendered too — the palette of every installed node type (``services.chatflows.runtime.catalogue``), the
versions with their roll-back buttons, the publish form and how to deploy — with one small script
(``static/chatflows.js``, no library) that draws the graph, moves nodes and connects ports by mouse or keyboard, and
keeps the graph being edited in the browser until it is saved: a refused save (422) loses nothing.

What the script cannot know it asks the server for, as HTML fragments rendered here (``editing``): the side panel
of the selected node (a form generated from its type's JSON Schema, its retry and error settings, its connections,
the save's refusals beside the fields they concern) and a test run's answer and trace. Saving posts the graph as
JSON and gets the store's verdict back as JSON (``{"errors": {"nodes": {id: [...]}, "edges": {index: [...]},
"graph": [...]}}``), which the script draws on the nodes.

Modules: ``pages`` (list, new, canvas, publish, roll back, delete), ``editing`` (save, panel, test run),
``schema_form`` (a node type's JSON Schema as form fields; the palette's groups), ``forms``.
Templates: ``templates/chatflows/`` and ``templates/partials/chatflows/``.
"""

from __future__ import annotations

from flask import Blueprint

from privex.web.shell import NavEntry

bp = Blueprint("chatflows", __name__, url_prefix="/chatflows")
NAV = NavEntry("Chatflows", "web.chatflows.index", order=35)

from privex.web.chatflows import editing, pages  # noqa: E402,F401  (their routes are on bp)
