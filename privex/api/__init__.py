"""The REST API under /api/v1: one flask-smorest Blueprint module per resource, schemas beside them.

``register_blueprints`` is the one list of them; ``create_app`` calls it.
"""

from __future__ import annotations


def register_blueprints(api) -> tuple:
    """Register every API blueprint under /api/v1; returns them (the pages exempt them from CSRF)."""
    from privex.api import (auth, chatbots, chatflows, credentials, drafts, evaluations, health, knowledge,
                            organizations, plugins, public, wallets, workspaces)

    blueprints = (health.blp, plugins.blp, auth.blp, wallets.blp, organizations.blp, organizations.invitations_blp,
                  workspaces.blp, knowledge.blp, knowledge.documents_blp, evaluations.blp, drafts.blp, credentials.blp,
                  chatbots.blp, chatflows.blp, public.blp)
    for blueprint in blueprints:
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    return blueprints
