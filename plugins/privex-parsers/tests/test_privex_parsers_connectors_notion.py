"""The ``notion`` connector against a local server speaking Notion's API (version 2022-06-28): pages, paginated and
nested blocks, database queries, headers, errors and retries."""

from __future__ import annotations

import socket

import pytest

from privex.contracts import SourceError
from privex_parsers.connectors.notion import Notion, notion_id

TOKEN = "secret_test_token"
PAGE = "0123456789abcdef0123456789abcdef"
PAGE_ID = "01234567-89ab-cdef-0123-456789abcdef"
OTHER_ID = "11111111-2222-3333-4444-555555555555"
DATABASE_ID = "99999999-8888-7777-6666-555555555555"


def public_resolver(host: str, port: int) -> list[str]:
    """The local test server stands in for api.notion.com, so its name must pass the private-address guard."""
    return ["93.184.216.34"]


def rich(text: str) -> list[dict]:
    return [{"type": "text", "text": {"content": text}, "plain_text": text}]


def block(block_id: str, kind: str, text: str = "", *, has_children: bool = False, **extra) -> dict:
    return {"object": "block", "id": block_id, "type": kind, "has_children": has_children,
            kind: {"rich_text": rich(text), **extra}}


def page_object(page_id: str, title: str) -> dict:
    return {
        "object": "page", "id": page_id, "url": f"https://www.notion.so/{title}-{page_id.replace('-', '')}",
        "last_edited_time": "2024-05-01T10:00:00.000Z",
        "properties": {
            "Status": {"id": "s", "type": "select", "select": None},
            "Name": {"id": "title", "type": "title", "title": rich(title)},
        },
    }


def children(httpserver, block_id: str, results: list[dict], *, cursor: str | None = None,
             next_cursor: str | None = None) -> None:
    query = {"page_size": "100"} | ({"start_cursor": cursor} if cursor else {})
    httpserver.expect_request(f"/v1/blocks/{block_id}/children", method="GET", query_string=query).respond_with_json(
        {"object": "list", "results": results, "has_more": next_cursor is not None, "next_cursor": next_cursor}
    )


@pytest.fixture()
def notion_api(httpserver):
    """A workspace with one rich page (blocks on two result pages, nested blocks, a table) and a database of two
    pages, one of them that same page. Returns the API base URL."""
    httpserver.expect_request(f"/v1/pages/{PAGE_ID}", method="GET").respond_with_json(page_object(PAGE_ID, "Guide"))
    children(httpserver, PAGE_ID, [
        block("b1", "heading_1", "Setup"),
        block("b2", "paragraph", "Install the widget first."),
        block("b3", "bulleted_list_item", "Unpack it", has_children=True),
        block("b4", "heading_2", "Usage"),
    ], next_cursor="cursor-2")
    children(httpserver, "b3", [block("b3a", "paragraph", "Nested detail under the bullet.")])
    children(httpserver, PAGE_ID, [
        block("b5", "numbered_list_item", "First step"),
        block("b6", "numbered_list_item", "Second step"),
        block("b7", "to_do", "Check the box", checked=True),
        block("b8", "quote", "Widgets are forever."),
        block("b9", "code", "widget --start", language="shell"),
        {"object": "block", "id": "b10", "type": "table", "has_children": True,
         "table": {"table_width": 2, "has_column_header": True}},
        {"object": "block", "id": "b11", "type": "child_page", "has_children": True,
         "child_page": {"title": "A sub-page"}},
        {"object": "block", "id": "b12", "type": "divider", "has_children": False, "divider": {}},
        block("b13", "toggle", "More", has_children=True),
    ], cursor="cursor-2")
    children(httpserver, "b10", [
        {"object": "block", "id": "r1", "type": "table_row", "has_children": False,
         "table_row": {"cells": [rich("Size"), rich("Price")]}},
        {"object": "block", "id": "r2", "type": "table_row", "has_children": False,
         "table_row": {"cells": [rich("Large"), rich("10 EUR")]}},
    ])
    children(httpserver, "b13", [block("b13a", "callout", "Hidden in the toggle.")])

    httpserver.expect_request(f"/v1/databases/{DATABASE_ID}/query", method="POST",
                              json={"page_size": 100}).respond_with_json(
        {"object": "list", "results": [page_object(OTHER_ID, "Pricing")], "has_more": True, "next_cursor": "db-2"}
    )
    httpserver.expect_request(f"/v1/databases/{DATABASE_ID}/query", method="POST",
                              json={"page_size": 100, "start_cursor": "db-2"}).respond_with_json(
        {"object": "list", "results": [page_object(PAGE_ID, "Guide")], "has_more": False, "next_cursor": None}
    )
    children(httpserver, OTHER_ID, [block("p1", "paragraph", "Widgets cost 10 EUR.")])
    return httpserver.url_for("").rstrip("/")


