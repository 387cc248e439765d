"""The conventions every API endpoint shares: JSON errors, HTML errors off the API, request ids, CORS, pages, docs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from openapi_spec_validator import validate

from conftest import rolled_back
from privex.extensions import db
from privex.logs import JSONFormatter
from privex.models import User
from tests import api_fixture_plugin


@pytest.fixture(scope="module")
def api_app(make_app, app):
    return make_app(plugins=[api_fixture_plugin], MAX_UPLOAD_MB=1)


@pytest.fixture()
def api_client(api_app):
    with rolled_back(api_app):
        yield api_app.test_client()


def assert_error_shape(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_api_route_is_a_json_404(client):
    assert_error_shape(client.get("/api/v1/no-such-thing"), 404)


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(client):
    response = client.delete("/api/v1/health")
    assert_error_shape(response, 405)
    assert "GET" in response.headers["Allow"]


def test_invalid_fields_are_a_422_listing_each_field(api_client):
    response = api_client.post("/api/v1/_fixture/echo", json={"name": "", "count": "many"})
    body = assert_error_shape(response, 422)
    assert set(body["errors"]) == {"name", "count"}


def test_malformed_json_is_a_400(api_client):
    response = api_client.post("/api/v1/_fixture/echo", data="{not json", content_type="application/json")
    assert_error_shape(response, 400)


def test_a_body_that_is_not_json_is_a_415(api_client):
    response = api_client.post("/api/v1/_fixture/echo", data="name=x", content_type="text/plain")
    body = assert_error_shape(response, 415)
    assert "application/json" in body["message"]


def test_a_body_over_the_size_limit_is_a_413(api_client):
    response = api_client.post("/api/v1/_fixture/echo", data=json.dumps({"name": "x" * (1024 * 1024 + 10)}),
                               content_type="application/json")
    body = assert_error_shape(response, 413)
    assert "1 MB" in body["message"]


def test_a_valid_body_is_accepted(api_client):
    response = api_client.post("/api/v1/_fixture/echo", json={"name": "ada"})
    assert response.status_code == 201
    assert response.get_json() == {"name": "ada", "count": 1}


def test_a_bug_is_a_json_500_that_hides_the_details(api_app, caplog):
    api_app.testing = False  # let the error reach the handler, as in production
    try:
        with rolled_back(api_app):
            response = api_app.test_client().get("/api/v1/_fixture/boom")
    finally:
        api_app.testing = True
    body = assert_error_shape(response, 500)
    assert "kaboom" not in json.dumps(body)
    assert any("kaboom" in (record.exc_text or "") or record.exc_info for record in caplog.records
               if record.levelname == "ERROR")


def test_too_many_requests_is_a_429_with_retry_after(api_client):
    assert api_client.get("/api/v1/_fixture/limited").status_code == 200
    assert api_client.get("/api/v1/_fixture/limited").status_code == 200
    response = api_client.get("/api/v1/_fixture/limited")
    assert_error_shape(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_pages_keep_html_errors(client, api_app):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    api_app.testing = False
    try:
        with rolled_back(api_app):
            response = api_app.test_client().get("/_fixture/boom")
    finally:
        api_app.testing = True
    assert response.status_code == 500
    assert response.mimetype == "text/html"


def test_admin_errors_stay_html(client):
    response = client.get("/admin/no-such-view/")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_request_id_is_echoed_or_made(client):
    assert client.get("/api/v1/plugins", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/api/v1/plugins").headers["X-Request-ID"]
    assert len(made) == 32
    # Anything but a short token (it is copied into logs and headers) is replaced, not echoed.
    odd = "<script>alert(1)</script> " + "x" * 200
    replaced = client.get("/api/v1/plugins", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
    assert replaced != odd and len(replaced) == 32


def test_logs_are_json_lines_with_the_request_id(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logging.getLogger().addHandler(handler)
    try:
        client.get("/api/v1/plugins", headers={"X-Request-ID": "trace-me-42"})
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "privex.access"]
    assert access[-1]["request_id"] == "trace-me-42"
    assert access[-1]["path"] == "/api/v1/plugins" and access[-1]["status"] == 200
    assert access[-1]["level"] == "info" and access[-1]["time"].endswith("+00:00")


def test_cors_allows_configured_origins_only(client):
    allowed = client.get("/api/v1/plugins", headers={"Origin": "https://allowed.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://allowed.example"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    other = client.get("/api/v1/plugins", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = client.options("/api/v1/plugins", headers={"Origin": "https://allowed.example",
                                                            "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://allowed.example"


def test_pagination_pages_through_a_query_with_totals_in_a_header(api_client):
    db.session.add_all(User(username=f"pager-{n:02d}") for n in range(25))
    db.session.commit()
    response = api_client.get("/api/v1/_fixture/users?page=3&page_size=10")
    assert response.status_code == 200
    assert [user["username"] for user in response.get_json()] == [f"pager-{n:02d}" for n in range(20, 25)]
    meta = json.loads(response.headers["X-Pagination"])
    assert meta["total"] == 25 and meta["total_pages"] == 3 and meta["page"] == 3 and "next_page" not in meta
    assert api_client.get("/api/v1/_fixture/users?page=9").get_json() == []
    assert_error_shape(api_client.get("/api/v1/_fixture/users?page_size=1000"), 422)
    assert_error_shape(api_client.get("/api/v1/_fixture/users?page=zero"), 422)


def test_openapi_document_is_valid_and_lists_the_api(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert "/api/v1/health" in spec["paths"] and "/api/v1/plugins" in spec["paths"]


def test_interactive_docs_work_offline(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.get_data(as_text=True)
    with client.get("/api/docs/assets/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
