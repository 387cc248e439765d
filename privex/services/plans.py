"""Plan tiers and the limits they set on an organization's members, workspaces, chatbots, chatflows and chat messages a
minute (all its bots together)."""

from __future__ import annotations

import sqlalchemy as sa

from privex.extensions import db
from privex.models import Chatbot, Chatflow, Invitation, OrganizationMember, Workspace
from privex.services.errors import PlanLimit

UNLIMITED = None
LIMITS = {
    "free": {"members": 5, "workspaces": 3, "chatbots": 5, "chatflows": 5, "messages_per_minute": 600},
    "pro": {"members": 25, "workspaces": 20, "chatbots": 50, "chatflows": 50, "messages_per_minute": 6000},
    "enterprise": {"members": UNLIMITED, "workspaces": UNLIMITED, "chatbots": UNLIMITED, "chatflows": UNLIMITED,
                   "messages_per_minute": UNLIMITED},
}


def usage(organization_id) -> dict[str, int]:
    def count(statement):
        return db.session.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))

    pending = sa.select(Invitation.id).where(Invitation.organization_id == organization_id,
                                             Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None),
                                             Invitation.expires_at > sa.func.now())
    return {
        "members": count(sa.select(OrganizationMember.id).where(
            OrganizationMember.organization_id == organization_id)),
        "pending_invitations": count(pending),
        "workspaces": count(sa.select(Workspace.id).where(Workspace.organization_id == organization_id)),
        "chatbots": count(sa.select(Chatbot.id).join(Workspace, Chatbot.workspace_id == Workspace.id)
                          .where(Workspace.organization_id == organization_id)),
        "chatflows": count(sa.select(Chatflow.id).join(Workspace, Chatflow.workspace_id == Workspace.id)
                           .where(Workspace.organization_id == organization_id)),
    }


def enforce(organization, what: str, adding: int = 1) -> None:
    """PlanLimit when adding ``adding`` more of ``what`` would pass the organization's plan limit."""
    limit = LIMITS[organization.subscription_tier][what]
    if limit is UNLIMITED:
        return
    used = usage(organization.id)
    current = used[what] + (used["pending_invitations"] if what == "members" else 0)
    if current + adding > limit:
        raise PlanLimit(
            f"The {organization.subscription_tier} plan allows {limit} {what} per organization and this one has "
            f"{current}; upgrade the plan to add more.",
            errors={"limit": limit, "used": current, "plan": organization.subscription_tier})
