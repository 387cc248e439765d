"""``/team/api-keys``: the current workspace's API keys, for the public chat API and the REST API. A new key's
secret is on the page that answers its creation, with a copy button, and never again (only its hash is stored);
revoking stops it at once. Only the workspace's admins see this page (``api_keys.read``), as on the API.
"""

from __future__ import annotations

from datetime import datetime, time, timezone

from flask import render_template
from flask_login import current_user
from wtforms import DateField, SelectMultipleField, StringField
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from privex.clock import now
from privex.extensions import db
from privex.models import APIKey
from privex.services import api_keys as service
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.team import bp, common

# What each permission lets a key do, in the words of someone who does not read the API reference.
PERMISSIONS = {
    "chat": "Chat with this workspace's chatbots from your own site or server (the public chat API).",
    "read": "Read this workspace's knowledge bases, documents, chatbots and conversations, changing nothing.",
    "write": "Read, and also create, change and delete them; chat with the chatbots too.",
}


class PermissionsField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):  # an unknown permission is the service's to refuse, beside this field
        pass


class APIKeyForm(PageForm):
    name = StringField("Name", description="Where the key is used, e.g. “Website widget” or “CRM sync”.")
    permissions = PermissionsField("What it may do", choices=common.choices(PERMISSIONS.items()), default=["chat"])
    expires_on = DateField("Expires after", validators=[Optional()],
                           description="Optional: the key stops working at the end of this day (UTC). Leave empty "
                                       "for a key that works until revoked.")


def end_of(day) -> datetime | None:
    """The last moment of ``day`` (UTC): a date chosen as "expires after" still works all that day."""
    return datetime.combine(day, time.max, timezone.utc) if day else None


def render(*, form: APIKeyForm | None = None, problem: str | None = None, created: dict | None = None) -> str:
    workspace = common.workspace("api_keys.read")
    keys = common.listing(service.listed(workspace))
    return render_template("team/keys.html", workspace=workspace, keys=keys, form=form or APIKeyForm(formdata=None),
                           problem=problem, created=created, permissions=PERMISSIONS, now=now())


@bp.get("/api-keys")
def keys():
    return render()


@bp.post("/api-keys")
def create_key():
    workspace = common.workspace("api_keys.create")
    form = APIKeyForm()
    if form.validate_on_submit():
        with show_errors(form, fields={"expires_at": "expires_on"}):
            row, secret = service.create(workspace, current_user._get_current_object(), form.name.data or "",
                                         form.permissions.data, end_of(form.expires_on.data))
            created = {"name": row.name, "secret": secret, "permissions": row.permissions}
            return common.secret_page(render(created=created), 201)
    return render(form=form), form_status(form)


@bp.post("/api-keys/<uuid:key_id>/revoke")
def revoke_key(key_id):
    workspace = common.workspace("api_keys.revoke")
    key = db.session.get(APIKey, key_id)
    service.revoke(workspace, key_id)  # another workspace's key: the 404 page
    return common.done(f"The API key {key.name} ({key.prefix}…) was revoked: it stops working now.",
                       "web.team.keys")
