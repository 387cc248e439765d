"""The ``google_docs`` source connector: Google Docs documents through the Docs API (v1) with an OAuth access token,
one Document per heading section, so every chunk can cite the heading it sits under.

Paragraph styles make the outline: TITLE, then HEADING_1 to HEADING_6. Tables are read row by row; a document with
several tabs is read tab by tab, the tab's title heading its sections. Getting and refreshing the token is the
credential store's job (privex/services/credentials.py, `fresh`), not this module's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from llama_index.core.schema import Document

from privex.contracts import SourceError
from privex_parsers.connectors.http_retries import Sleep, is_transient, new_client, send
from privex_parsers.connectors.network_guard import Resolver, checked_api_base, system_resolver

DEFAULT_API_BASE = "https://docs.googleapis.com"
HEADING_PATH_SEPARATOR = " > "

_NOT_FOR_EMBEDDING = ["source_type", "source_url", "document_id", "section"]
_NOT_FOR_LLM = ["source_type", "document_id", "section"]

# The outline level of each paragraph style that makes a heading; tabs sit above them all.
_HEADING_LEVELS = {"TITLE": 0, **{f"HEADING_{n}": n for n in range(1, 7)}}
_TAB_LEVEL = -1
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9_-]{10,}")
_DOCUMENT_LINK = re.compile(r"/document/(?:u/\d+/)?d/([A-Za-z0-9_-]+)")


class GoogleDocs:
    """Reads Google Docs with an OAuth access token; ``fetch`` yields one Document per heading section."""

    name = "google_docs"
    version = "0.1"
    config_schema = {
        "type": "object",
        "title": "Google Docs",
        "required": ["document_ids"],
        "additionalProperties": False,
        "properties": {
            "document_ids": {
                "type": "array", "items": {"type": "string"}, "minItems": 1, "title": "Documents",
                "description": "Ids or links of the Google Docs to read; the connected Google account must be "
                               "able to open them.",
            },
            "api_base": {
                "type": "string", "format": "uri", "default": DEFAULT_API_BASE, "title": "API address",
                "description": "The Google Docs API's address; change it only to go through a proxy.",
            },
            "allow_private": {
                "type": "boolean", "default": False, "title": "Allow a private API address",
                "description": "Allow an API address on a private network or on this machine (a proxy there). "
                               "Off by default, so that the address cannot make the server reach internal services.",
            },
        },
    }

    def __init__(self, *, resolver: Resolver = system_resolver, sleep: Sleep = time.sleep):
        self._resolver = resolver
        self._sleep = sleep

    def fetch(self, config: Mapping, credential: Mapping | None) -> Iterator[Document]:
        """Read the documents ``config`` names; settings are checked now, documents are fetched as the iterator is
        read."""
        token = (credential or {}).get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise SourceError("a Google credential (OAuth access token) is required")
        if not isinstance(config, Mapping):
            raise SourceError("the Google Docs settings must be an object")
        values = config.get("document_ids") or []
        if isinstance(values, str) or not isinstance(values, list):
            raise SourceError("document_ids must be a list of Google Docs ids or links")
        document_ids = list(dict.fromkeys(document_id(value) for value in values))
        if not document_ids:
            raise SourceError("give at least one Google Docs document (document_ids)")
        base = checked_api_base(config.get("api_base"), DEFAULT_API_BASE, self._resolver, service="Google Docs",
                                allow_private=config.get("allow_private", False))
        return self._documents(base, token.strip(), document_ids)

    def _documents(self, base: str, token: str, document_ids: list[str]) -> Iterator[Document]:
        with new_client() as client:
            for doc_id in document_ids:
                document = _get_document(client, base, token, doc_id, self._sleep)
                yield from _section_documents(doc_id, document)


def document_id(value: object) -> str:
    """The id of a Google Doc given as an id or as a link (https://docs.google.com/document/d/<id>/edit)."""
    text = value.strip() if isinstance(value, str) else ""
    if "://" in text:
        found = _DOCUMENT_LINK.search(urlsplit(text).path)
        text = found.group(1) if found else ""
    if not _DOCUMENT_ID.fullmatch(text):
        raise SourceError(f"{value!r} is not the id or link of a Google Docs document")
    return text


def _get_document(client: httpx.Client, base: str, token: str, doc_id: str, sleep: Sleep) -> dict[str, Any]:
    # With includeTabsContent every tab's content comes under "tabs" (and "body" is left out). Suggested edits
    # nobody accepted yet are not the document's text; for editors the API would mix them in.
    params = {"includeTabsContent": "true", "suggestionsViewMode": "PREVIEW_WITHOUT_SUGGESTIONS"}
    request = client.build_request("GET", f"{base}/v1/documents/{doc_id}", params=params,
                                   headers={"Authorization": f"Bearer {token}"})
    response = send(client, request, sleep=sleep)
    status = response.status_code
    if response.is_success:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise SourceError("Google Docs answered with something that is not JSON", transient=True)
        return answer
    message = _error_message(response)
    if status == 401:
        raise SourceError("Google refused the access token: it is invalid or has expired; connect the Google "
                          "account again")
    if status == 403:
        raise SourceError(f"Google denied access to the document {doc_id}: {message}")
    if status == 404:
        raise SourceError(f"the Google document {doc_id} was not found or is not shared with the connected account")
    if is_transient(status):
        raise SourceError(f"Google Docs is not answering (HTTP {status}): {message}; try again later",
                          transient=True)
    raise SourceError(f"Google Docs rejected the request for {doc_id} (HTTP {status}): {message}")


@dataclass
class _Section:
    heading: list[str]
    lines: list[str] = field(default_factory=list)


class _Outline:
    """Cuts a document's text into sections at its headings, keeping the path of headings above each."""

    def __init__(self) -> None:
        self.path: list[tuple[int, str]] = []
        self.sections: list[_Section] = [_Section(heading=[])]

    def heading(self, level: int, text: str) -> None:
        self.path = [(lvl, title) for lvl, title in self.path if lvl < level] + [(level, text)]
        self.sections.append(_Section(heading=[title for _lvl, title in self.path], lines=[text]))

    def line(self, text: str) -> None:
        self.sections[-1].lines.append(text)


def _section_documents(doc_id: str, document: dict[str, Any]) -> Iterator[Document]:
    title = (document.get("title") or "").strip() or "Untitled document"
    outline = _Outline()
    tabs = list(_tabs(document.get("tabs") or []))
    if tabs:
        for tab in tabs:
            if len(tabs) > 1:
                outline.heading(_TAB_LEVEL, tab.get("tabProperties", {}).get("title") or "Untitled tab")
            _read_content(outline, ((tab.get("documentTab") or {}).get("body") or {}).get("content") or [])
    else:
        _read_content(outline, (document.get("body") or {}).get("content") or [])

    number = 0
    for section in outline.sections:
        # A heading with nothing under it is not a section worth a Document: its title heads the next one.
        if len(section.lines) <= (1 if section.heading else 0):
            continue
        text = "\n".join(section.lines).strip()
        if not text:
            continue
        number += 1
        yield Document(
            id_=f"google_docs:{doc_id}:{number}",
            text=text,
            metadata={
                "source_type": "google_docs",
                "source_url": f"https://docs.google.com/document/d/{doc_id}/edit",
                "title": title,
                "document_id": doc_id,
                "heading": HEADING_PATH_SEPARATOR.join(section.heading),
                "section": number,
            },
            excluded_embed_metadata_keys=list(_NOT_FOR_EMBEDDING),
            excluded_llm_metadata_keys=list(_NOT_FOR_LLM),
        )


def _tabs(tabs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every tab, its child tabs after it."""
    for tab in tabs:
        yield tab
        yield from _tabs(tab.get("childTabs") or [])


def _read_content(outline: _Outline, content: list[dict[str, Any]]) -> None:
    for element in content:
        if "paragraph" in element:
            paragraph = element["paragraph"]
            text = _paragraph_text(paragraph)
            if not text:
                continue
            style = (paragraph.get("paragraphStyle") or {}).get("namedStyleType", "")
            if style in _HEADING_LEVELS:
                outline.heading(_HEADING_LEVELS[style], text)
            elif "bullet" in paragraph:
                nesting = (paragraph["bullet"] or {}).get("nestingLevel", 0) or 0
                outline.line("  " * nesting + "- " + text)
            else:
                outline.line(text)
        elif "table" in element:
            for row in element["table"].get("tableRows") or []:
                cells = [" ".join(_cell_lines(cell.get("content") or [])) for cell in row.get("tableCells") or []]
                if any(cells):
                    outline.line(" | ".join(cells))
        # sectionBreak has no text; tableOfContents repeats the headings.


def _cell_lines(content: list[dict[str, Any]]) -> list[str]:
    """The text of a table cell: its paragraphs, and the rows of any table inside it, flattened."""
    lines = []
    for element in content:
        if "paragraph" in element:
            text = _paragraph_text(element["paragraph"])
            if text:
                lines.append(text)
        elif "table" in element:
            for row in element["table"].get("tableRows") or []:
                for cell in row.get("tableCells") or []:
                    lines.extend(_cell_lines(cell.get("content") or []))
    return lines


def _paragraph_text(paragraph: dict[str, Any]) -> str:
    parts = []
    for element in paragraph.get("elements") or []:
        if "textRun" in element:
            parts.append(element["textRun"].get("content") or "")
        elif "richLink" in element:  # a smart chip linking a file or a page
            parts.append(((element["richLink"].get("richLinkProperties") or {}).get("title")) or "")
        elif "person" in element:  # an @-mention
            properties = element["person"].get("personProperties") or {}
            parts.append(properties.get("name") or properties.get("email") or "")
    # A paragraph ends with "\n"; a line break inside it is a vertical tab.
    return "".join(parts).replace("\x0b", "\n").strip()


def _error_message(response: httpx.Response) -> str:
    """Google's own explanation ({"error": {"code", "message", "status"}}), else the HTTP reason."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return response.reason_phrase or f"HTTP {response.status_code}"
