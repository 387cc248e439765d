"""The Team pages through the test client: members and roles, invitations by link, ownership transfer, leaving,
workspaces and their members, API keys (the secret once), credentials (secrets never on a page), plan and usage;
refusals beside their fields or at the top of the page with the service's status, permissions per role, and an
isolation walk over every /team route. The same area runs in a real browser in test_team_browser.py."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

import pytest
import sqlalchemy as sa

from privex.clock import now
from privex.extensions import db
from privex.models import (APIKey, Chatbot, Credential, CredentialAuditLog, Invitation, Organization,
                           OrganizationMember, TokenUsage, User, Workspace, WorkspaceMember)
from privex.services import analytics, chatbots, credentials, invitations, registration
from privex.tenancy.context import api_key_caller
from tests.test_web_shell import error_of, html

PASSWORD = "Sup3r-secret!"


# -- people --------------------------------------------------------------------------------------------------------

class Someone:
    """A person with their own browser (test client), signed in."""

    def __init__(self, app, email: str, name: str | None = None):
        self.user = registration.sign_up(email, PASSWORD, name or email.split("@")[0].title())
        db.session.commit()
        self.email = email
        self.workspace = db.session.scalar(sa.select(Workspace).where(Workspace.created_by_id == self.user.id))
        self.organization = db.session.get(Organization, self.workspace.organization_id)
        self.client = app.test_client()
        signed = self.client.post("/login", data={"email": email, "password": PASSWORD})
        assert signed.status_code == 302

    def get(self, url, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.client.post(url, data=data or {}, **kwargs)

    def work_in(self, organization: Organization, workspace: Workspace | None = None) -> None:
        context = f"{organization.id}/{workspace.id if workspace else ''}"
        assert self.post("/context", {"context": context}).status_code == 302


def join(owner: Someone, member: Someone, org_role: str = "member", workspace: Workspace | None = None,
         workspace_role: str = "viewer") -> Someone:
    """``member`` in ``owner``'s organization (and workspace), working there."""
    invitations.invite_or_add(owner.organization, owner.user, "owner", member.email, org_role,
                              workspace_id=workspace.id if workspace else None, workspace_role=workspace_role)
    member.work_in(owner.organization, workspace)
    return member


@pytest.fixture()
def olga(app, database):
    return Someone(app, "olga@example.com", "Olga")


@pytest.fixture()
def vic(app, database):
    return Someone(app, "vic@example.com", "Vic")


def flash_of(response) -> str:
    assert response.status_code == 303, (response.status_code, html(response)[:2000])
    return response.headers["Location"]


def problem_of(page: str) -> str:
    match = re.search(r'<div class="form-errors team-problem" role="alert"><p>(.*?)</p>', page, re.S)
    assert match, "no problem said at the top of the page"
    return match.group(1)


def role_in(organization: Organization, user: User) -> str | None:
    return db.session.scalar(sa.select(OrganizationMember.role).where(
        OrganizationMember.organization_id == organization.id, OrganizationMember.user_id == user.id))


# -- members and invitations ---------------------------------------------------------------------------------------

