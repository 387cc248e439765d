"""The ``notion`` source connector: Notion pages, given by id or as the rows of a database, through Notion's public
API (version 2022-06-28), one Document per page.

A page's blocks are read recursively and rendered as plain text with Markdown-style headings, list markers and
table rows. Sub-pages and inline databases inside a page are not followed: each is a page of its own to add.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from llama_index.core.schema import Document

from privex.contracts import SourceError
from privex_parsers.connectors.http_retries import Sleep, is_transient, new_client, send
from privex_parsers.connectors.network_guard import Resolver, checked_api_base, system_resolver

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.notion.com"
NOTION_VERSION = "2022-06-28"
PAGE_SIZE = 100
MAX_NESTING = 30  # Notion nests far less deeply; a bound keeps a malformed answer from recursing forever

_NOT_FOR_EMBEDDING = ["source_type", "source_url", "notion_page_id", "last_edited_time"]
_NOT_FOR_LLM = ["source_type", "notion_page_id", "last_edited_time"]

# Blocks whose children are indented under them, like a nested list.
_INDENTING = {"bulleted_list_item", "numbered_list_item", "to_do", "toggle"}
# Blocks that are pages or databases of their own: their children are not this page's text.
_SEPARATE = {"child_page", "child_database"}
_ID = re.compile(r"(?:^|.*-)([0-9a-f]{32})|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


class Notion:
    """Reads Notion pages with an integration token; ``fetch`` yields one Document per page."""

    name = "notion"
    version = "0.1"
    config_schema = {
        "type": "object",
        "title": "Notion",
        "additionalProperties": False,
        # At least one page, or a database.
        "anyOf": [
            {"required": ["page_ids"], "properties": {"page_ids": {"minItems": 1}}},
            {"required": ["database_id"]},
        ],
        "properties": {
            "page_ids": {
                "type": "array", "items": {"type": "string"}, "title": "Pages",
                "description": "Ids or links of the Notion pages to read. Each must be shared with the integration "
                               "(the page's ••• menu, Connections).",
            },
            "database_id": {
                "type": "string", "title": "Database",
                "description": "Id or link of a Notion database: every page in it is read.",
            },
            "api_base": {
                "type": "string", "format": "uri", "default": DEFAULT_API_BASE, "title": "API address",
                "description": "The Notion API's address; change it only to go through a proxy.",
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
        """Read the pages ``config`` names; settings are checked now, pages are fetched as the iterator is read."""
        token = (credential or {}).get("token")
        if not isinstance(token, str) or not token.strip():
            raise SourceError("a Notion credential (integration token) is required")
        if not isinstance(config, Mapping):
            raise SourceError("the Notion settings must be an object")
        page_ids = config.get("page_ids") or []
        if isinstance(page_ids, str) or not isinstance(page_ids, list):
            raise SourceError("page_ids must be a list of Notion page ids or links")
        pages = [notion_id(value, "page") for value in page_ids]
        database = config.get("database_id")
        database = notion_id(database, "database") if database else None
        if not pages and not database:
            raise SourceError("give at least one Notion page (page_ids) or a database (database_id)")
        base = checked_api_base(config.get("api_base"), DEFAULT_API_BASE, self._resolver, service="Notion",
                                allow_private=config.get("allow_private", False))
        return self._documents(base, token.strip(), pages, database)

    def _documents(self, base: str, token: str, page_ids: list[str], database: str | None) -> Iterator[Document]:
        with new_client() as client:
            api = _NotionApi(client, base, token, self._sleep)
            done: set[str] = set()
            for page_id in page_ids:
                if page_id not in done:
                    done.add(page_id)
                    page = api.call("GET", f"/v1/pages/{page_id}", subject=f"page {page_id}")
                    yield from _page_document(api, page)
            if database:
                for page in api.database_pages(database):
                    page_id = page.get("id")
                    if page_id and page_id not in done:
                        done.add(page_id)
                        yield from _page_document(api, page)


def notion_id(value: object, kind: str) -> str:
    """The id of a Notion page or database given as an id (with or without dashes) or as a link to it."""
    text = value.strip() if isinstance(value, str) else ""
    if "://" in text:
        text = urlsplit(text).path.rstrip("/").rsplit("/", 1)[-1]
    found = _ID.fullmatch(text.lower())
    if not found:
        raise SourceError(f"{value!r} is not the id or link of a Notion {kind}")
    return str(uuid.UUID(found.group(1) or found.group(2)))


class _NotionApi:
    def __init__(self, client: httpx.Client, base: str, token: str, sleep: Sleep):
        self.client = client
        self.base = base
        self.sleep = sleep
        self.headers = {"Authorization": f"Bearer {token}", "Notion-Version": NOTION_VERSION}

    def call(self, method: str, path: str, *, subject: str, params: dict | None = None,
             json: dict | None = None) -> dict[str, Any]:
        """The JSON answer of one API call; an error answer raises SourceError in the user's terms."""
        request = self.client.build_request(method, self.base + path, params=params, json=json,
                                            headers=self.headers)
        response = send(self.client, request, sleep=self.sleep)
        if response.is_success:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise SourceError("Notion answered with something that is not JSON", transient=True)
            return answer
        status = response.status_code
        message = _error_message(response)
        if status in (401, 403):
            raise SourceError(f"Notion refused the token: {message}")
        if status == 404:
            raise SourceError(f"the Notion {subject} was not found or is not shared with the integration")
        if is_transient(status):
            raise SourceError(f"Notion is not answering (HTTP {status}): {message}; try again later", transient=True)
        raise SourceError(f"Notion rejected the request for {subject} (HTTP {status}): {message}")

    def children(self, block_id: str, subject: str) -> Iterator[dict[str, Any]]:
        """Every child block of a page or block, page after page of results."""
        cursor = None
        while True:
            params = {"page_size": PAGE_SIZE} | ({"start_cursor": cursor} if cursor else {})
            answer = self.call("GET", f"/v1/blocks/{block_id}/children", params=params, subject=subject)
            yield from answer.get("results") or []
            cursor = answer.get("next_cursor")
            if not answer.get("has_more") or not cursor:
                return

    def database_pages(self, database_id: str) -> Iterator[dict[str, Any]]:
        """Every page of a database: the query's results are full page objects."""
        cursor = None
        while True:
            body = {"page_size": PAGE_SIZE} | ({"start_cursor": cursor} if cursor else {})
            answer = self.call("POST", f"/v1/databases/{database_id}/query", json=body,
                               subject=f"database {database_id}")
            for result in answer.get("results") or []:
                if result.get("object") == "page":
                    yield result
            cursor = answer.get("next_cursor")
            if not answer.get("has_more") or not cursor:
                return


