"""The chatflow engine core: graph validation, templates, the run loop and the context handed to nodes.

Node types come only from the registry the caller passes (``state().plugins.node_types``); nothing here imports a
node module or names a node type, so a third-party node behaves exactly like a built-in one.
"""
