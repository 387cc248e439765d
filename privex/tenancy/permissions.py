"""The one permission table: which role, at least, may do each action.

Organization roles rank owner > admin > member; workspace roles rank admin > editor > viewer. An organization's
owners and admins act as admins of every workspace in it. Everything that decides "may this caller do that" reads
this table through ``privex.tenancy.context.require``.
"""

from __future__ import annotations

ORG_RANK = {"member": 1, "admin": 2, "owner": 3}
WORKSPACE_RANK = {"viewer": 1, "editor": 2, "admin": 3}

# action -> (level, least role). Level "org" is checked against the organization role, "workspace" against the
# effective workspace role.
PERMISSIONS: dict[str, tuple[str, str]] = {
    "org.read": ("org", "member"),
    "org.update": ("org", "admin"),
    "org.delete": ("org", "owner"),
    "org.transfer": ("org", "owner"),
    "org.members.read": ("org", "member"),
    "org.members.invite": ("org", "admin"),
    "org.members.update": ("org", "admin"),
    "org.members.remove": ("org", "admin"),
    "org.billing.read": ("org", "admin"),
    "org.billing.update": ("org", "owner"),
    "workspace.create": ("org", "admin"),
    "workspace.read": ("workspace", "viewer"),
    "workspace.update": ("workspace", "admin"),
    "workspace.delete": ("workspace", "admin"),
    "workspace.transfer": ("workspace", "admin"),
    "workspace.members.read": ("workspace", "viewer"),
    "workspace.members.invite": ("workspace", "admin"),
    "workspace.members.update": ("workspace", "admin"),
    "workspace.members.remove": ("workspace", "admin"),
    "api_keys.read": ("workspace", "admin"),
    "api_keys.create": ("workspace", "admin"),
    "api_keys.revoke": ("workspace", "admin"),
    # Workspace resources (chatbots, knowledge bases, leads, ...): read by anyone in the workspace, changed by editors.
    "resources.read": ("workspace", "viewer"),
    "resources.write": ("workspace", "editor"),
}

# What an API key's scopes let it do: read its workspace and work with its resources; never membership, keys or
# billing.
API_KEY_SCOPES = {
    "read": {"workspace.read", "resources.read"},
    "write": {"workspace.read", "resources.read", "resources.write"},
    "chat": set(),  # the public chat API (authorized per bot)
}


def effective_workspace_role(org_role: str | None, workspace_role: str | None) -> str | None:
    if org_role in ("owner", "admin"):
        return "admin"
    return workspace_role if org_role else None


def allows(action: str, org_role: str | None, workspace_role: str | None) -> bool:
    level, least = PERMISSIONS[action]
    if level == "org":
        return org_role is not None and ORG_RANK[org_role] >= ORG_RANK[least]
    role = effective_workspace_role(org_role, workspace_role)
    return role is not None and WORKSPACE_RANK[role] >= WORKSPACE_RANK[least]