def test_the_owner_invites_by_a_link_shown_once_and_adds_someone_with_an_account_at_once(olga, vic, app):
    page = html(olga.get("/team"))
    assert "Olga" in page and 'class="badge team-role team-role-owner">Owner' in page
    assert 'aria-current="page">Members' in page and "Invite someone" in page

    invited = olga.post("/team/invite", {"email": "New@Example.com", "role": "member",
                                         "workspace_id": str(olga.workspace.id), "workspace_role": "editor"})
    assert invited.status_code == 201 and invited.headers["Cache-Control"] == "no-store"
    page = html(invited)
    link = re.search(r'id="invitation-link" type="text" readonly value="([^"]+)"', page).group(1)
    assert link.startswith(app.config["PUBLIC_URL"].rstrip("/") + "/invitations/inv_")
    assert "nothing is emailed" in page and 'data-copy="invitation-link"' in page
    assert "new@example.com" in page and "and editor of Default" in page  # pending, with its workspace
    token = link.rsplit("/", 1)[1]
    assert token not in html(olga.get("/team"))  # shown once

    # Someone who has an account is added at once; no link.
    added = olga.post("/team/invite", {"email": "vic@example.com", "role": "admin", "workspace_id": ""})
    assert flash_of(added) == "/team"
    page = html(olga.get("/team"))
    assert "Vic had an account and is now a member of Olga&#39;s organization." in page
    assert role_in(olga.organization, vic.user) == "admin"

    again = olga.post("/team/invite", {"email": "new@example.com", "role": "member"})
    assert again.status_code == 409
    assert error_of(html(again), "email") == \
        "New@example.com already has a pending invitation; revoke it to send a new one."
    bad = olga.post("/team/invite", {"email": "not-an-email", "role": "member"})
    assert bad.status_code == 422 and error_of(html(bad), "email") == "Not an email address."
    role = olga.post("/team/invite", {"email": "x@example.com", "role": "boss"})
    assert role.status_code == 422 and error_of(html(role), "role") == "One of owner, admin, member."
    garbage = olga.post("/team/invite", {"email": "x@example.com", "role": "member", "workspace_id": "nope"})
    assert garbage.status_code == 422 and error_of(html(garbage), "workspace_id") == "Choose a workspace from the list."

    # The invitee opens the link, signs up with the invited email and accepts: they are in, as editor.
    newcomer = app.test_client()
    newcomer.post(f"/signup?next=/invitations/{token}", data={"email": "new@example.com", "password": PASSWORD,
                                                             "display_name": "Nina"})
    assert newcomer.post(f"/invitations/{token}").headers["Location"] == "/app"
    page = html(olga.get("/team"))
    assert "Nina" in page and "No invitation is waiting to be accepted." in page
    nina = db.session.scalar(sa.select(User).where(User.display_name == "Nina"))
    assert db.session.scalar(sa.select(WorkspaceMember.role).where(
        WorkspaceMember.user_id == nina.id, WorkspaceMember.workspace_id == olga.workspace.id)) == "editor"


def test_a_revoked_invitation_link_stops_working(olga, app):
    invited = olga.post("/team/invite", {"email": "late@example.com", "role": "member"})
    token = re.search(r'/invitations/(inv_[^"]+)"', html(invited)).group(1)
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.email == "late@example.com"))
    assert flash_of(olga.post(f"/team/invitations/{invitation.id}/revoke")) == "/team"
    assert "The invitation for late@example.com was revoked" in html(olga.get("/team"))
    late = app.test_client()
    late.post("/signup", data={"email": "late@example.com", "password": PASSWORD})
    assert late.post(f"/invitations/{token}").status_code == 404
    assert olga.post(f"/team/invitations/{invitation.id}/revoke").status_code == 404  # already revoked


def test_roles_change_and_the_last_owner_rule_is_said_on_the_page(olga, vic):
    join(olga, vic, "member", olga.workspace)
    assert flash_of(olga.post(f"/team/members/{vic.user.id}/role", {"role": "admin"})) == "/team"
    assert "Vic is now an admin of Olga&#39;s organization." in html(olga.get("/team"))

    # Vic (an admin) may manage members but not the owner: no form for her row, and a forced request is refused.
    page = html(vic.get("/team"))
    assert f'action="/team/members/{olga.user.id}/role"' not in page
    assert f'action="/team/members/{olga.user.id}/remove"' not in page
    refused = vic.post(f"/team/members/{olga.user.id}/role", {"role": "member"})
    assert refused.status_code == 403
    assert problem_of(html(refused)) == "Only an owner can make someone an owner or change an owner&#39;s role."
    assert 'value="owner"' not in html(vic.get("/team"))  # admins are offered admin and member only

    # The last owner cannot step down or leave: said at the top of the page, with the Conflict's status.
    assert "You are its only owner" in html(olga.get("/team"))
    leave = olga.post("/team/leave")
    assert leave.status_code == 409 and problem_of(html(leave)) == (
        "The last owner cannot leave or be removed: transfer ownership or delete the organization.")
    demote = olga.post(f"/team/members/{olga.user.id}/role", {"role": "member"})
    assert demote.status_code == 409 and "last owner" in problem_of(html(demote))
    assert role_in(olga.organization, olga.user) == "owner"

    # Ownership handed over: Vic owns it, Olga stays on as admin and can now leave.
    assert "Make owner" in html(olga.get("/team"))
    assert vic.post(f"/team/members/{olga.user.id}/transfer").status_code == 403  # an admin cannot
    assert flash_of(olga.post(f"/team/members/{vic.user.id}/transfer")) == "/team"
    assert role_in(olga.organization, vic.user) == "owner" and role_in(olga.organization, olga.user) == "admin"
    assert flash_of(olga.post("/team/leave")) == "/app"
    assert role_in(olga.organization, olga.user) is None
    assert "You left Olga&#39;s organization." in html(olga.get("/app"))


