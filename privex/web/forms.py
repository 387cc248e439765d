"""Forms of the builder's pages, and the one way a service's refusal reaches them.

Forms only parse what was typed; whether it is acceptable is the service's call. A view runs the service inside
``show_errors``: a ``ServiceError`` is rolled back and its messages are put beside the fields that caused them::

    form = KnowledgeBaseForm()
    if form.validate_on_submit():
        with show_errors(form, fields={"config": "settings"}):
            knowledge_base = knowledge.create(workspace_for("resources.write"), current_user.id, form.data)
            return redirect(url_for("web.knowledge.show", kb_id=knowledge_base.id))
    return render_template("knowledge/new.html", form=form), form_status(form)

- ``PageForm``: the base of every form (Flask-WTF: the CSRF token; text PostgreSQL cannot store is refused beside
  its field).
- ``show_errors(form, fields=None)``: a context manager. Each key of ``error.errors`` is a field path, nested dicts
  giving dotted paths (``config.retrieval.top_k``). The message goes to the field that holds it: the full path,
  then shorter prefixes (``config.retrieval``, ``config``), then the same without leading parts (``retrieval.top_k``,
  ``retrieval``, ``top_k``); each looked up first in ``fields`` (path -> field name), then as a field of the form
  (``FormField`` sub-forms are walked: ``retrieval.top_k`` is ``form.retrieval.top_k``), then with underscores
  (``retrieval_top_k``). What is below the field that took it is named in the message (a ``config`` JSON field gets
  ``retrieval.top_k: at most 20``). ``fields[None]`` names the field for a refusal with no field at all; without
  it that message, and any message that found no field, goes to ``form.form_errors`` (shown at the top by the
  ``form_errors`` macro).
- ``form_status(form)``: the status to answer a re-shown form with: the refusing service error's (422, 409, ...),
  422 for the form's own validation errors, 200 otherwise. HTMX swaps 422 answers in (see ``base.html``).
"""

from __future__ import annotations

from contextlib import contextmanager

from flask_wtf import FlaskForm
from wtforms import FormField

from privex.extensions import db
from privex.models import Credential, KnowledgeBase
from privex.models.base import unstorable
from privex.services.errors import ServiceError
from privex.statuses import status_of
from privex.tenancy.context import scoped

MOST_CHOICES = 500  # knowledge bases or credentials offered in one list

__all__ = ["PageForm", "form_status", "place_errors", "show_errors"]


class PageForm(FlaskForm):
    """Every form of the pages: CSRF-protected, and refusing text the database cannot store."""

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for form_field in self:
            for text in form_field.raw_data or []:
                problem = unstorable(text) if isinstance(text, str) else None
                if problem:
                    form_field.errors = [*form_field.errors, problem]
                    valid = False
                    break
        return valid


@contextmanager
def show_errors(form: FlaskForm, *, fields: dict | None = None):
    """Run a service call; a ``ServiceError`` is rolled back and shown on ``form`` instead of raised."""
    try:
        yield
    except ServiceError as error:
        db.session.rollback()  # a service that failed half-way leaves nothing behind
        form.service_error = error
        place_errors(form, error, fields or {})


def form_status(form: FlaskForm) -> int:
    error = getattr(form, "service_error", None)
    if error is not None:
        return status_of(error)
    return 422 if form.errors else 200


def place_errors(form: FlaskForm, error: ServiceError, fields: dict) -> None:
    lines = list(_flatten(error.errors))
    if not lines:
        target = _field(form, fields[None]) if fields.get(None) else None
        _add(target, form, error.message)
        return
    for path, message in lines:
        target, rest = _find(form, path, fields)
        _add(target, form, f"{'.'.join(rest)}: {message}" if rest else message)


def _flatten(errors, path: tuple = ()):
    """(path, message) for every message of a service's ``errors`` (nested dicts for nested fields)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from _flatten(value, (*path, str(key)))
    elif isinstance(errors, (list, tuple)):
        for item in errors:
            yield from _flatten(item, path)
    else:
        yield path, str(errors)


def _find(form, path: tuple, fields: dict):
    """The field that takes a message for ``path``, and the part of the path below it."""
    for start in range(len(path)):
        for cut in range(len(path), start, -1):
            part = path[start:cut]
            dotted = ".".join(part)
            target = _field(form, fields[dotted]) if dotted in fields else _walk(form, part)
            if target is None:
                target = _field(form, "_".join(part))
            if target is not None:
                return target, path[cut:]
    return None, path


def _walk(form, parts: tuple):
    current = form
    for part in parts:
        if isinstance(current, FormField):
            current = current.form
        if not hasattr(current, "_fields") or part not in current._fields:
            return None
        current = current._fields[part]
    return current


def _field(form, name: str):
    return _walk(form, tuple(name.split(".")))


def _add(target, form, message: str) -> None:
    if target is None or isinstance(target, FormField):
        form.form_errors.append(message)
    else:
        target.errors = [*target.errors, message]


def knowledge_choices() -> list[tuple[str, str]]:
    """The current workspace's knowledge bases as (id, name), by name: what a bot or a flow node may search."""
    rows = db.session.execute(scoped(KnowledgeBase).with_only_columns(KnowledgeBase.id, KnowledgeBase.name)
                              .order_by(KnowledgeBase.name, KnowledgeBase.id).limit(MOST_CHOICES)).all()
    return [(str(kb_id), name) for kb_id, name in rows]


def credential_choices() -> list[tuple[str, str]]:
    """The current workspace's credentials as (id, "name (provider)"), by name."""
    rows = db.session.execute(scoped(Credential).with_only_columns(Credential.id, Credential.name,
                                                                   Credential.provider)
                              .order_by(Credential.name, Credential.id).limit(MOST_CHOICES)).all()
    return [(str(credential_id), f"{name} ({provider})") for credential_id, name, provider in rows]
