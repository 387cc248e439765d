"""The Team area in a real browser (Debian's Chromium driven by Playwright) against a live server with CSRF on.

Journey 4 of the builder issue: the owner invites someone and copies the invitation's link from the page; the
invitee opens it in a second browser context, signs up with the invited email and accepts; the owner sees them among
the members; the invitee switches workspace with the header's switcher; as a viewer they are offered no write button
and a write they force anyway answers the 403 page. Then every Team page at 360 px and at desktop width: axe-core
finds no serious or critical violation, nothing scrolls sideways, the console stays clean and the favicon is there.

Screenshots go to tests/screenshots/ (git-ignored; PRIVEX_SCREENSHOTS=folder puts them elsewhere).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from privex.clock import now
from privex.extensions import db
from privex.models import Credential, Organization, TokenUsage, User, Workspace
from privex.services import chatbots, credentials, invitations, workspaces
from tests.test_builder_browser import DESKTOP, PHONE, Tab, make_person, sign_in
from tests.test_widget_browser import browser, live  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

PASSWORD = "Sup3r-secret!"
CLIPBOARD = ["clipboard-read", "clipboard-write"]


def force_post(page, path: str, fields: dict) -> None:
    """Send a form the page does not offer (a viewer writing), with the session's CSRF token, as a navigation."""
    page.evaluate("""([path, fields]) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = path;
        const values = {...fields, csrf_token: document.querySelector('meta[name="csrf-token"]').content};
        for (const [name, value] of Object.entries(values)) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
    }""", [path, fields])


def test_invite_by_link_accept_in_a_second_browser_switch_workspace_and_a_viewer_cannot_edit(live, browser):  # noqa: F811
    app, base = live
    olga_id, olga_org, olga_workspace = make_person(app, "olga@example.com", "Olga")
    owner = Tab(browser, permissions=CLIPBOARD)
    page = owner.page
    problems = {}

    sign_in(page, base, "olga@example.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    expect(page).to_have_url(f"{base}/team")
    expect(page.get_by_role("navigation", name="Team").get_by_role("link", name="Members")).to_have_attribute(
        "aria-current", "page")
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Role in the organization").select_option("member")
    page.get_by_label("Also add them to a workspace").select_option(label="Default")
    page.get_by_label("Their role in that workspace").select_option("viewer")
    owner.expected_statuses = {201}
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("heading", name="Send this link to nina@example.com")).to_be_visible()
    expect(page.get_by_text("nothing is emailed", exact=True)).to_be_visible()
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    link = page.evaluate("() => navigator.clipboard.readText()")
    assert link.startswith(f"{base}/invitations/inv_")
    pending = page.get_by_role("region", name="Pending invitations")
    expect(pending).to_contain_text("nina@example.com")
    problems["invitation link"] = owner.check("team-invitation-link")

    # The invitee, in a browser of their own, opens the link, signs up with the invited email and accepts.
    invitee = Tab(browser, viewport=PHONE)
    other = invitee.page
    other.goto(link)
    expect(other.get_by_role("heading", name="You are invited to a team on PrivexBot")).to_be_visible()
    other.get_by_role("link", name="Create an account").click()
    other.get_by_label("Email").fill("nina@example.com")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_label("Your name").fill("Nina")
    other.get_by_role("button", name="Create account").click()
    other.get_by_role("button", name="Accept the invitation").click()
    expect(other).to_have_url(f"{base}/app")
    expect(other.get_by_role("status").filter(has_text="You joined Olga's organization.")).to_be_visible()
    switcher = other.get_by_label("Working in")
    expect(switcher).to_have_value(f"{olga_org}/{olga_workspace}")

    page.goto(f"{base}/team")
    members = page.get_by_role("region", name="Members")
    expect(members.get_by_role("listitem").filter(has_text="Nina")).to_contain_text("Member")
    expect(page.get_by_text("No invitation is waiting to be accepted.")).to_be_visible()
    problems["members with the invitee"] = owner.check("team-members-joined")

    # The header's switcher: to Nina's own workspace and back to Olga's.
    switcher.select_option(label="Nina's organization › Default")
    other.get_by_role("button", name="Switch").click()
    expect(other.get_by_label("Working in")).to_contain_text("Nina's organization › Default")
    expect(other.get_by_label("Working in")).not_to_have_value(f"{olga_org}/{olga_workspace}")
    other.get_by_label("Working in").select_option(label="Olga's organization › Default")
    other.get_by_role("button", name="Switch").click()
    expect(other.get_by_label("Working in")).to_have_value(f"{olga_org}/{olga_workspace}")

    # A viewer: pages to read, no write button, and a forced write is the 403 page.
    other.goto(f"{base}/team")
    tabs = other.get_by_role("navigation", name="Team")
    expect(tabs.get_by_role("link", name="API keys")).to_have_count(0)
    expect(tabs.get_by_role("link", name="Plan and usage")).to_have_count(0)
    expect(other.get_by_role("heading", name="Invite someone")).to_have_count(0)
    expect(other.get_by_role("button", name="Change role")).to_have_count(0)
    problems["members as a member"] = invitee.check("team-members-viewer")
    other.goto(f"{base}/team/workspaces/{olga_workspace}")
    expect(other.get_by_role("heading", name="Members")).to_be_visible()
    for write in ("Change role", "Remove…", "Delete the workspace…", "Save", "Add to Default"):
        expect(other.get_by_role("button", name=write)).to_have_count(0)
    other.goto(f"{base}/team/credentials")
    expect(other.get_by_text("An editor or admin of this workspace adds them.")).to_be_visible()
    expect(other.get_by_role("heading", name="Add a credential")).to_have_count(0)
    problems["credentials as a viewer"] = invitee.check("team-credentials-viewer")
    invitee.expected_statuses = {403}
    force_post(other, "/team/credentials", {"name": "Mine", "provider": "notion", "secret_json": '{"t": "x"}'})
    expect(other.get_by_role("heading", name="You may not do that here")).to_be_visible()
    expect(other.get_by_text("Viewers look but change nothing")).to_be_visible()
    problems["viewer refused"] = invitee.check("team-viewer-403")
    other.goto(f"{base}/team/api-keys")
    expect(other.get_by_text("Only admins of this workspace see and make its API keys.")).to_be_visible()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Credential)) == 0
    owner.close()
    invitee.close()
    assert not owner.problems and not invitee.problems, owner.problems + invitee.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)


