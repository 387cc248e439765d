"""The ``google_docs`` connector against a local server speaking the Google Docs API (v1): headings become sections,
tables are read, tabs are followed, errors are explained."""

from __future__ import annotations

import pytest

from privex.contracts import SourceError
from privex_parsers.connectors.google_docs import GoogleDocs, document_id

TOKEN = "ya29.test-access-token"
DOC_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789-abc"


def public_resolver(host: str, port: int) -> list[str]:
    """The local test server stands in for docs.googleapis.com, so its name must pass the private-address guard."""
    return ["142.250.74.42"]


def paragraph(text: str, style: str = "NORMAL_TEXT", *, bullet: int | None = None) -> dict:
    body = {
        # The API splits a paragraph into runs wherever the formatting changes, and ends it with a newline.
        "elements": [{"startIndex": 1, "endIndex": 2, "textRun": {"content": part, "textStyle": {}}}
                     for part in (text[: len(text) // 2], text[len(text) // 2:] + "\n")],
        "paragraphStyle": {"namedStyleType": style, "direction": "LEFT_TO_RIGHT"},
    }
    if bullet is not None:
        body["bullet"] = {"listId": "kix.list1", "nestingLevel": bullet}
    return {"startIndex": 1, "endIndex": 2, "paragraph": body}


def table(rows: list[list[str]]) -> dict:
    return {"startIndex": 1, "endIndex": 2, "table": {
        "rows": len(rows), "columns": len(rows[0]),
        "tableRows": [{"tableCells": [{"content": [paragraph(cell)]} for cell in row]} for row in rows],
    }}


HANDBOOK = {
    "documentId": DOC_ID,
    "title": "Widget handbook",
    "revisionId": "rev-1",
    "body": {"content": [
        {"endIndex": 1, "sectionBreak": {"sectionStyle": {}}},
        paragraph("Widget handbook", "TITLE"),
        paragraph("Read this before anything else."),
        {"tableOfContents": {"content": [paragraph("Installation")]}},
        paragraph("Installation", "HEADING_1"),
        paragraph("Installing takes five minutes."),
        paragraph("On Linux", "HEADING_2"),
        paragraph("Use the package manager.\x0bThen reboot."),
        paragraph("apt install widget", bullet=0),
        paragraph("widget --check", bullet=1),
        paragraph("Reference", "HEADING_1"),
        table([["Size", "Price"], ["Large", "10 EUR"]]),
        paragraph("Nothing under this one", "HEADING_2"),
        paragraph("Limits", "HEADING_2"),
        paragraph("At most 3 widgets per desk."),
        paragraph("   "),
    ]},
}


def google_docs() -> tuple[GoogleDocs, list[float]]:
    sleeps: list[float] = []
    return GoogleDocs(resolver=public_resolver, sleep=sleeps.append), sleeps


def serve(httpserver, doc_id: str, document: dict) -> None:
    httpserver.expect_request(f"/v1/documents/{doc_id}", method="GET",
                              query_string={"includeTabsContent": "true",
                                            "suggestionsViewMode": "PREVIEW_WITHOUT_SUGGESTIONS"},
                              ).respond_with_json(document)


def test_one_document_per_heading_section(httpserver):
    serve(httpserver, DOC_ID, HANDBOOK)
    connector, sleeps = google_docs()

    documents = list(connector.fetch({"document_ids": [DOC_ID], "api_base": httpserver.url_for("")},
                                     {"access_token": TOKEN}))

    assert [(d.metadata["heading"], d.text) for d in documents] == [
        ("Widget handbook", "Widget handbook\nRead this before anything else."),
        ("Widget handbook > Installation", "Installation\nInstalling takes five minutes."),
        ("Widget handbook > Installation > On Linux",
         "On Linux\nUse the package manager.\nThen reboot.\n- apt install widget\n  - widget --check"),
        ("Widget handbook > Reference", "Reference\nSize | Price\nLarge | 10 EUR"),
        ("Widget handbook > Reference > Limits", "Limits\nAt most 3 widgets per desk."),
    ]
    assert documents[0].metadata == {
        "source_type": "google_docs", "source_url": f"https://docs.google.com/document/d/{DOC_ID}/edit",
        "title": "Widget handbook", "document_id": DOC_ID, "heading": "Widget handbook", "section": 1,
    }
    assert len({d.id_ for d in documents}) == len(documents)
    (request, _response), = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"] == "PrivexBot/0.1 (+self-hosted)"
    assert sleeps == []


def test_tabs_are_read_in_order_with_their_titles(httpserver):
    def tab(title: str, content: list[dict], children: list[dict] = ()) -> dict:
        return {"tabProperties": {"tabId": title, "title": title}, "childTabs": list(children),
                "documentTab": {"body": {"content": content}}}

    serve(httpserver, DOC_ID, {"documentId": DOC_ID, "title": "Notes", "tabs": [
        tab("Summary", [paragraph("All is well.")], children=[
            tab("Details", [paragraph("Numbers", "HEADING_1"), paragraph("Forty two.")]),
        ]),
        tab("Archive", [paragraph("Old news.")]),
    ]})
    connector, _sleeps = google_docs()

    documents = list(connector.fetch({"document_ids": [DOC_ID], "api_base": httpserver.url_for("")},
                                     {"access_token": TOKEN}))

    assert [(d.metadata["heading"], d.text) for d in documents] == [
        ("Summary", "Summary\nAll is well."),
        ("Details > Numbers", "Numbers\nForty two."),
        ("Archive", "Archive\nOld news."),
    ]


def test_a_document_that_is_not_shared(httpserver):
    httpserver.expect_request(f"/v1/documents/{DOC_ID}").respond_with_json(
        {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}, status=404
    )
    connector, _sleeps = google_docs()

    with pytest.raises(SourceError) as failed:
        list(connector.fetch({"document_ids": [DOC_ID], "api_base": httpserver.url_for("")},
                             {"access_token": TOKEN}))

    assert str(failed.value) == (f"the Google document {DOC_ID} was not found or is not shared with the connected "
                                 "account")
    assert failed.value.transient is False


def test_an_expired_token(httpserver):
    httpserver.expect_request(f"/v1/documents/{DOC_ID}").respond_with_json(
        {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                   "status": "UNAUTHENTICATED"}}, status=401
    )
    connector, sleeps = google_docs()

    with pytest.raises(SourceError, match="^Google refused the access token") as failed:
        list(connector.fetch({"document_ids": [DOC_ID], "api_base": httpserver.url_for("")},
                             {"access_token": TOKEN}))

    assert failed.value.transient is False and sleeps == [] and len(httpserver.log) == 1


def test_permission_denied_says_why(httpserver):
    httpserver.expect_request(f"/v1/documents/{DOC_ID}").respond_with_json(
        {"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}},
        status=403,
    )
    connector, _sleeps = google_docs()

    with pytest.raises(SourceError, match="The caller does not have permission$"):
        list(connector.fetch({"document_ids": [DOC_ID], "api_base": httpserver.url_for("")},
                             {"access_token": TOKEN}))


def test_a_server_error_is_retried(httpserver):
    httpserver.expect_oneshot_request(f"/v1/documents/{DOC_ID}").respond_with_data("busy", status=502)
    serve(httpserver, DOC_ID, HANDBOOK)
    connector, sleeps = google_docs()

    documents = list(connector.fetch({"document_ids": [f"https://docs.google.com/document/d/{DOC_ID}/edit"],
                                      "api_base": httpserver.url_for("")}, {"access_token": TOKEN}))

    assert len(documents) == 5 and sleeps == [1.0]


@pytest.mark.parametrize("credential", [None, {}, {"access_token": " "}, {"token": TOKEN}])
def test_an_access_token_is_required(credential):
    with pytest.raises(SourceError, match=r"^a Google credential \(OAuth access token\) is required$"):
        GoogleDocs().fetch({"document_ids": [DOC_ID]}, credential)


@pytest.mark.parametrize("config, message", [
    ({}, "give at least one Google Docs document"),
    ({"document_ids": DOC_ID}, "document_ids must be a list"),
    ({"document_ids": ["../../drive/v3/files"]}, "is not the id or link of a Google Docs document"),
    ({"document_ids": [DOC_ID], "api_base": "http://[::1]:8080"}, "refusing to connect to ::1"),
])
def test_settings_are_checked(config, message):
    with pytest.raises(SourceError, match=message):
        GoogleDocs().fetch(config, {"access_token": TOKEN})


@pytest.mark.parametrize("value", [
    DOC_ID, f" {DOC_ID} ", f"https://docs.google.com/document/d/{DOC_ID}/edit#heading=h.1",
    f"https://docs.google.com/document/u/1/d/{DOC_ID}/view",
])
def test_document_ids_are_read_from_ids_and_links(value):
    assert document_id(value) == DOC_ID