def test_removing_a_member_takes_them_out_of_every_workspace(olga, vic):
    join(olga, vic, "member", olga.workspace, "editor")
    page = html(olga.get("/team"))
    assert "Remove Vic from Olga&#39;s organization?" in page  # the confirm dialog says what happens
    assert flash_of(olga.post(f"/team/members/{vic.user.id}/remove")) == "/team"
    assert role_in(olga.organization, vic.user) is None
    assert db.session.scalar(sa.select(WorkspaceMember).where(WorkspaceMember.user_id == vic.user.id,
                                                              WorkspaceMember.workspace_id == olga.workspace.id)) \
        is None
    assert olga.post(f"/team/members/{vic.user.id}/remove").status_code == 404  # not a member any more


def test_a_member_sees_the_members_read_only(olga, vic):
    join(olga, vic, "member", olga.workspace)
    page = html(vic.get("/team"))
    assert "Olga" in page and "Vic" in page
    for hidden in ("Invite someone", "Pending invitations", "/role\"", "Make owner", "The organization</h2>",
                   "API keys</a>", "Plan and usage</a>"):
        assert hidden not in page, hidden
    assert "Leave Olga&#39;s organization" in page  # anyone may leave
    refused = vic.post("/team/invite", {"email": "x@example.com", "role": "member"})
    assert refused.status_code == 403
    assert "Only owners and admins of the organization invite people" in html(refused)


def test_the_organization_is_renamed_and_deleted_by_its_owner(olga, vic):
    empty = olga.post("/team/organization", {"name": ""})
    assert empty.status_code == 422 and error_of(html(empty), "name") == "Give a name of 1 to 120 characters."
    assert flash_of(olga.post("/team/organization", {"name": "Olga & Co"})) == "/team"
    assert "Olga &amp; Co" in html(olga.get("/team"))
    join(olga, vic, "admin")
    assert vic.post("/team/organization/delete").status_code == 403  # admins rename, owners delete
    assert flash_of(olga.post("/team/organization/delete")) == "/app"
    assert db.session.get(Organization, olga.organization.id) is None


# -- workspaces ----------------------------------------------------------------------------------------------------

