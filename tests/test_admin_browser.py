"""The back office in a real browser (Debian's Chromium driven by Playwright): an operator signs in, opens the main
lists and forms, meets a refused setting beside its field, and axe-core finds no serious accessibility violation.

axe-core comes from the `axe-playwright-python` package on PyPI, which ships `axe.min.js` (only that file is used),
so the build needs no npm. Screenshots go to the test's temporary folder (PRIVEX_SCREENSHOTS=folder keeps them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from privex.auth.passwords import hash_password
from privex.extensions import db
from privex.models import AuthIdentity, User
from tests.test_widget_browser import CHROMIUM, browser, live, make_bot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
axe_package = pytest.importorskip("axe_playwright_python")
expect = sync_api.expect

PASSWORD = "Corr3ct-Horse!"
AXE = Path(axe_package.__file__).with_name("axe.min.js")
# Flask-Admin's Bootstrap 4 theme draws its action links as icons with a title and its navbar in Bootstrap's
# colours; what is ours (labels, headings, landmarks, language, errors) is checked at every impact.
SERIOUS = ("serious", "critical")


def make_operator(app) -> None:
    with app.app_context():
        user = User(username="root", is_superuser=True)
        user.identities.append(AuthIdentity(provider="email", provider_id="root@example.com",
                                            password_hash=hash_password(PASSWORD)))
        db.session.add(user)
        db.session.commit()


def violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in SERIOUS]


@pytest.fixture()
def shots(tmp_path):
    folder = Path(os.environ.get("PRIVEX_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_operator_works_the_back_office_in_a_browser(live, browser, shots):  # noqa: F811
    app, base = live
    bot = make_bot(app)
    make_operator(app)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))

    page.goto(f"{base}/admin/chatbot/")
    expect(page).to_have_url(f"{base}/login?next=/admin/chatbot/")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/admin/chatbot/")
    expect(page.locator("table.model-list")).to_contain_text("Handbook helper")
    expect(page.locator("table.model-list")).to_contain_text("Olga's organization / Default")
    page.screenshot(path=str(shots / "admin-chatbot-list.png"), full_page=True)
    found = {"/admin/chatbot/": violations(page)}

    page.goto(f"{base}/admin/chatbot/edit/?id={bot['id']}")
    box = page.get_by_label("Config")
    settings = json.loads(box.input_value())
    settings["retrieval"]["top_k"] = "lots"
    box.fill(json.dumps(settings, indent=2, ensure_ascii=False))
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator(".invalid-feedback li")
    expect(error).to_have_text("retrieval.top_k: Not a valid integer.")
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was saved")
    error.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "admin-chatbot-edit-error.png"), full_page=True)
    found["chatbot edit, refused"] = violations(page)

    for url in ("/admin/", "/admin/user/", "/admin/organization/", "/admin/knowledgebase/", "/admin/document/",
                "/admin/knowledgebase/new/", f"/admin/chatbot/details/?id={bot['id']}", "/admin/lead/"):
        page.goto(base + url)
        found[url] = violations(page)
    page.goto(f"{base}/admin/document/")
    page.screenshot(path=str(shots / "admin-document-list.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/")
    page.goto(f"{base}/admin/")
    expect(page).to_have_url(f"{base}/login?next=/admin/")
    context.close()
    assert not errors, errors
    problems = {url: problems for url, problems in found.items() if problems}
    assert not problems, json.dumps(problems, indent=1)
