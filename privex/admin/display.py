"""How the back office shows values: a row by its name or email (the models define only ``__repr__``), a foreign
key as a link to the row it points at, JSON pretty-printed in a <pre>, long text cut short in lists.

Nothing here writes; nothing here shows a secret (those columns never reach a formatter: see ``views``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from flask import url_for
from markupsafe import Markup

from privex import models
from privex.extensions import db

LIST_TEXT = 80  # characters of a text shown in a list; the details page shows it whole


def label(row) -> str:
    """A person-readable name for a row: a user's email (or username), a workspace with its organization, a
    row's name; an id only for rows that have nothing better."""
    if row is None:
        return ""
    if isinstance(row, models.User):
        return row.email or row.display_name or row.username
    if isinstance(row, models.Workspace):
        return f"{row.organization.name} / {row.name}"
    if isinstance(row, (models.OrganizationMember, models.WorkspaceMember)):
        place = row.organization.name if isinstance(row, models.OrganizationMember) else label(row.workspace)
        return f"{label(row.user)} in {place} ({row.role})"
    if isinstance(row, models.AuthIdentity):
        return f"{row.provider}: {row.provider_id}"
    if isinstance(row, models.ChatMessage):
        return f"{row.role}: {shorten(row.content, 40)}"
    for attribute in ("name", "email", "prefix"):
        value = getattr(row, attribute, None)
        if value:
            return str(value)
    return f"{type(row).__name__} {str(row.id)[:8]}"


def shorten(text: str, limit: int = LIST_TEXT) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def json_block(view, value, name) -> Markup:
    # Focusable: a long value scrolls inside it, and keyboard users must be able to scroll it.
    return Markup('<pre class="privex-json" tabindex="0">{}</pre>').format(pretty_json(value))


def json_in_list(view, value, name) -> Markup:
    return Markup("<code>{}</code>").format(shorten(json.dumps(value, ensure_ascii=False, sort_keys=True,
                                                               default=str)))


def text_in_list(view, value, name) -> str:
    return shorten(value)


def as_is(view, value, name):
    return value


def moment(view, value: datetime, name) -> Markup:
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), value.strftime("%Y-%m-%d %H:%M"))


def unset(view, value, name) -> str:
    return ""


def yes_no(view, value: bool, name) -> str:
    return "yes" if value else "no"


LIST_FORMATTERS = {type(None): unset, Markup: as_is, bool: yes_no, datetime: moment, dict: json_in_list,
                   list: json_in_list, str: text_in_list}
DETAIL_FORMATTERS = {type(None): unset, Markup: as_is, bool: yes_no, datetime: moment, dict: json_block,
                     list: json_block}


def model_of_table(table_name: str):
    for mapper in db.Model.registry.mappers:
        if mapper.class_.__table__.name == table_name:
            return mapper.class_
    raise LookupError(table_name)


def reference(target, column: str):
    """A column formatter showing the row a foreign key points at, by its label, linked to its details page."""

    def format_reference(view, context, model, name):
        value = getattr(model, column)
        if value is None:
            return ""
        row = db.session.get(target, value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        if row is None:
            return str(value)
        return Markup('<a href="{}">{}</a>').format(
            url_for(f"{target.__name__.lower()}.details_view", id=value), label(row))

    return format_reference


def related(view, context, model, name):
    row = getattr(model, name)
    if row is None:
        return ""
    return Markup('<a href="{}">{}</a>').format(
        url_for(f"{type(row).__name__.lower()}.details_view", id=row.id), label(row))


def references(model) -> dict:
    """A formatter for every foreign key column and every many-to-one relationship of ``model``."""
    formatters = {}
    for column in model.__table__.columns:
        for key in column.foreign_keys:
            attribute = model.__mapper__.get_property_by_column(column).key
            formatters[attribute] = reference(model_of_table(key.column.table.name), attribute)
    for relationship in model.__mapper__.relationships:
        if not relationship.uselist:
            formatters[relationship.key] = related
    return formatters


def email_of(view, context, model, name) -> str:
    return model.email or ""