def test_workspaces_are_created_renamed_staffed_and_deleted(olga, vic):
    join(olga, vic, "member", olga.workspace)
    taken = olga.post("/team/workspaces", {"name": "Default"})
    assert taken.status_code == 409 and error_of(html(taken), "name") == \
        "Already used by another workspace of this organization."
    created = olga.post("/team/workspaces", {"name": "Support", "description": "Help desk bots"})
    support = db.session.scalar(sa.select(Workspace).where(Workspace.name == "Support"))
    assert flash_of(created) == f"/team/workspaces/{support.id}"
    page = html(olga.get(f"/team/workspaces/{support.id}"))
    assert "The workspace Support was created; you are its admin." in page and "Help desk bots" in page
    assert '<option value="%s">Vic</option>' % vic.user.id in page  # a member of the organization to add

    added = olga.post(f"/team/workspaces/{support.id}/members", {"user_id": str(vic.user.id), "role": "editor"})
    assert flash_of(added) == f"/team/workspaces/{support.id}"
    assert "Vic was added to Support as editor." in html(olga.get(f"/team/workspaces/{support.id}"))
    twice = olga.post(f"/team/workspaces/{support.id}/members", {"user_id": str(vic.user.id), "role": "editor"})
    assert twice.status_code == 409
    assert olga.post(f"/team/workspaces/{support.id}/members", {"user_id": "", "role": "editor"}).status_code == 422
    assert flash_of(olga.post(f"/team/workspaces/{support.id}/members/{vic.user.id}/role", {"role": "admin"}))
    assert db.session.scalar(sa.select(WorkspaceMember.role).where(
        WorkspaceMember.workspace_id == support.id, WorkspaceMember.user_id == vic.user.id)) == "admin"
    bad_role = olga.post(f"/team/workspaces/{support.id}/members/{vic.user.id}/role", {"role": "boss"})
    assert bad_role.status_code == 422 and "a workspace role is one of admin, editor, viewer" in \
        problem_of(html(bad_role)).lower()

    renamed = olga.post(f"/team/workspaces/{support.id}", {"name": "Customer support", "description": ""})
    assert flash_of(renamed) == f"/team/workspaces/{support.id}"
    assert db.session.get(Workspace, support.id).name == "Customer support"
    clash = olga.post(f"/team/workspaces/{support.id}", {"name": "Default"})
    assert clash.status_code == 409 and "Already used" in error_of(html(clash), "name")

    # Vic (organization member) sees the workspaces he is in, and administers the one where he is admin.
    listed = html(vic.get("/team/workspaces"))
    assert "Customer support" in listed and "Create a workspace" not in listed
    assert flash_of(olga.post(f"/team/workspaces/{support.id}/members/{vic.user.id}/remove"))
    assert vic.get(f"/team/workspaces/{support.id}").status_code == 404  # no longer his to open

    assert flash_of(olga.post(f"/team/workspaces/{support.id}/delete")) == "/team/workspaces"
    last = olga.post(f"/team/workspaces/{olga.workspace.id}/delete")
    assert last.status_code == 409
    assert problem_of(html(last)) == "An organization keeps at least one workspace; delete the organization instead."


def test_the_plan_limits_workspaces_and_says_so(olga):
    for name in ("Two", "Three"):
        assert olga.post("/team/workspaces", {"name": name}).status_code == 303
    refused = olga.post("/team/workspaces", {"name": "Four"})
    assert refused.status_code == 402
    assert "The free plan allows 3 workspaces per organization and this one has 3" in html(refused)
    assert "limit:" not in html(refused)  # the error's figures are not shown as fields


def test_a_viewer_of_a_workspace_sees_it_read_only(olga, vic):
    join(olga, vic, "member", olga.workspace, "viewer")
    page = html(vic.get(f"/team/workspaces/{olga.workspace.id}"))
    assert "Olga" in page and "Vic" in page
    for hidden in ("Add a member", "Name and description", "Delete this workspace", "Change role"):
        assert hidden not in page, hidden
    refused = vic.post(f"/team/workspaces/{olga.workspace.id}", {"name": "Mine"})
    assert refused.status_code == 403 and "Only admins of this workspace rename it." in html(refused)
    assert flash_of(vic.post(f"/team/workspaces/{olga.workspace.id}/members/{vic.user.id}/remove")) == \
        "/team/workspaces"  # anyone may leave a workspace


# -- API keys ------------------------------------------------------------------------------------------------------

