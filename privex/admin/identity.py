"""People in the back office: users (renamed, deactivated through ``privex.services.accounts``; created only by
signing up or ``privex create-admin``), and the sign-in rows the system alone writes, read-only."""

from __future__ import annotations

from flask_login import current_user
from wtforms import BooleanField, StringField

from privex.admin import display
from privex.admin.forms import AdminForm
from privex.admin.views import ReadOnlyView, ServiceView, empty_to_none
from privex.services import accounts
from privex.services.errors import Invalid


class UserForm(AdminForm):
    username = StringField("Username")
    display_name = StringField("Display name")
    is_active = BooleanField("Active", description="Inactive users cannot sign in; deactivating signs them out.")


class UserView(ServiceView):
    can_create = False  # people sign up, and operators are made with `privex create-admin`
    can_delete = False  # deactivate instead: deleting would orphan the organizations they own
    column_list = ("email", "username", "display_name", "is_active", "is_superuser", "last_login_at", "created_at")
    column_details_list = ("id", "email", "username", "display_name", "is_active", "is_superuser", "last_login_at",
                           "created_at", "updated_at")
    column_formatters = {"email": display.email_of}
    column_labels = {"email": "Email", "is_superuser": "Platform operator", "is_active": "Active"}
    # Emails are the provider ids of email identities (wallet addresses match too, which helps as much).
    column_searchable_list = ("username", "display_name", "identities.provider_id")
    column_filters = ("is_active", "is_superuser", "last_login_at")
    column_default_sort = ("created_at", True)

    def search_placeholder(self) -> str:
        return "Email, username or name"

    def get_edit_form(self):
        return UserForm

    def update(self, form, row) -> None:
        if row.id == current_user.id and not form.is_active.data:
            raise Invalid("you cannot deactivate yourself", errors={"is_active": ["you cannot deactivate yourself"]})
        accounts.update_user(row, {"username": form.username.data,
                                   "display_name": empty_to_none(form.display_name.data),
                                   "is_active": bool(form.is_active.data)})


class AuthIdentityView(ReadOnlyView):
    column_list = ("provider", "provider_id", "user_id", "last_used_at", "created_at")
    column_labels = {"provider_id": "Email or address"}


class AuthSessionView(ReadOnlyView):
    column_list = ("user_id", "provider", "ip_address", "user_agent", "last_used_at", "revoked_at", "revoked_reason")
    column_filters = ("provider", "revoked_reason")


class RefreshTokenView(ReadOnlyView):
    column_list = ("session_id", "expires_at", "used_at", "created_at")


class APIKeyView(ReadOnlyView):
    """Keys are created where they can be shown once (the API) and stored hashed."""

    column_list = ("name", "prefix", "workspace_id", "permissions", "last_used_at", "expires_at", "revoked_at")
