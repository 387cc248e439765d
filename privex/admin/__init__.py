"""The operators' back office at /admin (Flask-Admin), open only to platform superusers.

One view per model. Rows that have a service (chatbots, knowledge bases, documents, organizations, workspaces,
members, users) are written through it, exactly as the API writes them, so the back office cannot save what the API
would refuse; rows only the system writes are read-only. Secrets (password hashes, encrypted credentials, API key
and token hashes) are excluded from every list, detail, form, search and export: they never leave the database
through this package.

Modules: ``views`` (access, the read-only and service view kinds), ``forms``, ``display`` (labels and formatting),
and one module per area: ``identity``, ``tenancy``, ``bots``, ``knowledge``, ``activity``.
"""

from __future__ import annotations

from flask_admin import Admin, AdminIndexView
from flask_admin.theme import Bootstrap4Theme
from flask_wtf.csrf import generate_csrf

from privex import models
from privex.admin import activity, bots, identity, knowledge, tenancy
from privex.admin.views import SECRET_COLUMNS, SuperuserOnly, is_superuser
from privex.extensions import db

__all__ = ["SECRET_COLUMNS", "init_admin", "is_superuser"]


class IndexView(SuperuserOnly, AdminIndexView):
    pass


CATEGORIES = {
    "Identity": ((models.User, identity.UserView), (models.AuthIdentity, identity.AuthIdentityView),
                 (models.AuthSession, identity.AuthSessionView), (models.RefreshToken, identity.RefreshTokenView),
                 (models.APIKey, identity.APIKeyView)),
    "Tenancy": ((models.Organization, tenancy.OrganizationView),
                (models.OrganizationMember, tenancy.OrganizationMemberView),
                (models.Workspace, tenancy.WorkspaceView), (models.WorkspaceMember, tenancy.WorkspaceMemberView),
                (models.Invitation, tenancy.InvitationView)),
    "Bots": ((models.Chatbot, bots.ChatbotView), (models.Chatflow, bots.ChatflowView),
             (models.ChatflowVersion, bots.ChatflowVersionView)),
    "Knowledge": ((models.KnowledgeBase, knowledge.KnowledgeBaseView), (models.Document, knowledge.DocumentView),
                  (models.Chunk, knowledge.ChunkView), (models.EvaluationRun, knowledge.EvaluationRunView),
                  (models.EvaluationQuestion, knowledge.EvaluationQuestionView)),
    "Conversations": ((models.ChatSession, activity.ChatSessionView), (models.ChatMessage, activity.ChatMessageView),
                      (models.MessageFeedback, activity.MessageFeedbackView),
                      (models.TokenUsage, activity.TokenUsageView), (models.Lead, activity.LeadView)),
    "Credentials": ((models.Credential, activity.CredentialView),
                    (models.CredentialAuditLog, activity.CredentialAuditLogView)),
}


def init_admin(app) -> Admin:
    """Build the back office for ``app`` (one Admin per app: Flask-Admin views cannot be shared between apps)."""
    # The sign-out button and Flask-Admin's own forms read the token the rest of the HTML side uses.
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)
    admin = Admin(app, name="PrivexBot", url="/admin", index_view=IndexView(url="/admin"),
                  theme=Bootstrap4Theme(base_template="admin/privex_base.html", fluid=True))
    for category, views in CATEGORIES.items():
        for model, view in views:
            admin.add_view(view(model, db, category=category))
    return admin