def test_an_api_key_is_shown_once_with_a_copy_button_and_revoked_with_a_confirmation(olga):
    assert "No API keys yet" in html(olga.get("/team/api-keys"))
    nothing = olga.post("/team/api-keys", {"name": "CRM"})
    assert nothing.status_code == 422
    fieldset = re.search(r'<fieldset class="field team-checks invalid"\s+aria-describedby="permissions-error">.*?'
                         r'<div class="error" id="permissions-error"><p>(.*?)</p>', html(nothing), re.S)
    assert fieldset.group(1) == "At least one of chat, read, write."
    past = olga.post("/team/api-keys", {"name": "CRM", "permissions": ["read"],
                                        "expires_on": (date.today() - timedelta(days=2)).isoformat()})
    assert past.status_code == 422 and error_of(html(past), "expires_on") == "Must be in the future."

    made = olga.post("/team/api-keys", {"name": "Website", "permissions": ["chat", "read"],
                                        "expires_on": (date.today() + timedelta(days=30)).isoformat()})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    page = html(made)
    secret = re.search(r'id="new-key-secret" type="text" readonly value="(pk_[^"]+)"', page).group(1)
    assert "it will not be shown again" in page and 'data-copy="new-key-secret"' in page
    assert api_key_caller(secret).workspace_id == olga.workspace.id  # a working key
    key = db.session.scalar(sa.select(APIKey).where(APIKey.name == "Website"))
    assert key.expires_at == datetime.combine(date.today() + timedelta(days=30), time.max, timezone.utc)

    listing = html(olga.get("/team/api-keys"))
    assert secret not in listing and secret.split(".")[1] not in listing
    assert f"<code>{key.prefix}</code>" in listing
    assert "Chat with this workspace&#39;s chatbots from your own site or server" in listing
    assert "Revoke the key “Website”?" in listing
    assert flash_of(olga.post(f"/team/api-keys/{key.id}/revoke")) == "/team/api-keys"
    assert "Revoked" in html(olga.get("/team/api-keys"))
    with pytest.raises(Exception, match="revoked"):
        api_key_caller(secret)


@pytest.mark.parametrize("workspace_role", ["editor", "viewer"])
def test_api_keys_are_for_workspace_admins_only(olga, vic, workspace_role):
    join(olga, vic, "member", olga.workspace, workspace_role)
    refused = vic.get("/team/api-keys")
    assert refused.status_code == 403
    assert "Only admins of this workspace see and make its API keys." in html(refused)
    assert vic.post("/team/api-keys", {"name": "x", "permissions": ["read"]}).status_code == 403
    assert "API keys</a>" not in html(vic.get("/team"))  # the tab is not offered


# -- credentials ---------------------------------------------------------------------------------------------------

NOTION_SECRET = "secret_NotionIntegrationToken0123456789"


def test_credentials_are_added_rotated_edited_and_deleted_and_their_secret_never_shown(olga):
    assert "No credentials yet" in html(olga.get("/team/credentials"))
    added = olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "credential_type": "token",
                                            "pairs-0-key": "token", "pairs-0-value": NOTION_SECRET})
    credential = db.session.scalar(sa.select(Credential).where(Credential.name == "Wiki"))
    assert flash_of(added) == f"/team/credentials/{credential.id}"
    assert credentials.decrypt(credential) == {"token": NOTION_SECRET}
    page = html(olga.get(f"/team/credentials/{credential.id}"))
    assert NOTION_SECRET not in page and "<code>token</code> <span class=\"aside\">…6789</span>" in page
    assert "0 documents and 0 chatbots" in page and "<td>Stored</td>" in page

    rotated = olga.post(f"/team/credentials/{credential.id}/rotate",
                        {"secret_json": '{"token": "secret_TheNewOne9876543210abcd"}'})
    assert flash_of(rotated) == f"/team/credentials/{credential.id}"
    assert credentials.decrypt(credential) == {"token": "secret_TheNewOne9876543210abcd"}
    edited = olga.post(f"/team/credentials/{credential.id}", {"name": "Company wiki",
                                                               "expires_on": "2999-01-31"})
    assert flash_of(edited)
    page = html(olga.get(f"/team/credentials/{credential.id}"))
    assert "Company wiki" in page and "…abcd" in page and "<td>Secret replaced</td>" in page
    assert "<td>Changed: expiry, name</td>" in page and "31 Jan 2999" in page

    bot = chatbots.create(olga.workspace, olga.user.id, {"name": "Helper", "config": {"credential_id": credential.id}})
    page = html(olga.get(f"/team/credentials/{credential.id}"))
    assert "0 documents and 1 chatbot" in page and "fail, saying so, until given another credential" in page
    assert flash_of(olga.post(f"/team/credentials/{credential.id}/delete")) == "/team/credentials"
    assert db.session.get(Credential, credential.id) is None
    assert db.session.get(Chatbot, bot.id) is not None