def notion() -> tuple[Notion, list[float]]:
    sleeps: list[float] = []
    return Notion(resolver=public_resolver, sleep=sleeps.append), sleeps


def test_reads_a_page_with_paginated_and_nested_blocks(httpserver, notion_api):
    connector, sleeps = notion()

    documents = list(connector.fetch({"page_ids": [PAGE], "api_base": notion_api}, {"token": TOKEN}))

    assert len(documents) == 1
    document = documents[0]
    assert document.metadata == {
        "source_type": "notion", "source_url": f"https://www.notion.so/Guide-{PAGE}", "title": "Guide",
        "notion_page_id": PAGE_ID, "last_edited_time": "2024-05-01T10:00:00.000Z",
    }
    assert document.text == "\n".join([
        "# Setup",
        "Install the widget first.",
        "- Unpack it",
        "  Nested detail under the bullet.",
        "",
        "## Usage",
        "1. First step",
        "2. Second step",
        "[x] Check the box",
        "> Widgets are forever.",
        "widget --start",
        "Size | Price",
        "Large | 10 EUR",
        "More",
        "  Hidden in the toggle.",
    ])
    paths = [request.path for request, _response in httpserver.log]
    assert "/v1/blocks/b11/children" not in paths  # a sub-page is a page of its own
    for request, _response in httpserver.log:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Notion-Version"] == "2022-06-28"
        assert request.headers["User-Agent"] == "PrivexBot/0.1 (+self-hosted)"
    assert sleeps == []


def test_reads_every_page_of_a_database_once(httpserver, notion_api):
    connector, _sleeps = notion()

    documents = list(connector.fetch(
        {"page_ids": [PAGE_ID], "database_id": f"https://www.notion.so/team/{DATABASE_ID.replace('-', '')}?v=abc",
         "api_base": notion_api},
        {"token": TOKEN},
    ))

    assert [d.metadata["title"] for d in documents] == ["Guide", "Pricing"]
    assert documents[1].text == "Widgets cost 10 EUR."
    assert documents[1].metadata["notion_page_id"] == OTHER_ID
    queries = [request for request, _response in httpserver.log if request.path.endswith("/query")]
    assert len(queries) == 2


def test_a_refused_token_is_not_worth_retrying(httpserver):
    httpserver.expect_request(f"/v1/pages/{PAGE_ID}").respond_with_json(
        {"object": "error", "status": 401, "code": "unauthorized", "message": "API token is invalid."}, status=401
    )
    connector, sleeps = notion()

    with pytest.raises(SourceError) as refused:
        list(connector.fetch({"page_ids": [PAGE], "api_base": httpserver.url_for("")}, {"token": TOKEN}))

    assert str(refused.value) == "Notion refused the token: API token is invalid."
    assert refused.value.transient is False
    assert len(httpserver.log) == 1 and sleeps == []


def test_a_page_not_shared_with_the_integration(httpserver):
    httpserver.expect_request(f"/v1/pages/{PAGE_ID}").respond_with_json(
        {"object": "error", "status": 404, "code": "object_not_found", "message": "Could not find page"}, status=404
    )
    connector, _sleeps = notion()

    with pytest.raises(SourceError, match=f"^the Notion page {PAGE_ID} was not found or is not shared with the "
                                          "integration$"):
        list(connector.fetch({"page_ids": [PAGE], "api_base": httpserver.url_for("")}, {"token": TOKEN}))


def test_a_server_error_is_retried(httpserver, notion_api):
    httpserver.expect_oneshot_request(f"/v1/pages/{PAGE_ID}").respond_with_data("oops", status=500)
    connector, sleeps = notion()

    documents = list(connector.fetch({"page_ids": [PAGE], "api_base": notion_api}, {"token": TOKEN}))

    assert [d.metadata["title"] for d in documents] == ["Guide"]
    assert sleeps == [1.0]


