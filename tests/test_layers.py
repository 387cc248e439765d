"""The layers DESIGN.md describes hold: services know no HTTP, plugins no services, and a service called outside any
request (a Celery task, a channel, a chatflow node) raises the domain errors of ``privex.services.errors``, which
each front end maps in one place."""

from __future__ import annotations

import ast
import io
import uuid
from pathlib import Path

import pytest
from werkzeug.exceptions import HTTPException

import privex
from privex.services import errors

ROOT = Path(privex.__file__).resolve().parent
PLUGINS = ROOT.parent / "plugins"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as a.b and a.b.c), lazy imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_service_imports_http_or_the_api():
    forbidden = ("flask_smorest", "werkzeug.exceptions", "privex.api", "flask.abort", "privex.web", "privex.admin")
    offenders = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        bad = sorted(name for name in imports(path) if name.startswith(forbidden))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
    assert len(list((ROOT / "services").rglob("*.py"))) >= 15  # the walk really walked


def test_no_plugin_imports_services_or_the_api():
    offenders = {}
    for path in sorted(PLUGINS.glob("*/privex_*/**/*.py")):
        bad = sorted(name for name in imports(path) if name.startswith(("privex.services", "privex.api",
                                                                        "privex.web", "privex.tenancy")))
        if bad:
            offenders[str(path.relative_to(PLUGINS))] = bad
    assert offenders == {}


def test_retrieval_does_not_reach_into_ingestion():
    assert not {name for name in imports(ROOT / "services" / "retrieval.py") if name.startswith(
        "privex.services.ingestion")}


def test_api_modules_do_not_import_each_others_private_names():
    offenders = []
    for path in sorted((ROOT / "api").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("privex."):
                offenders += [f"{path.name}: {node.module}.{alias.name}" for alias in node.names
                              if alias.name.startswith("_")]
    assert offenders == []


def test_every_domain_error_has_one_status(app):
    from privex.api.errors import STATUS, status_of

    kinds = [kind for kind in vars(errors).values() if isinstance(kind, type) and issubclass(kind,
                                                                                             errors.ServiceError)]
    assert set(kinds) <= set(STATUS) | {errors.ServiceError}
    assert status_of(errors.ProviderFailed("slow", timed_out=True)) == 504
    assert status_of(errors.Unsupported("pdf?")) == 415 and status_of(errors.Invalid("no")) == 422


@pytest.fixture()
def owner_workspace(app, database):
    from privex.models import Workspace
    from privex.services import registration

    user = registration.sign_up(f"{uuid.uuid4().hex[:8]}@example.com", "Sup3r-secret!", "Owner")
    database.session.commit()
    workspace = database.session.scalar(Workspace.__table__.select().where(
        Workspace.created_by_id == user.id).with_only_columns(Workspace.id))
    return user, database.session.get(Workspace, workspace)


def test_services_called_outside_a_request_raise_domain_errors_not_http(app, database, owner_workspace):
    """What a Celery task or a messaging channel gets back from a service it calls wrongly."""
    from privex.models import Organization
    from privex.services import (accounts, chatbots, conversations, invitations, knowledge, plans,
                                 registration, workspaces)

    user, workspace = owner_workspace
    organization = database.session.get(Organization, workspace.organization_id)
    calls = {
        errors.Invalid: [
            lambda: chatbots.create(workspace, user.id, {"name": "bot", "config": {"retrieval": {"top_k": "lots"}}}),
            lambda: chatbots.create(workspace, user.id, {"name": "", "config": {}}),
            lambda: knowledge.create(workspace, user.id, {"name": "kb", "chunking_strategy": "nope"}),
            lambda: accounts.check_password_strength("weak"),
        ],
        errors.NotFound: [lambda: conversations.live_bot("bot_nope"),
                          lambda: workspaces.remove_member(workspace, uuid.uuid4())],
        errors.Conflict: [lambda: registration.sign_up(user.email, "Sup3r-secret!"),
                          lambda: workspaces.delete_workspace(workspace)],
        errors.Forbidden: [lambda: invitations.invite_or_add(organization, user, "admin", "x@example.com", "owner")],
        errors.PlanLimit: [lambda: plans.enforce(organization, "workspaces", adding=100)],
    }
    for kind, attempts in calls.items():
        for attempt in attempts:
            with pytest.raises(errors.ServiceError) as raised:
                attempt()
            assert isinstance(raised.value, kind) and not isinstance(raised.value, HTTPException), raised.value
            assert raised.value.message
            database.session.rollback()
    assert chatbots.create(workspace, user.id, {"name": "fine"}).status == "active"  # nothing was left half-done


def test_a_refusal_is_json_under_the_api_and_an_html_page_elsewhere(app):
    from privex.api.errors import handle_service_error

    with app.test_request_context("/knowledge/new"):
        page, status, _ = handle_service_error(errors.Conflict("already there"))
        assert status == 409 and page.mimetype == "text/html" and "already there" in page.get_data(as_text=True)
    with app.test_request_context("/api/v1/knowledge-bases"):
        body, status, headers = handle_service_error(errors.RateLimited("slow down", retry_after=7))
        assert (body, status, headers) == ({"code": 429, "message": "slow down", "errors": {}}, 429,
                                           {"Retry-After": "7"})


def test_an_upload_refused_by_a_service_keeps_nothing(app, client, database, owner_workspace):
    """Two files where the second is of a type nothing reads: 415, and the first is not half-stored either."""
    from werkzeug.datastructures import FileStorage

    from privex.models import Document
    from privex.services import knowledge

    user, workspace = owner_workspace
    knowledge_base = knowledge.create(workspace, user.id, {"name": "handbook"})
    files = [FileStorage(io.BytesIO(b"# Holidays\n\n25 days."), "holidays.md"),
             FileStorage(io.BytesIO(b"\x00\x01"), "photo.heic")]
    with pytest.raises(errors.Unsupported):
        knowledge.add_uploads(knowledge_base, files)
    assert database.session.query(Document).filter_by(knowledge_base_id=knowledge_base.id).count() == 0
    uploads = Path(app.instance_path) / "uploads" / str(workspace.id)
    assert not uploads.exists() or not any(uploads.iterdir())