def _page_document(api: _NotionApi, page: dict[str, Any]) -> Iterator[Document]:
    """The page's Document, or nothing when the page has no text."""
    page_id = page["id"]
    lines = _render(api, page_id, subject=f"page {page_id}", nesting=0)
    text = "\n".join(lines).strip()
    title = _title(page)
    if not text:
        log.info("notion page has no text", extra={"page_id": page_id})
        return
    yield Document(
        id_=f"notion:{page_id}",
        text=text,
        metadata={
            "source_type": "notion",
            "source_url": page.get("url") or f"https://www.notion.so/{page_id.replace('-', '')}",
            "title": title,
            "notion_page_id": page_id,
            "last_edited_time": page.get("last_edited_time") or "",
        },
        excluded_embed_metadata_keys=list(_NOT_FOR_EMBEDDING),
        excluded_llm_metadata_keys=list(_NOT_FOR_LLM),
    )


def _render(api: _NotionApi, block_id: str, *, subject: str, nesting: int, indent: str = "") -> list[str]:
    """The text lines of a block's children, recursively."""
    lines: list[str] = []
    number = 0
    for block in api.children(block_id, subject):
        kind = block.get("type", "")
        number = number + 1 if kind == "numbered_list_item" else 0
        line = _block_text(block, kind, number)
        if line:
            if kind.startswith("heading_") and lines:
                lines.append("")
            lines.append(indent + line)
        if block.get("has_children") and kind not in _SEPARATE and nesting < MAX_NESTING:
            deeper = indent + "  " if kind in _INDENTING else indent
            lines.extend(_render(api, block["id"], subject=subject, nesting=nesting + 1, indent=deeper))
    return lines


def _block_text(block: dict[str, Any], kind: str, number: int) -> str:
    data = block.get(kind) or {}
    if kind == "table_row":
        return " | ".join(_plain(cell) for cell in data.get("cells") or [])
    text = _plain(data.get("rich_text"))
    if not text:
        return ""
    if kind in ("heading_1", "heading_2", "heading_3"):
        return "#" * int(kind[-1]) + " " + text
    if kind == "bulleted_list_item":
        return "- " + text
    if kind == "numbered_list_item":
        return f"{number}. {text}"
    if kind == "to_do":
        return ("[x] " if data.get("checked") else "[ ] ") + text
    if kind == "quote":
        return "> " + text
    if kind in ("paragraph", "toggle", "callout", "code"):
        return text
    return ""  # images, embeds, dividers...: no text of their own


def _plain(rich_text: Any) -> str:
    return "".join(part.get("plain_text") or "" for part in rich_text or [] if isinstance(part, dict))


def _title(page: dict[str, Any]) -> str:
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "title":
            title = _plain(prop.get("title")).strip()
            if title:
                return title
    return "Untitled"


def _error_message(response: httpx.Response) -> str:
    """Notion's own explanation ({"object": "error", "code", "message"}), else the HTTP reason."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return answer["message"]
    return response.reason_phrase or f"HTTP {response.status_code}"