def furnish(app, owner_id, organization_id, workspace_id) -> dict:
    """Someone else in the organization, a second workspace, a pending invitation, a credential used 25 times, and
    30 days of tokens from two bots: every Team page has something to show."""
    with app.app_context():
        organization = db.session.get(Organization, organization_id)
        owner = db.session.get(User, owner_id)
        workspace = db.session.get(Workspace, workspace_id)
        invitations.invite_or_add(organization, owner, "owner", "bob@example.com", "admin")
        invitations.invite_or_add(organization, owner, "owner", "pending.person.with.a.long.address@example.com",
                                  "member", workspace_id=workspace.id, workspace_role="editor")
        support = workspaces.add_workspace(organization, owner, "Customer support and after-sales",
                                           description="Bots for the help desk")
        credential = credentials.create(workspace, owner.id, {"name": "Notion — company wiki", "provider": "notion",
                                                              "credential_type": "token"},
                                        {"token": "secret_NotionIntegrationToken0123456789"})
        for _ in range(25):
            credentials.use(credential, "ingest")
        helper = chatbots.create(workspace, owner.id, {"name": "Helper"})
        sales = chatbots.create(workspace, owner.id, {"name": "Sales assistant with a long name"})
        for day in range(30):
            for bot, tokens in ((helper, 1200 + 90 * day), (sales, 400 + (day % 7) * 150)):
                db.session.add(TokenUsage(workspace_id=workspace.id, organization_id=organization.id,
                                          chatbot_id=bot.id, provider="openai", prompt_tokens=tokens,
                                          completion_tokens=tokens // 5, created_at=now() - timedelta(days=day)))
        db.session.commit()
        return {"support": support.id, "credential": credential.id}


def test_every_team_page_at_phone_and_desktop_width(live, browser):  # noqa: F811
    app, base = live
    owner_id, organization_id, workspace_id = make_person(app, "olga@example.com", "Olga Maria Konstantinopoulou")
    make_person(app, "bob@example.com", "Bob")
    ids = furnish(app, owner_id, organization_id, workspace_id)
    pages = {"team-members": "/team", "team-workspaces": "/team/workspaces",
             "team-workspace": f"/team/workspaces/{workspace_id}", "team-keys-empty": "/team/api-keys",
             "team-credentials": "/team/credentials", "team-credential": f"/team/credentials/{ids['credential']}",
             "team-plan": "/team/plan"}
    problems = {}
    for viewport in (PHONE, DESKTOP):
        width = viewport["width"]
        tab = Tab(browser, viewport=viewport, permissions=CLIPBOARD)
        page = tab.page
        sign_in(page, base, "olga@example.com")
        for name, path in pages.items():
            page.goto(base + path)
            if name == "team-credential":  # the audit log's next page, swapped in by htmx; focus stays in it
                log = page.get_by_role("region", name="Audit log").first
                page.locator("#audit-log-next").focus()
                page.keyboard.press("Enter")
                expect(page.locator("#audit-log")).to_contain_text("Page 2 of 2")
                expect(page).to_have_url(base + path)
                expect(page.get_by_role("heading", name="Audit log")).to_be_focused()
                expect(log).to_contain_text("Stored")
            if name == "team-plan":
                page.get_by_text("Tokens per day as a table").click()  # the chart's figures, opened
                expect(page.get_by_role("region", name="Per day").get_by_role("row")).to_have_count(31)
            problems[f"{name} {width}"] = tab.check(name)

        # Forms refused beside their fields, a confirmation open, a secret shown once.
        tab.expected_statuses = {409, 422, 201}
        page.goto(f"{base}/team")
        page.get_by_label("Email").fill("pending.person.with.a.long.address@example.com")
        page.get_by_role("button", name="Invite").click()
        expect(page.locator("#email-error")).to_contain_text("already has a pending invitation")
        expect(page.get_by_label("Email")).to_be_focused()
        problems[f"invite refused {width}"] = tab.check("team-invite-refused")
        page.get_by_role("listitem").filter(has_text="Bob").get_by_role("button", name="Remove…").click()
        dialog = page.get_by_role("dialog", name="Remove Bob from")
        expect(dialog).to_be_visible()
        problems[f"remove dialog {width}"] = tab.check("team-remove-dialog")
        dialog.get_by_role("button", name="Cancel").click()

        page.goto(f"{base}/team/api-keys")
        page.get_by_label("Name").fill(f"Website widget {width}")
        page.get_by_role("button", name="Make the key").click()
        expect(page.locator("fieldset.team-checks #permissions-error")).to_have_count(0)  # chat is ticked already
        expect(page.get_by_text("Copy it now: it will not be shown again.")).to_be_visible()
        page.get_by_role("button", name="Copy key").click()
        secret = page.evaluate("() => navigator.clipboard.readText()")
        assert secret.startswith("pk_") and "." in secret
        problems[f"key shown once {width}"] = tab.check("team-key-created")
        page.goto(f"{base}/team/api-keys")
        expect(page.get_by_text(secret)).to_have_count(0)
        row = page.get_by_role("listitem").filter(has_text=f"Website widget {width}")
        row.get_by_role("button", name="Revoke…").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke the key").click()
        expect(page.get_by_role("listitem").filter(has_text=f"Website widget {width}")).to_contain_text("Revoked")

        page.goto(f"{base}/team/credentials")
        page.get_by_label("Name", exact=True).fill("Wiki")
        page.get_by_label("Provider").fill("notion")
        page.get_by_label("Value 1").fill("secret_typed_into_the_page_0000")
        page.get_by_role("button", name="Save the credential").click()
        expect(page.locator("#pairs-0-key-error")).to_have_text("Give this value a name, e.g. token.")
        expect(page.get_by_label("Value 1")).to_have_value("")  # never written back into the page
        problems[f"credential refused {width}"] = tab.check("team-credential-refused")

        page.goto(f"{base}/team/workspaces")
        page.get_by_label("Name").fill("Default")
        page.get_by_role("button", name="Create workspace").click()
        expect(page.locator("#name-error")).to_contain_text("Already used by another workspace")
        problems[f"workspace refused {width}"] = tab.check("team-workspace-refused")
        tab.close()
        problems[f"console {width}"] = tab.problems
    assert not {k: v for k, v in problems.items() if v}, json.dumps(problems, indent=1)
