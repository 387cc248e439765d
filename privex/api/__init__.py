"""The REST API under /api/v1: one flask-smorest Blueprint module per resource, schemas beside them.

``register_blueprints`` is the one list of them; ``create_app`` calls it.
"""

from __future__ import annotations


def register_blueprints(api) -> None:
    from privex.api import health, plugins

    for module in (health, plugins):
        api.register_blueprint(module.blp, url_prefix=f"/api/v1{module.blp.url_prefix or ''}")
