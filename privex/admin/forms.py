"""The form pieces of the back office: a CSRF-protected base form that refuses text PostgreSQL cannot store, a JSON
field that shows a setting pretty-printed and reads it back as an object, and pickers that name rows by label.

Forms only parse; whether a value is acceptable is the service's call (``views.ServiceView`` puts its answer next to
the field).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask_admin.contrib.sqla.fields import QuerySelectField, QuerySelectMultipleField
from flask_wtf import FlaskForm
from wtforms import TextAreaField

from privex import models
from privex.admin.display import label, pretty_json
from privex.extensions import db

MAX_JSON_CHARACTERS = 100_000
MAX_JSON_DEPTH = 20


def unstorable(value) -> str | None:
    """Why PostgreSQL cannot store this text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains characters that are not valid Unicode"
    return None


class AdminForm(FlaskForm):
    """Flask-WTF's form (CSRF token as everywhere else in the HTML side) with Flask-Admin's ``_obj``."""

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        self._obj = obj
        super().__init__(formdata=formdata, obj=obj, prefix=prefix, **kwargs)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            for text in field.raw_data or []:
                problem = unstorable(text) if isinstance(text, str) else None
                if problem:
                    field.errors = [*field.errors, problem]
                    valid = False
                    break
        return valid


def _depth(value, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return max((_depth(child, level + 1) for child in children), default=level)


def _has_unstorable(value) -> bool:
    if isinstance(value, str):
        return unstorable(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable(key) or _has_unstorable(child) for key, child in value.items())
    if isinstance(value, list):
        return any(_has_unstorable(child) for child in value)
    return False


class JSONObjectField(TextAreaField):
    """A JSON object edited as pretty-printed text; an empty box is ``{}``."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"rows": 14, "spellcheck": "false", "class": "form-control privex-json"})
        super().__init__(label, validators, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return pretty_json(self.data if self.data is not None else {})

    def process_formdata(self, valuelist) -> None:
        if not valuelist:
            return
        text = valuelist[0].strip()
        self.data = {}
        if not text:
            return
        if len(text) > MAX_JSON_CHARACTERS:
            raise ValueError(f"at most {MAX_JSON_CHARACTERS} characters")
        try:
            value = json.loads(text)
        except RecursionError as error:
            raise ValueError(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)") from error
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from error
        if not isinstance(value, dict):
            raise ValueError('must be a JSON object, like {"key": "value"}')
        if _depth(value) > MAX_JSON_DEPTH:
            raise ValueError(f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if _has_unstorable(value):
            raise ValueError("contains a NUL character or invalid Unicode, which cannot be stored")
        self.data = value


def _all(model, *order):
    return lambda: db.session.scalars(sa.select(model).order_by(*order)).all()


def workspace_picker(label_text: str = "Workspace", **kwargs) -> QuerySelectField:
    query = lambda: db.session.scalars(  # noqa: E731
        sa.select(models.Workspace).join(models.Organization)
        .order_by(models.Organization.name, models.Workspace.name)).all()
    return QuerySelectField(label_text, query_factory=query, get_label=label, **kwargs)


def organization_picker(label_text: str = "Organization", **kwargs) -> QuerySelectField:
    return QuerySelectField(label_text, query_factory=_all(models.Organization, models.Organization.name),
                            get_label=label, **kwargs)


def user_picker(label_text: str = "User", **kwargs) -> QuerySelectField:
    return QuerySelectField(label_text, query_factory=_all(models.User, models.User.username), get_label=label,
                            **kwargs)


def knowledge_base_picker(label_text: str = "Knowledge bases", **kwargs) -> QuerySelectMultipleField:
    def query():
        rows = db.session.scalars(sa.select(models.KnowledgeBase).order_by(models.KnowledgeBase.name)).all()
        return rows

    def kb_label(kb):
        return f"{kb.name} ({label(db.session.get(models.Workspace, kb.workspace_id))})"

    return QuerySelectMultipleField(label_text, query_factory=query, get_label=kb_label, **kwargs)
