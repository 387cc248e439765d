"""``/team/credentials``: the current workspace's third-party credentials (a Notion integration token, a Google
account, an LLM server's API key). A secret goes in — as names and values, or as JSON — and never comes out: pages
show each value's ``hints`` (its last characters) only, and a form re-shown with an error never echoes what was
typed into a secret field. Every creation, change, rotation and use is in the credential's audit log.

Anyone in the workspace sees the list (``resources.read``); editors and admins add, change, rotate and delete
(``resources.write``), as on the API.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import render_template, request
from flask_login import current_user
from sqlalchemy.orm import selectinload
from wtforms import DateField, FieldList, Form, FormField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from privex.extensions import db
from privex.models import Credential, CredentialAuditLog, User
from privex.models.credentials import CREDENTIAL_TYPES
from privex.services import credentials as service
from privex.web.forms import PageForm, form_status, show_errors
from privex.web.shell import resource_or_404, scoped
from privex.web.team import bp, common
from privex.web.team.keys import end_of

PAIRS = 4  # rows of name/value inputs; a secret with more values is pasted as JSON
TYPES = {"token": "Token", "api_key": "API key", "oauth2": "OAuth 2 (refreshes itself)", "basic": "User and password",
         "custom": "Something else"}
PROVIDERS = {
    "notion": 'a Notion integration: the name "token", its value secret_…',
    "google_docs": 'Google Docs: "access_token"; or, with the type OAuth 2, "refresh_token", "client_id" and '
                   '"client_secret", and the access token is renewed whenever it expires',
    "openai": 'an OpenAI-compatible server: "api_key"',
    "ollama": 'Ollama or Secret AI behind a key: "api_key"',
}
assert set(TYPES) == set(CREDENTIAL_TYPES)


class SecretPair(Form):
    key = StringField("Name")
    value = PasswordField("Value")  # never written back into the page


class SecretForm(PageForm):
    """The secret's fields: name/value rows, or the whole secret as JSON (one of the two)."""

    pairs = FieldList(FormField(SecretPair), min_entries=PAIRS, max_entries=PAIRS)
    secret_forgotten = False
    secret_json = TextAreaField("Or the whole secret as JSON", description='For example {"token": "secret_…"}. '
                                "Use either the rows above or this, not both.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for number, entry in enumerate(self.pairs, start=1):
            entry.form.key.label.text = f"Name {number}"
            entry.form.value.label.text = f"Value {number}"

    def secret(self) -> dict | None:
        """The secret typed, or None with the reason beside the field at fault."""
        pairs, refused = {}, False
        for entry in self.pairs:
            name, value = (entry.form.key.data or "").strip(), entry.form.value.data or ""
            if value and not name:
                entry.form.key.errors = ["Give this value a name, e.g. token."]
                refused = True
            elif name and not value:
                entry.form.value.errors = [f"Give the value of {name}."]
                refused = True
            elif name in pairs:
                entry.form.key.errors = [f"{name} is given twice."]
                refused = True
            elif name:
                pairs[name] = value
        text = (self.secret_json.data or "").strip()
        if text and pairs:
            self.secret_json.errors = ["Use either the rows above or JSON, not both."]
            return None
        if text:
            return self._parsed(text)
        if not pairs and not refused:
            self.pairs[0].form.key.errors = ["Give at least one name and its value, or the secret as JSON below."]
        return None if refused or not pairs else pairs

    def _parsed(self, text: str) -> dict | None:
        try:
            secret = json.loads(text)
        except ValueError as error:  # its message names a position, never the text
            self.secret_json.errors = [f"This is not JSON: {error.msg} (line {error.lineno}, column {error.colno})."]
            return None
        if not isinstance(secret, dict) or not secret:
            self.secret_json.errors = ['Write an object of names and values, like {"token": "secret_…"}.']
            return None
        return secret

    def forget_secret(self) -> None:
        """Before the form is shown again: nothing typed into a secret field goes back into the page (the page then
        says so, when something had been typed)."""
        self.secret_forgotten = bool((self.secret_json.data or "").strip()) or any(
            entry.form.value.data for entry in self.pairs)
        self.secret_json.data = ""
        self.secret_json.raw_data = []
        for entry in self.pairs:
            entry.form.value.data = ""


class CredentialForm(SecretForm):
    name = StringField("Name", description="Yours to choose, e.g. “Notion — company wiki”.")
    provider = StringField("Provider", description="In lower case, e.g. notion, google_docs, openai, ollama.")
    credential_type = SelectField("Type", default="token", validate_choice=False, choices=common.choices(TYPES.items()))
    expires_on = DateField("Expires after", validators=[Optional()],
                           description="Optional, a reminder for you: when the provider says this secret expires.")


class DetailsForm(PageForm):
    name = StringField("Name")
    expires_on = DateField("Expires after", validators=[Optional()],
                           description="Optional, a reminder for you: when the provider says this secret expires.")


FIELDS = {"expires_at": "expires_on", "secret": "secret_json", "metadata": None}
# The audit log in words: what happened, and which details a change touched.
ACTIONS = {"create": "Stored", "update": "Changed", "rotate": "Secret replaced", "use": "Used", "read": "Read",
           "delete": "Deleted", "test": "Tested"}
CHANGED = {"name": "name", "expires_at": "expiry", "metadata_": "details", "secret": "secret"}


def render_list(*, form: CredentialForm | None = None, problem: str | None = None) -> str:
    workspace = common.workspace("resources.read")
    page = common.listing(scoped(Credential).order_by(Credential.name, Credential.id))
    return render_template("team/credentials.html", workspace=workspace, page=page, problem=problem,
                           form=form or CredentialForm(formdata=None), types=TYPES, providers=PROVIDERS)


@bp.get("/credentials")
def credentials():
    return render_list()


@bp.post("/credentials")
def add_credential():
    workspace = common.workspace("resources.write")
    form = CredentialForm()
    if form.validate_on_submit():
        secret = form.secret()
        if secret is not None:
            with show_errors(form, fields=FIELDS):
                details = {"name": form.name.data or "", "provider": (form.provider.data or "").strip(),
                           "credential_type": form.credential_type.data,
                           "expires_at": end_of(form.expires_on.data)}
                credential = service.create(workspace, current_user.id, details, secret)
                return common.done(f"The credential {credential.name} was saved, encrypted. Its secret is never "
                                   f"shown again.", "web.team.credential", cred_id=credential.id)
    form.forget_secret()
    return render_list(form=form), common.refusal_status(form)


# -- one credential ------------------------------------------------------------------------------------------------

def render_one(credential: Credential, *, details: DetailsForm | None = None, rotate: SecretForm | None = None,
               problem: str | None = None) -> str:
    if details is None:
        details = DetailsForm(formdata=None, name=credential.name,
                              expires_on=credential.expires_at.date() if credential.expires_at else None)
    return render_template("team/credential.html", details=details, rotate=rotate or SecretForm(formdata=None),
                           problem=problem, types=TYPES, used=service.used_by(credential), **log_context(credential))


def log_context(credential: Credential) -> dict:
    """One page of the credential's audit log (``?page=N``), newest first, with the people in it."""
    log = common.listing(scoped(CredentialAuditLog).where(CredentialAuditLog.credential_id == credential.id)
                         .order_by(CredentialAuditLog.created_at.desc(), CredentialAuditLog.id), per_page=20)
    people = {user.id: user for user in db.session.scalars(
        sa.select(User).where(User.id.in_({entry.user_id for entry in log.items if entry.user_id}))
        .options(selectinload(User.identities)))}
    return {"credential": credential, "log": log, "people": people, "person": common.person, "actions": ACTIONS,
            "changed": CHANGED}


def found(cred_id, action: str = "resources.read") -> Credential:
    with common.plainly(action):
        return resource_or_404(Credential, cred_id, action)


@bp.get("/credentials/<uuid:cred_id>")
def credential(cred_id):
    row = found(cred_id)
    if request.htmx.target == "audit-log":  # another page of the log, from its pagination
        return render_template("partials/team/audit_log.html", **log_context(row))
    return render_one(row)


@bp.post("/credentials/<uuid:cred_id>")
def edit_credential(cred_id):
    row = found(cred_id, "resources.write")
    form = DetailsForm()
    if form.validate_on_submit():
        with show_errors(form, fields=FIELDS):
            service.update(row, current_user.id, {"name": form.name.data or "",
                                                  "expires_at": end_of(form.expires_on.data)})
            return common.done("The credential's details were saved.", "web.team.credential", cred_id=row.id)
    return render_one(row, details=form), form_status(form)


@bp.post("/credentials/<uuid:cred_id>/rotate")
def rotate_credential(cred_id):
    row = found(cred_id, "resources.write")
    form = SecretForm()
    if form.validate_on_submit():
        secret = form.secret()
        if secret is not None:
            with show_errors(form, fields=FIELDS):
                service.rotate(row, current_user.id, secret)
                return common.done("The new secret replaced the old one; what uses this credential uses it from "
                                   "now on.", "web.team.credential", cred_id=row.id)
    form.forget_secret()
    return render_one(row, rotate=form), common.refusal_status(form)


@bp.post("/credentials/<uuid:cred_id>/delete")
def delete_credential(cred_id):
    row = found(cred_id, "resources.write")
    name = row.name
    service.delete(row)
    return common.done(f"The credential {name} was deleted.", "web.team.credentials")
