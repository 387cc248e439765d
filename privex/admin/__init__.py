"""The operators' back office at /admin (Flask-Admin), open only to platform superusers.

One view per model. Secrets (password hashes, encrypted credentials, API key and token hashes) are excluded from
every list, detail, form, search and export: they never leave the database through this module.
"""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_admin import Admin, AdminIndexView
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user

from privex import models
from privex.extensions import db

SECRET_COLUMNS = ("password_hash", "encrypted_data", "key_hash", "token_hash")


def is_superuser() -> bool:
    return bool(current_user.is_authenticated and current_user.is_active and current_user.is_superuser)


class SuperuserOnly:
    def is_accessible(self) -> bool:
        return is_superuser()

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        abort(403)


class IndexView(SuperuserOnly, AdminIndexView):
    pass


class SecureModelView(SuperuserOnly, ModelView):
    can_view_details = True
    can_export = False
    column_display_pk = True
    page_size = 50

    def __init__(self, model, *args, **kwargs):
        secrets = [name for name in SECRET_COLUMNS if hasattr(model, name)]
        # Relationship collections (e.g. a knowledge base's chunks) would load whole tables into a form.
        self.column_exclude_list = list(secrets) + ["embedding", "text_search"]
        self.column_details_exclude_list = list(self.column_exclude_list)
        self.form_excluded_columns = list(self.column_exclude_list) + ["created_at", "updated_at"]
        self.column_searchable_list = [name for name in ("name", "username", "email", "provider_id", "prefix")
                                       if name in model.__table__.columns]
        self.column_filters = [name for name in ("workspace_id", "organization_id", "status", "provider", "role")
                               if name in model.__table__.columns]
        super().__init__(model, *args, **kwargs)


CATEGORIES = {
    "Identity": (models.User, models.AuthIdentity, models.AuthSession, models.RefreshToken, models.APIKey),
    "Tenancy": (models.Organization, models.OrganizationMember, models.Workspace, models.WorkspaceMember,
                models.Invitation),
    "Bots": (models.Chatbot, models.Chatflow),
    "Knowledge": (models.KnowledgeBase, models.Document, models.Chunk),
    "Conversations": (models.ChatSession, models.ChatMessage, models.MessageFeedback, models.TokenUsage,
                      models.Lead),
    "Credentials": (models.Credential, models.CredentialAuditLog),
}


def init_admin(app) -> Admin:
    """Build the back office for ``app`` (one Admin per app: Flask-Admin views cannot be shared between apps)."""
    admin = Admin(app, name="PrivexBot", url="/admin", index_view=IndexView(url="/admin"))
    for category, model_classes in CATEGORIES.items():
        for model in model_classes:
            admin.add_view(SecureModelView(model, db, category=category))
    return admin
