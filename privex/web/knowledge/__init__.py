"""Knowledge bases in the builder: your documents, ready for your chatbots to answer from.

- ``bases``: the list of knowledge bases, a knowledge base's documents (live status and progress), its test
  retrieval panel and its settings, reindexing and deleting it;
- ``create``: a new knowledge base through a draft (``services.drafts``): its details, then its sources — files
  dropped or chosen, a web site to crawl, Notion pages, Google Docs read with a stored credential — a preview of the
  passages a source is split into, and finally the knowledge base itself;
- ``documents``: uploads (from ``static/knowledge.js``'s drop zone, one request per file so each shows its own
  progress, or a plain form without script), a document's page with its passages, renaming, reindexing and deleting
  it, and the progress partial the pages poll while something is being indexed;
- ``forms``: the forms of all of them.

Every view reads through ``shell`` (``workspace_for``, ``resource_or_404``, ``scoped``): a viewer sees everything
read-only and gets the 403 page for a write; another workspace's ids are the 404 page.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, session, url_for

from privex.extensions import state
from privex.services.errors import ServiceError
from privex.statuses import status_of
from privex.web.knowledge.forms import CHUNKER_NAMES, MODE_NAMES, chunker_summary
from privex.web.shell import NavEntry

bp = Blueprint("knowledge", __name__, url_prefix="/knowledge")
NAV = NavEntry("Knowledge", "web.knowledge.index", order=20)

STATUS_NAMES = {"pending": "Pending", "processing": "Processing", "indexed": "Indexed", "failed": "Failed"}
BUSY = ("pending", "processing")
FILE_KINDS = {"pdf": "PDF", "docx": "Word", "markdown": "Markdown", "text": "plain text", "html": "web pages",
              "csv": "CSV", "json": "JSON"}
SESSION_DRAFTS = "knowledge_drafts"
KEPT_DRAFTS = 5


@bp.app_template_global("document_status_name")
def document_status_name(status: str) -> str:
    return STATUS_NAMES.get(status, status)


@bp.app_template_global("knowledge_chunker")
def knowledge_chunker(name: str) -> dict:
    """A chunker's plain name and what it does, for the pages."""
    return {"name": CHUNKER_NAMES.get(name, name), "summary": chunker_summary(name)}


@bp.app_template_global("knowledge_mode_name")
def knowledge_mode_name(mode: str) -> str:
    return MODE_NAMES.get(mode, mode)


@bp.app_template_global("knowledge_readable")
def knowledge_readable() -> list[str]:
    """The file name endings the installed parsers read (``.pdf``, ``.md``, ...)."""
    return sorted({ending for parser in state().plugins.document_parsers.values()
                   for ending in getattr(parser, "extensions", ())})


@bp.app_template_global("knowledge_file_kinds")
def knowledge_file_kinds() -> str:
    """The kinds of file the installed parsers read, in plain words."""
    order = list(FILE_KINDS)
    names = [FILE_KINDS.get(name, name) for name in sorted(
        state().plugins.document_parsers, key=lambda name: (order.index(name) if name in order else len(order), name))]
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else "no files"


@bp.app_template_filter("file_size")
def file_size(size) -> str:
    if size is None:
        return ""
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def credentials_url() -> str:
    """Where the team adds a credential: Team → Credentials once that page exists, the Team area until then."""
    for endpoint in ("web.team.credentials", "web.team.index"):
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return url_for("web.home.app")


def wants_json() -> bool:
    """A request from the drop zone's script (it answers each file with JSON) rather than the plain form."""
    return request.accept_mimetypes.best == "application/json"


def json_refusal(error: ServiceError):
    return jsonify({"message": error.message, "errors": error.errors}), status_of(error)


def remember_draft(workspace_id, draft_id) -> None:
    """Keep the draft on the list page's “not created yet” list of this browser (drafts live in Redis, found by id
    only); entries are ``<workspace id>/<draft id>``, so a draft of another workspace waits for its workspace."""
    entry = f"{workspace_id}/{draft_id}"
    kept = [value for value in session.get(SESSION_DRAFTS, []) if value != entry]
    session[SESSION_DRAFTS] = [entry, *kept][:KEPT_DRAFTS]


def remembered_drafts(workspace_id) -> list[str]:
    return [value.partition("/")[2] for value in session.get(SESSION_DRAFTS, [])
            if value.partition("/")[0] == str(workspace_id)]


def forget_draft(draft_id) -> None:
    kept = [value for value in session.get(SESSION_DRAFTS, []) if value.partition("/")[2] != str(draft_id)]
    if kept != session.get(SESSION_DRAFTS, []):
        session[SESSION_DRAFTS] = kept


from privex.web.knowledge import bases, create, documents, quality  # noqa: E402,F401  (their routes, on ``bp``)