def test_a_refused_credential_form_says_why_and_never_echoes_the_secret(olga):
    olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "pairs-0-key": "token",
                                    "pairs-0-value": NOTION_SECRET})
    taken = olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "credential_type": "token",
                                            "pairs-0-key": "token", "pairs-0-value": "secret_SecondOne000000000"})
    assert taken.status_code == 409
    page = html(taken)
    assert error_of(page, "name") == "Already used by another credential of this workspace."
    assert "secret_SecondOne000000000" not in page and "the values\n      you typed are not shown again" in page

    json_secret = '{"api_key": "sk-VeryPrivateKey-42424242"}'
    both = olga.post("/team/credentials", {"name": "LLM", "provider": "openai", "pairs-0-key": "token",
                                           "pairs-0-value": "x" * 20, "secret_json": json_secret})
    assert both.status_code == 422 and "sk-VeryPrivateKey" not in html(both)
    assert error_of(html(both), "secret_json") == "Use either the rows above or JSON, not both."
    broken = olga.post("/team/credentials", {"name": "LLM", "provider": "openai",
                                             "secret_json": '{"api_key": "sk-VeryPrivateKey-42424242"'})
    assert broken.status_code == 422 and "sk-VeryPrivateKey" not in html(broken)
    assert error_of(html(broken), "secret_json").startswith("This is not JSON: Expecting")
    nameless = olga.post("/team/credentials", {"name": "LLM", "provider": "openai", "pairs-1-value": "abc"})
    assert nameless.status_code == 422 and error_of(html(nameless), "pairs-1-key") == \
        "Give this value a name, e.g. token."
    empty = olga.post("/team/credentials", {"name": "LLM", "provider": "openai"})
    assert empty.status_code == 422 and "Give at least one name and its value" in error_of(html(empty), "pairs-0-key")
    provider = olga.post("/team/credentials", {"name": "LLM", "provider": "Open AI", "secret_json": json_secret})
    assert provider.status_code == 422 and "sk-VeryPrivateKey" not in html(provider)
    assert error_of(html(provider), "provider") == "A provider name in lower case, e.g. notion, google_docs, openai."


def test_a_viewer_sees_credentials_but_changes_nothing(olga, vic):
    olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "pairs-0-key": "token",
                                    "pairs-0-value": NOTION_SECRET})
    credential = db.session.scalar(sa.select(Credential).where(Credential.name == "Wiki"))
    join(olga, vic, "member", olga.workspace, "viewer")
    listing, page = html(vic.get("/team/credentials")), html(vic.get(f"/team/credentials/{credential.id}"))
    assert "Wiki" in listing and "Add a credential" not in listing
    assert "Rotate the secret" not in page and "Delete this credential" not in page and "Audit log" in page
    for url in (f"/team/credentials/{credential.id}/rotate", f"/team/credentials/{credential.id}/delete",
                f"/team/credentials/{credential.id}", "/team/credentials"):
        refused = vic.post(url, {"name": "x", "secret_json": '{"a": "b"}'})
        assert refused.status_code == 403, url
        assert "Viewers look but change nothing" in html(refused)


