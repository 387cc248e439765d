"""The kinds of back-office view: read-only views of rows only the system writes, and service views whose writes go
through ``privex.services`` exactly as the API's do.

A service refusing a write raises one of ``privex.services.errors``; ``ServiceView`` puts each message next to the
form field it names (a nested setting as ``retrieval.top_k: ...`` beside its JSON field) and saves nothing. No page
shows a database error: a constraint the services did not foresee is reported as such, with the SQL only in the log.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

from flask import abort, flash, redirect, request, url_for
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from privex.admin import display
from privex.admin.forms import AdminForm
from privex.extensions import db
from privex.models import Organization, Workspace
from privex.plugins import NotInstalled
from privex.services.errors import PlanLimit, ServiceError

log = logging.getLogger(__name__)

SECRET_COLUMNS = ("password_hash", "encrypted_data", "key_hash", "token_hash")
# Too big or meaningless to show: a chunk's vector.
HIDDEN_COLUMNS = ("embedding",)
DATABASE_REFUSED = ("The database refused this change (it breaks a rule the services did not check). Nothing was "
                    "saved; the details are in the server log.")


def is_superuser() -> bool:
    return bool(current_user.is_authenticated and current_user.is_active and current_user.is_superuser)


class SuperuserOnly:
    def is_accessible(self) -> bool:
        return is_superuser()

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("web.auth.login", next=request.full_path.rstrip("?")))
        abort(403)


def error_lines(messages, path: str = "") -> list[str]:
    """A service's messages for one field as lines; nested fields are named by their dotted path."""
    if isinstance(messages, dict):
        return [line for key, value in messages.items() for line in error_lines(value, f"{path}{key}.")]
    if isinstance(messages, (list, tuple)):
        return [line for item in messages for line in error_lines(item, path)]
    return [f"{path[:-1]}: {messages}" if path else str(messages)]


class WorkspaceNameFilter(BaseSQLAFilter):
    """Rows of the workspaces whose name, or whose organization's name, contains the text."""

    def __init__(self, model):
        super().__init__(model.workspace_id, "Workspace")

    def apply(self, query, value, alias=None):
        pattern = f"%{value.replace(chr(0), '')}%"
        workspaces = sa.select(Workspace.id).join(Organization).where(
            sa.or_(Workspace.name.ilike(pattern), Organization.name.ilike(pattern)))
        return query.filter(self.column.in_(workspaces))

    def operation(self):
        return "name contains"


class SecureModelView(SuperuserOnly, ModelView):
    """Superusers only; secrets left out of every list, detail, form and search; related rows by name."""

    form_base_class = AdminForm
    can_view_details = True
    can_export = False
    column_display_pk = True
    page_size = 50
    column_type_formatters = display.LIST_FORMATTERS
    column_type_formatters_detail = display.DETAIL_FORMATTERS
    searchable = ("name", "username", "email", "provider_id", "prefix")
    filterable = ("status", "provider", "role", "subscription_tier", "channel", "source_type", "action")

    def __init__(self, model, *args, **kwargs):
        columns = model.__table__.columns
        hidden = [name for name in SECRET_COLUMNS + HIDDEN_COLUMNS if name in columns]
        self.column_exclude_list = [*hidden, *(self.column_exclude_list or ())]
        self.column_details_exclude_list = list(hidden)
        if self.column_details_list is None:  # every column, foreign keys too (shown as the row they point at)
            self.column_details_list = [prop.key for prop in model.__mapper__.column_attrs
                                        if prop.columns[0].name not in hidden]
        self.form_excluded_columns = [*hidden, "created_at", "updated_at"]
        if self.column_searchable_list is None:
            self.column_searchable_list = [name for name in self.searchable if name in columns]
        if self.column_filters is None:
            self.column_filters = [name for name in self.filterable if name in columns]
        if "workspace_id" in columns:
            self.column_filters = [*self.column_filters, WorkspaceNameFilter(model)]
        self.column_formatters = {**display.references(model), **(self.column_formatters or {})}
        self.column_formatters_detail = dict(self.column_formatters)
        self.column_labels = {**{prop.key: self.heading(prop) for prop in model.__mapper__.column_attrs},
                              **(self.column_labels or {})}
        super().__init__(model, *args, **kwargs)

    @staticmethod
    def heading(prop) -> str:
        """"Workspace" for workspace_id (it shows the workspace), "Metadata" for metadata_, "Id" for id."""
        name = prop.key.removesuffix("_")
        if prop.columns[0].foreign_keys:
            name = name.removesuffix("_id")
        return name.replace("_", " ").capitalize()

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        if search:  # PostgreSQL cannot compare with a NUL; nothing stored contains one
            search = search.replace("\x00", "")
        return super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, SQLAlchemyError):
            log.exception("the database refused a back-office change")
            db.session.rollback()
            flash(DATABASE_REFUSED, "error")
            return True
        return super().handle_view_exception(exc)


class ReadOnlyView(SecureModelView):
    """Rows only the system writes (messages, usage, logs, tokens, sessions, chunks): look, never touch."""

    can_create = False
    can_edit = False
    can_delete = False
    action_disallowed_list = ["delete"]


class ServiceView(SecureModelView):
    """Writes through a service. Subclasses give ``create(form)``, ``update(form, row)`` and ``delete(row)``; each
    calls one service function (and commits through it)."""

    # A service's field name -> this form's field name, where they differ.
    error_fields: dict[str, str] = {}

    def create(self, form):
        raise NotImplementedError

    def update(self, form, row) -> None:
        raise NotImplementedError

    def delete(self, row) -> None:
        raise NotImplementedError

    def create_model(self, form):
        return self._attempt(form, lambda: self.create(form)) or False

    def update_model(self, form, model) -> bool:
        return self._attempt(form, lambda: self.update(form, model) or True) or False

    def delete_model(self, model) -> bool:
        return bool(self._attempt(None, lambda: self.delete(model) or True))

    def _attempt(self, form, write):
        try:
            return write()
        except (ServiceError, NotInstalled) as error:
            db.session.rollback()
            self.show_refusal(form, error)
        except SQLAlchemyError:
            log.exception("the database refused a back-office change")
            db.session.rollback()
            flash(DATABASE_REFUSED, "error")
        return None

    def show_refusal(self, form, error) -> None:
        """The service's messages beside the fields they name; the rest, and the reason, in a message on top."""
        unplaced = []
        fields = getattr(error, "errors", None) or {}
        if isinstance(error, PlanLimit):  # its `errors` are numbers, not field messages
            fields = {}
        for key, messages in fields.items():
            field = form[self.error_fields.get(key, key)] if form is not None and \
                self.error_fields.get(key, key) in form else None
            lines = self.describe_error(key, error_lines(messages))
            if field is not None:
                field.errors = [*field.errors, *lines]
            else:
                unplaced += [f"{key}: {line}" for line in lines]
        reason = getattr(error, "message", None) or str(error)
        if fields and not unplaced:
            flash("Nothing was saved: correct the fields marked below.", "error")
        else:
            flash(" ".join([f"Nothing was {'deleted' if form is None else 'saved'}: {reason}", *unplaced]),
                  "error")

    def describe_error(self, key: str, lines: list[str]) -> list[str]:
        return lines

    def rows(self, ids) -> list:
        """The rows with these ids (as an action receives them); ids that are not ids match nothing."""
        valid = []
        for value in ids:
            try:
                valid.append(uuid.UUID(str(value)))
            except ValueError:
                continue
        return db.session.scalars(sa.select(self.model).where(self.model.id.in_(valid))).all() if valid else []


def empty_to_none(value):
    return value if value not in ("", None) else None
