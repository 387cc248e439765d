"""/api/docs in a real browser: "Authorize" with a real access token, then "Try it out" sends it (issue 9).

Before operations declared their security schemes, Swagger UI reported the authorization as done and then sent
requests without the token (401). Same set-up as the widget's browser tests: Debian's Chromium driven by
Playwright, the app served over HTTP on its own migrated database.
"""

from __future__ import annotations

import pytest

from tests.helpers import sign_up
from tests.test_widget_browser import browser, expect, live, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def test_authorize_then_try_it_out_sends_the_token(live, page, tmp_path):  # noqa: F811
    app, base = live
    person = sign_up(app.test_client(), "dora")
    page.goto(f"{base}/api/docs")

    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".dialog-ux")  # Swagger UI 4's modal (it has no dialog role)
    bearer = dialog.locator(".auth-container").filter(has_text="bearerAuth")
    bearer.get_by_label("auth-bearer-value").fill(person.access_token)
    bearer.get_by_role("button", name="Authorize").click()
    expect(bearer.get_by_role("button", name="Logout")).to_be_visible()  # Swagger UI's "authorized" state
    bearer.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    operation = page.locator(".opblock-get").filter(has=page.locator("[data-path='/api/v1/auth/me']"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    response = operation.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_have_text("200", timeout=15_000)
    expect(response.locator(".response-col_description")).to_contain_text(person.email)
    curl = operation.locator(".curl-command").inner_text()
    assert f"Authorization: Bearer {person.access_token}" in curl
    response.scroll_into_view_if_needed()
    screenshot = tmp_path / "api-docs-auth-me.png"
    page.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.stat().st_size > 0