def test_rate_limiting_waits_as_long_as_notion_asks_up_to_a_cap(httpserver, notion_api):
    limited = {"object": "error", "status": 429, "code": "rate_limited", "message": "Slow down."}
    httpserver.expect_oneshot_request(f"/v1/pages/{PAGE_ID}").respond_with_json(
        limited, status=429, headers={"Retry-After": "7"})
    httpserver.expect_oneshot_request(f"/v1/pages/{PAGE_ID}").respond_with_json(
        limited, status=429, headers={"Retry-After": "3600"})
    connector, sleeps = notion()

    documents = list(connector.fetch({"page_ids": [PAGE], "api_base": notion_api}, {"token": TOKEN}))

    assert len(documents) == 1
    assert sleeps == [7.0, 30.0]


def test_gives_up_after_three_attempts_with_a_transient_error(httpserver):
    httpserver.expect_request(f"/v1/pages/{PAGE_ID}").respond_with_json(
        {"object": "error", "status": 503, "code": "service_unavailable", "message": "Notion is unavailable."},
        status=503,
    )
    connector, sleeps = notion()

    with pytest.raises(SourceError) as failed:
        list(connector.fetch({"page_ids": [PAGE], "api_base": httpserver.url_for("")}, {"token": TOKEN}))

    assert failed.value.transient is True
    assert "HTTP 503" in str(failed.value) and "Notion is unavailable." in str(failed.value)
    assert len(httpserver.log) == 3 and sleeps == [1.0, 2.0]


def test_an_unreachable_api_is_a_transient_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector, sleeps = notion()

    with pytest.raises(SourceError) as failed:
        list(connector.fetch({"page_ids": [PAGE], "api_base": f"http://127.0.0.1:{port}"}, {"token": TOKEN}))

    assert str(failed.value) == "could not reach 127.0.0.1: the connection failed"
    assert failed.value.transient is True and len(sleeps) == 2


def test_a_private_api_base_is_refused():
    with pytest.raises(SourceError, match="^refusing to connect to 169.254.169.254: it resolves to a private"):
        Notion().fetch({"page_ids": [PAGE], "api_base": "http://169.254.169.254"}, {"token": TOKEN})


def test_a_private_api_base_is_read_when_allowed(notion_api):
    # The system resolver: the local server really is on a loopback address.
    with pytest.raises(SourceError, match="^refusing to connect to (localhost|127.0.0.1): it resolves to a private"):
        Notion().fetch({"page_ids": [PAGE], "api_base": notion_api}, {"token": TOKEN})
    pages = list(Notion().fetch({"page_ids": [PAGE], "api_base": notion_api, "allow_private": True},
                                {"token": TOKEN}))
    assert [page.metadata["title"] for page in pages] == ["Guide"]
    with pytest.raises(SourceError, match="^allow_private must be true or false$"):
        Notion().fetch({"page_ids": [PAGE], "api_base": notion_api, "allow_private": "yes"}, {"token": TOKEN})


@pytest.mark.parametrize("credential", [None, {}, {"token": ""}, {"token": None}])
def test_a_token_is_required(credential):
    with pytest.raises(SourceError, match=r"^a Notion credential \(integration token\) is required$"):
        Notion().fetch({"page_ids": [PAGE]}, credential)


@pytest.mark.parametrize("config, message", [
    ({}, "give at least one Notion page"),
    ({"page_ids": "abc"}, "page_ids must be a list"),
    ({"page_ids": ["../../v1/users"]}, "is not the id or link of a Notion page"),
    ({"database_id": "nope"}, "is not the id or link of a Notion database"),
    ({"page_ids": [PAGE], "api_base": "file:///etc/passwd"}, "api_base must be an http or https URL"),
])
def test_settings_are_checked(config, message):
    with pytest.raises(SourceError, match=message):
        Notion(resolver=public_resolver).fetch(config, {"token": TOKEN})


@pytest.mark.parametrize("value", [
    PAGE, PAGE_ID, PAGE.upper(), f"https://www.notion.so/acme/Cafe-Bad-{PAGE}", f"https://www.notion.so/{PAGE}?v=1",
    f"https://acme.notion.site/Getting-started-{PAGE}#heading",
])
def test_page_ids_are_read_from_ids_and_links(value):
    assert notion_id(value, "page") == PAGE_ID