def test_the_audit_log_is_paginated_newest_first(olga):
    olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "pairs-0-key": "token",
                                    "pairs-0-value": NOTION_SECRET})
    credential = db.session.scalar(sa.select(Credential).where(Credential.name == "Wiki"))
    start = now()
    for minute in range(25):
        db.session.add(CredentialAuditLog(created_at=start + timedelta(minutes=minute + 1),
                                          workspace_id=credential.workspace_id, credential_id=credential.id,
                                          action="use", detail={"purpose": f"ingest-{minute}"}))
    db.session.commit()
    first = html(olga.get(f"/team/credentials/{credential.id}"))
    assert "Page 1 of 2" in first and "(ingest-24)" in first and "(ingest-5)" in first
    assert "(ingest-4)" not in first and "PrivexBot itself" in first
    second = html(olga.get(f"/team/credentials/{credential.id}?page=2"))
    assert "(ingest-4)" in second and "<td>Stored</td>" in second and "Olga" in second
    assert f'hx-get="/team/credentials/{credential.id}?page=2" hx-target="#audit-log"' in first
    swapped = html(olga.get(f"/team/credentials/{credential.id}?page=2",
                            headers={"HX-Request": "true", "HX-Target": "audit-log"}))
    assert swapped.strip().startswith('<section class="card" id="audit-log"') and "<html" not in swapped
    assert "(ingest-4)" in swapped and 'id="audit-log-prev"' in swapped


# -- plan and usage ------------------------------------------------------------------------------------------------

def spend(who: Someone, bot: Chatbot | None, prompt: int, completion: int, days_ago: int) -> None:
    db.session.add(TokenUsage(workspace_id=who.workspace.id, organization_id=who.organization.id,
                              chatbot_id=bot.id if bot else None, provider="openai", prompt_tokens=prompt,
                              completion_tokens=completion, created_at=now() - timedelta(days=days_ago)))
    db.session.commit()


def test_the_plan_page_shows_limits_usage_and_tokens_per_bot_and_per_day(olga, vic):
    bot = chatbots.create(olga.workspace, olga.user.id, {"name": "Helper"})
    spend(olga, bot, 1000, 200, 0)
    spend(olga, bot, 3000, 500, 2)
    spend(olga, None, 40, 2, 1)
    spend(olga, bot, 9999, 9999, 45)  # older than 30 days: not counted
    olga.post("/team/invite", {"email": "pending@example.com", "role": "member"})
    page = html(olga.get("/team/plan"))
    assert "on the <strong>free</strong>" in page
    assert re.search(r"Members \(with pending invitations\)</span>\s*<span class=\"team-limit-figure\">2 of 5", page)
    assert re.search(r"Chatbots</span>\s*<span class=\"team-limit-figure\">1 of 5", page)
    assert "4,742 tokens in 3 answers" in page
    assert re.search(r"Helper</span>\s*<span>4,700 tokens", page) and "Draft previews and deleted chatbots" in page
    assert 'role="img" aria-labelledby="chart-title chart-desc"' in page
    assert "4,742 tokens in all; the busiest day was" in page and page.count("<rect ") == 3
    assert re.search(r'<td class="team-number">3,000</td><td class="team-number">500</td>'
                     r'<td class="team-number">3,500</td>', page)  # the table beside the chart
    assert flash_of(olga.post("/team/plan", {"billing_email": "Billing@Example.com"})) == "/team/plan"
    assert db.session.get(Organization, olga.organization.id).billing_email == "billing@example.com"
    bad = olga.post("/team/plan", {"billing_email": "nope"})
    assert bad.status_code == 422 and error_of(html(bad), "billing_email") == "Not an email address."

    join(olga, vic, "admin")
    assert "Billing email: billing@example.com. An owner changes it." in html(vic.get("/team/plan"))
    assert vic.post("/team/plan", {"billing_email": "vic@example.com"}).status_code == 403


def test_members_do_not_see_the_plan(olga, vic):
    join(olga, vic, "member", olga.workspace, "admin")
    refused = vic.get("/team/plan")
    assert refused.status_code == 403
    assert "Only owners and admins of the organization see its plan and usage." in html(refused)


def test_tokens_per_day_fill_every_day_of_the_window(olga):
    spend(olga, None, 10, 5, 0)
    spend(olga, None, 1, 1, 0)
    spend(olga, None, 7, 0, 6)
    spend(olga, None, 100, 100, 7)  # the eighth day back: outside a 7-day window
    days = analytics.organization_tokens_per_day(olga.organization, 7)
    today = datetime.now(timezone.utc).date()
    assert [day["day"] for day in days] == [today - timedelta(days=n) for n in range(6, -1, -1)]
    assert days[-1] == {"day": today, "prompt_tokens": 11, "completion_tokens": 6}
    assert days[0] == {"day": today - timedelta(days=6), "prompt_tokens": 7, "completion_tokens": 0}
    assert sum(day["prompt_tokens"] for day in days[1:-1]) == 0


# -- isolation and secrets -----------------------------------------------------------------------------------------

@pytest.fixture()
def tenant(olga, vic, app):
    """Olga's organization with one of everything a /team URL can name, Vic a viewer in it, and Sam outside."""
    join(olga, vic, "member", olga.workspace, "viewer")
    olga.post("/team/invite", {"email": "pending@example.com", "role": "member"})
    olga.post("/team/api-keys", {"name": "ci", "permissions": ["read"]})
    olga.post("/team/credentials", {"name": "Wiki", "provider": "notion", "pairs-0-key": "token",
                                    "pairs-0-value": NOTION_SECRET})
    pending = db.session.scalar(sa.select(Invitation.id).where(Invitation.email == "pending@example.com"))
    ids = {"user_id": olga.user.id, "ws_id": olga.workspace.id, "invitation_id": pending,
           "key_id": db.session.scalar(sa.select(APIKey.id).where(APIKey.workspace_id == olga.workspace.id)),
           "cred_id": db.session.scalar(sa.select(Credential.id).where(Credential.workspace_id == olga.workspace.id))}
    return olga, vic, Someone(app, "sam@example.com", "Sam"), ids


def team_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/team"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def test_every_team_route_hides_another_tenants_ids_and_refuses_a_viewers_writes(tenant, app):
    olga, vic, sam, ids = tenant
    walked = 0
    for rule, method in team_routes(app):
        unknown = set(rule.arguments) - set(ids)
        assert not unknown, f"{rule.rule}: add {unknown} to the tenant fixture"
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<uuid:{name}>", str(ids[name]))
        if rule.arguments:
            answer = sam.client.open(url, method=method, data={"name": "x", "role": "admin"})
            assert answer.status_code == 404, (method, url, answer.status_code)
            assert "Page not found" in html(answer)
        if method == "POST" and url != "/team/leave":  # anyone may leave
            answer = vic.post(url, {"name": "x", "role": "admin", "email": "a@example.com"})
            assert answer.status_code == 403, (url, answer.status_code)
            assert "You may not do that here" in html(answer)
        walked += 1
    assert walked >= 25
    assert db.session.get(APIKey, ids["key_id"]).revoked_at is None  # nothing was done
    assert db.session.get(Credential, ids["cred_id"]) is not None
    assert role_in(olga.organization, olga.user) == "owner"


def test_a_viewer_reads_what_the_permission_table_lets_them(tenant):
    _, vic, _, ids = tenant
    for url, status in (("/team", 200), ("/team/workspaces", 200), (f"/team/workspaces/{ids['ws_id']}", 200),
                        ("/team/credentials", 200), (f"/team/credentials/{ids['cred_id']}", 200),
                        ("/team/api-keys", 403), ("/team/plan", 403)):
        assert vic.get(url).status_code == status, url


def test_no_page_ever_shows_a_secret(tenant, app):
    olga, vic, sam, ids = tenant
    made = html(olga.post("/team/api-keys", {"name": "web", "permissions": ["chat"]}))
    key = re.search(r'value="(pk_[^"]+)"', made).group(1)
    token = re.search(r'/invitations/(inv_[^"]+)"', html(olga.post("/team/invite", {
        "email": "later@example.com", "role": "member"}))).group(1)
    for who in (olga, vic):
        for rule, method in team_routes(app):
            if method != "GET":
                continue
            url = rule.rule
            for name in rule.arguments:
                url = url.replace(f"<uuid:{name}>", str(ids[name]))
            page = html(who.get(url))
            for secret in (NOTION_SECRET, key, key.split(".")[1], token):
                assert secret not in page, (url, secret[:6])
