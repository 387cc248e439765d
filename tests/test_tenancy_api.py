"""Organizations, members, invitations, billing limits, workspaces and API keys, as a user of the API sees them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.helpers import add_member, sign_up

API = "/api/v1"
PAST = datetime.now(timezone.utc) - timedelta(days=1)


# --- helpers --------------------------------------------------------------------------------------------------


def org(person, org_id=None) -> str:
    return f"{API}/orgs/{org_id or person.organization_id}"


def ws(person, ws_id=None) -> str:
    return f"{API}/workspaces/{ws_id or person.workspace_id}"


def create_org(person, name="Acme") -> dict:
    response = person.post(f"{API}/orgs", json={"name": name})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_workspace(person, name, org_id=None):
    return person.post(f"{org(person, org_id)}/workspaces", json={"name": name})


def invite(person, email, org_id=None, **extra):
    return person.post(f"{org(person, org_id)}/members", json={"email": email, **extra})


def member_ids(person, org_id=None) -> dict:
    response = person.get(f"{org(person, org_id)}/members")
    assert response.status_code == 200, response.get_json()
    return {member["user_id"]: member["role"] for member in response.get_json()}


def workspace_member_ids(person, ws_id=None) -> dict:
    response = person.get(f"{ws(person, ws_id)}/members")
    assert response.status_code == 200, response.get_json()
    return {member["user_id"]: member["role"] for member in response.get_json()}


def my_org_ids(person) -> set:
    response = person.get(f"{API}/orgs", query_string={"page_size": 100})
    assert response.status_code == 200, response.get_json()
    return {item["id"] for item in response.get_json()}


def create_key(person, ws_id=None, **payload):
    return person.post(f"{ws(person, ws_id)}/api-keys", json={"name": "CI", **payload})


def new_key(person, ws_id=None, **payload) -> dict:
    response = create_key(person, ws_id, **payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_error(response, status):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"} and body["code"] == status
    return body


@pytest.fixture()
def owner(client):
    return sign_up(client, "owner")


@pytest.fixture()
def stranger(client):
    return sign_up(client, "stranger")


@pytest.fixture()
def admin(client, owner):
    return add_member(owner, sign_up(client, "admin"), "admin", None)


@pytest.fixture()
def member(client, owner):
    return add_member(owner, sign_up(client, "member"), "member", "viewer")


# --- organizations --------------------------------------------------------------------------------------------


def test_creating_an_organization_makes_you_its_owner_with_a_default_workspace(owner):
    created = create_org(owner, "Acme")
    assert created["name"] == "Acme" and created["role"] == "owner" and created["is_personal"] is False
    assert member_ids(owner, created["id"]) == {owner.user_id: "owner"}
    workspaces = owner.get(f"{org(owner, created['id'])}/workspaces").get_json()
    assert [(w["name"], w["is_default"]) for w in workspaces] == [("Default", True)]


def test_organization_list_shows_only_your_own_and_is_paginated(owner, stranger):
    acme, globex = create_org(owner, "Acme"), create_org(owner, "Globex")
    first = owner.get(f"{API}/orgs", query_string={"page_size": 2})
    assert first.status_code == 200 and len(first.get_json()) == 2
    pagination = json.loads(first.headers["X-Pagination"])
    assert pagination["total"] == 3 and pagination["total_pages"] == 2
    assert my_org_ids(owner) == {owner.organization_id, acme["id"], globex["id"]}
    assert my_org_ids(stranger) == {stranger.organization_id}


def test_lists_show_your_role_like_single_items_do(owner):
    assert [item.get("role") for item in owner.get(f"{API}/orgs").get_json()] == ["owner"]
    assert [item.get("role") for item in owner.get(f"{org(owner)}/workspaces").get_json()] == ["admin"]


def test_get_organization_shows_your_role(owner, member):
    assert owner.get(org(owner)).get_json()["role"] == "owner"
    assert member.get(org(owner)).get_json()["role"] == "member"


def test_admin_can_rename_the_organization(owner, admin):
    response = admin.patch(org(owner), json={"name": "Renamed"})
    assert response.status_code == 200 and response.get_json()["name"] == "Renamed"


def test_member_cannot_rename_the_organization(owner, member):
    assert_error(member.patch(org(owner), json={"name": "Mine now"}), 403)


def test_admin_cannot_delete_the_organization(owner, admin):
    assert_error(admin.delete(org(owner)), 403)
    assert owner.get(org(owner)).status_code == 200


def test_deleting_an_organization_takes_its_workspaces_and_memberships_with_it(owner, member):
    second = create_workspace(owner, "Second").get_json()
    assert owner.delete(org(owner)).status_code == 204
    assert_error(owner.get(ws(owner)), 404)
    assert_error(owner.get(ws(owner, second["id"])), 404)
    assert_error(owner.get(org(owner)), 404)
    assert owner.organization_id not in my_org_ids(member)
    assert owner.organization_id not in my_org_ids(owner)


@pytest.mark.parametrize("method, suffix, body", [
    ("get", "", None), ("patch", "", {"name": "Hijacked"}), ("delete", "", None),
    ("get", "/members", None), ("post", "/members", {"email": "x@example.com"}),
    ("get", "/billing", None), ("patch", "/billing", {"billing_email": "x@example.com"}),
    ("get", "/workspaces", None), ("get", "/invitations", None),
])
def test_another_users_organization_answers_404(owner, stranger, method, suffix, body):
    kwargs = {"json": body} if body is not None else {}
    assert_error(getattr(stranger, method)(org(owner) + suffix, **kwargs), 404)


# --- members --------------------------------------------------------------------------------------------------


def test_inviting_an_existing_user_adds_them_at_once(client, owner):
    bob = sign_up(client, "bob")
    response = invite(owner, "BOB@example.com", role="admin")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "added" and body["invitation"] is None
    assert body["member"]["user_id"] == bob.user_id and body["member"]["role"] == "admin"
    assert owner.organization_id in my_org_ids(bob)


def test_inviting_an_unknown_email_creates_a_pending_invitation_shown_once(owner):
    response = invite(owner, "new@example.com", role="member")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "invited" and body["member"] is None
    invitation = body["invitation"]
    assert invitation["email"] == "new@example.com" and invitation["token"].startswith("inv_")
    assert invitation["accept_url"].endswith(f"/invitations/{invitation['token']}")
    listed = owner.get(f"{org(owner)}/invitations").get_json()
    assert [item["id"] for item in listed] == [invitation["id"]]
    assert "token" not in listed[0] and "accept_url" not in listed[0]


def test_a_second_pending_invitation_for_the_same_email_conflicts(owner):
    assert invite(owner, "new@example.com").status_code == 201
    assert_error(invite(owner, "New@Example.com"), 409)


def test_adding_an_existing_member_again_conflicts(owner, member):
    assert_error(invite(owner, member.email), 409)


def test_admin_cannot_invite_an_owner(owner, admin):
    assert_error(invite(admin, "new@example.com", org_id=owner.organization_id, role="owner"), 403)


def test_invitation_into_another_organizations_workspace_is_refused(owner, stranger):
    body = assert_error(invite(owner, "new@example.com", workspace_id=stranger.workspace_id), 422)
    assert "workspace_id" in body["errors"]


def test_admin_can_promote_a_member_to_admin(owner, admin, member):
    response = admin.patch(f"{org(owner)}/members/{member.user_id}", json={"role": "admin"})
    assert response.status_code == 200 and response.get_json()["role"] == "admin"


def test_only_an_owner_grants_owner(owner, admin, member):
    assert_error(admin.patch(f"{org(owner)}/members/{member.user_id}", json={"role": "owner"}), 403)
    response = owner.patch(f"{org(owner)}/members/{member.user_id}", json={"role": "owner"})
    assert response.status_code == 200 and response.get_json()["role"] == "owner"


def test_only_an_owner_revokes_owner(owner, admin):
    assert_error(admin.patch(f"{org(owner)}/members/{owner.user_id}", json={"role": "member"}), 403)
    assert member_ids(owner)[owner.user_id] == "owner"


def test_the_last_owner_cannot_be_demoted(owner):
    assert_error(owner.patch(f"{org(owner)}/members/{owner.user_id}", json={"role": "admin"}), 409)


def test_one_of_two_owners_can_step_down(owner, member):
    owner.patch(f"{org(owner)}/members/{member.user_id}", json={"role": "owner"})
    response = owner.patch(f"{org(owner)}/members/{owner.user_id}", json={"role": "admin"})
    assert response.status_code == 200 and response.get_json()["role"] == "admin"


def test_the_last_owner_cannot_leave(owner, member):
    assert_error(owner.delete(f"{org(owner)}/members/{owner.user_id}"), 409)
    assert owner.organization_id in my_org_ids(owner)


def test_an_admin_cannot_remove_an_owner(owner, admin):
    assert_error(admin.delete(f"{org(owner)}/members/{owner.user_id}"), 403)


def test_an_owner_can_be_removed_by_another_owner_but_not_the_last(owner, member):
    owner.patch(f"{org(owner)}/members/{member.user_id}", json={"role": "owner"})
    assert member.delete(f"{org(owner)}/members/{owner.user_id}").status_code == 204
    assert_error(member.delete(f"{org(owner)}/members/{member.user_id}"), 409)


def test_a_member_can_leave_and_then_the_organization_is_gone_for_them(owner, member):
    assert member.delete(f"{org(owner)}/members/{member.user_id}").status_code == 204
    assert_error(member.get(org(owner)), 404)
    assert owner.organization_id not in my_org_ids(member)
    assert member.user_id not in member_ids(owner)


def test_an_admin_removes_a_member(owner, admin, member):
    assert admin.delete(f"{org(owner)}/members/{member.user_id}").status_code == 204
    assert member.user_id not in member_ids(owner)


def test_a_member_cannot_remove_someone_else(client, owner, member):
    other = add_member(owner, sign_up(client, "other"), "member", None)
    assert_error(member.delete(f"{org(owner)}/members/{other.user_id}"), 403)
    assert other.user_id in member_ids(owner)


def test_removing_a_member_also_removes_their_workspace_memberships(owner, member):
    assert member.user_id in workspace_member_ids(owner)
    assert owner.delete(f"{org(owner)}/members/{member.user_id}").status_code == 204
    assert member.user_id not in workspace_member_ids(owner)
    assert invite(owner, member.email).get_json()["status"] == "added"  # back in the organization only
    assert_error(member.get(ws(owner)), 404)


def test_changing_the_role_of_a_non_member_is_404(owner, stranger):
    assert_error(owner.patch(f"{org(owner)}/members/{stranger.user_id}", json={"role": "admin"}), 404)


# --- invitations ----------------------------------------------------------------------------------------------


def invitation_for(owner, email="new@example.com", **extra) -> dict:
    response = invite(owner, email, **extra)
    assert response.status_code == 201 and response.get_json()["status"] == "invited", response.get_json()
    return response.get_json()["invitation"]


def accept(person, token):
    return person.post(f"{API}/invitations/{token}/accept")


def test_accepting_an_invitation_joins_the_organization_and_workspace(client, owner):
    second = create_workspace(owner, "Support").get_json()
    invitation = invitation_for(owner, role="admin", workspace_id=second["id"], workspace_role="editor")
    new = sign_up(client, "new")
    response = accept(new, invitation["token"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == owner.organization_id and response.get_json()["role"] == "admin"
    assert member_ids(owner)[new.user_id] == "admin"
    assert workspace_member_ids(owner, second["id"])[new.user_id] == "editor"
    assert owner.get(f"{org(owner)}/invitations").get_json() == []


def test_accepting_an_invitation_twice_conflicts(client, owner):
    invitation = invitation_for(owner)
    new = sign_up(client, "new")
    assert accept(new, invitation["token"]).status_code == 200
    assert_error(accept(new, invitation["token"]), 409)


def test_someone_else_cannot_accept_your_invitation(owner, stranger):
    invitation = invitation_for(owner)
    assert_error(accept(stranger, invitation["token"]), 403)
    assert stranger.user_id not in member_ids(owner)


def test_an_unknown_invitation_token_is_404(stranger):
    assert_error(accept(stranger, "inv_made-up"), 404)


def test_a_revoked_invitation_cannot_be_accepted(client, owner):
    invitation = invitation_for(owner)
    assert owner.delete(f"{org(owner)}/invitations/{invitation['id']}").status_code == 204
    assert owner.get(f"{org(owner)}/invitations").get_json() == []
    assert_error(accept(sign_up(client, "new"), invitation["token"]), 404)


def test_an_expired_invitation_is_gone(client, owner, database):
    from privex.models import Invitation

    invitation = invitation_for(owner)
    database.session.execute(sa.update(Invitation).where(Invitation.id == uuid.UUID(invitation["id"]))
                             .values(expires_at=PAST))
    assert_error(accept(sign_up(client, "new"), invitation["token"]), 410)


def test_an_expired_invitation_is_no_longer_listed_as_pending(owner, database):
    from privex.models import Invitation

    invitation = invitation_for(owner)
    database.session.execute(sa.update(Invitation).where(Invitation.id == uuid.UUID(invitation["id"]))
                             .values(expires_at=PAST))
    assert invite(owner, "new@example.com").status_code == 201  # a fresh one may be sent
    listed = owner.get(f"{org(owner)}/invitations").get_json()
    assert invitation["id"] not in [item["id"] for item in listed]


# --- billing and plan limits ----------------------------------------------------------------------------------


def test_billing_shows_the_free_plan_its_limits_and_usage(owner, member):
    invitation_for(owner)
    response = owner.get(f"{org(owner)}/billing")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["subscription_tier"] == "free" and body["billing_email"] == owner.email
    assert body["limits"] == {"members": 5, "workspaces": 3, "chatbots": 5, "chatflows": 5, "messages_per_minute": 600}
    assert body["usage"] == {"members": 2, "pending_invitations": 1, "workspaces": 1, "chatbots": 0, "chatflows": 0}


def test_admin_reads_billing_but_a_member_cannot(owner, admin, member):
    assert admin.get(f"{org(owner)}/billing").status_code == 200
    assert_error(member.get(f"{org(owner)}/billing"), 403)


def test_owner_changes_the_billing_email(owner):
    response = owner.patch(f"{org(owner)}/billing", json={"billing_email": "billing@acme.example"})
    assert response.status_code == 200 and response.get_json()["billing_email"] == "billing@acme.example"


def test_admin_cannot_change_billing(owner, admin):
    assert_error(admin.patch(f"{org(owner)}/billing", json={"billing_email": "me@example.com"}), 403)


def test_changing_the_plan_needs_a_platform_operator(owner):
    assert_error(owner.patch(f"{org(owner)}/billing", json={"subscription_tier": "pro"}), 403)
    assert owner.get(f"{org(owner)}/billing").get_json()["subscription_tier"] == "free"


def test_a_superuser_can_change_the_plan(owner, database):
    from privex.models import User

    database.session.execute(sa.update(User).where(User.id == uuid.UUID(owner.user_id)).values(is_superuser=True))
    response = owner.patch(f"{org(owner)}/billing", json={"subscription_tier": "pro"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["subscription_tier"] == "pro" and response.get_json()["limits"]["workspaces"] == 20


def test_the_free_plan_allows_three_workspaces(owner):
    assert create_workspace(owner, "Two").status_code == 201
    assert create_workspace(owner, "Three").status_code == 201
    body = assert_error(create_workspace(owner, "Four"), 402)
    assert "free plan" in body["message"] and "3 workspaces" in body["message"]
    assert body["errors"] == {"limit": 3, "used": 3, "plan": "free"}


def test_the_free_plan_member_limit_counts_pending_invitations(owner):
    for number in range(4):  # the owner plus four pending invitations make five
        assert invitation_for(owner, f"guest{number}@example.com")
    body = assert_error(invite(owner, "one-too-many@example.com"), 402)
    assert "free plan" in body["message"] and "5 members" in body["message"]


def test_adding_an_invited_person_directly_does_not_count_them_twice(client, owner):
    for number in range(4):  # the owner plus four pending invitations fill the five seats
        invitation_for(owner, f"guest{number}@example.com")
    sign_up(client, "guest0")
    response = invite(owner, "guest0@example.com")  # already holds a seat through the invitation
    assert response.status_code == 201, response.get_json()


# --- ownership transfer ---------------------------------------------------------------------------------------


def test_transferring_the_organization_makes_the_member_owner_and_you_admin(owner, member):
    response = owner.post(f"{org(owner)}/transfer", json={"user_id": member.user_id})
    assert response.status_code == 200, response.get_json()
    assert member_ids(owner) == {owner.user_id: "admin", member.user_id: "owner"}


def test_the_organization_cannot_go_to_a_non_member(owner, stranger):
    body = assert_error(owner.post(f"{org(owner)}/transfer", json={"user_id": stranger.user_id}), 422)
    assert "user_id" in body["errors"]


def test_an_admin_cannot_transfer_the_organization(owner, admin):
    assert_error(admin.post(f"{org(owner)}/transfer", json={"user_id": admin.user_id}), 403)


# --- workspaces -----------------------------------------------------------------------------------------------


def test_org_admin_creates_a_workspace_but_a_member_cannot(owner, admin, member):
    response = create_workspace(admin, "Support", owner.organization_id)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["role"] == "admin" and response.get_json()["is_default"] is False
    assert_error(create_workspace(member, "Mine", owner.organization_id), 403)


def test_workspace_names_are_unique_per_organization(owner, stranger):
    assert create_workspace(owner, "Support").status_code == 201
    assert_error(create_workspace(owner, "Support"), 409)
    assert create_workspace(stranger, "Support").status_code == 201


def test_a_member_lists_only_the_workspaces_they_belong_to(client, owner, member):
    create_workspace(owner, "Secret")
    outsider = add_member(owner, sign_up(client, "outsider"), "member", None)
    assert [w["id"] for w in member.get(f"{org(owner)}/workspaces").get_json()] == [owner.workspace_id]
    assert outsider.get(f"{org(owner)}/workspaces").get_json() == []


def test_org_admins_list_every_workspace(owner, admin):
    create_workspace(owner, "Secret")
    names = [w["name"] for w in admin.get(f"{org(owner)}/workspaces").get_json()]
    assert names == ["Default", "Secret"]


def test_get_rename_and_delete_a_workspace(owner):
    created = create_workspace(owner, "Support").get_json()
    assert owner.get(ws(owner, created["id"])).get_json()["name"] == "Support"
    response = owner.patch(ws(owner, created["id"]), json={"name": "Help desk", "description": "Tickets"})
    assert response.status_code == 200 and response.get_json()["name"] == "Help desk"
    assert_error(owner.patch(ws(owner, created["id"]), json={"name": "Default"}), 409)
    assert owner.delete(ws(owner, created["id"])).status_code == 204
    assert_error(owner.get(ws(owner, created["id"])), 404)


def test_the_last_workspace_of_an_organization_cannot_be_deleted(owner):
    assert_error(owner.delete(ws(owner)), 409)


def test_a_viewer_reads_the_workspace_but_cannot_change_it(owner, member):
    response = member.get(ws(owner))
    assert response.status_code == 200 and response.get_json()["role"] == "viewer"
    assert_error(member.patch(ws(owner), json={"name": "Mine"}), 403)


def test_an_editor_cannot_change_the_workspace(client, owner):
    editor = add_member(owner, sign_up(client, "editor"), "member", "editor")
    assert_error(editor.patch(ws(owner), json={"description": "edited"}), 403)


def test_a_workspace_admin_who_is_a_plain_org_member_can_change_it(client, owner):
    ws_admin = add_member(owner, sign_up(client, "wsadmin"), "member", "admin")
    assert ws_admin.patch(ws(owner), json={"description": "edited"}).status_code == 200


def test_an_org_member_can_be_added_to_a_workspace(client, owner):
    second = create_workspace(owner, "Support").get_json()
    bob = add_member(owner, sign_up(client, "bob"), "member", None)
    response = owner.post(f"{ws(owner, second['id'])}/members", json={"email": bob.email, "role": "editor"})
    assert response.status_code == 201 and response.get_json()["role"] == "editor"
    assert bob.get(ws(owner, second["id"])).get_json()["role"] == "editor"
    assert_error(owner.post(f"{ws(owner, second['id'])}/members", json={"user_id": bob.user_id}), 409)


def test_adding_someone_outside_the_organization_to_a_workspace_says_to_invite_them(owner, stranger):
    body = assert_error(owner.post(f"{ws(owner)}/members", json={"user_id": stranger.user_id}), 422)
    assert "invite" in body["message"] and "user_id" in body["errors"]


def test_a_workspace_admin_changes_a_members_role(owner, member):
    response = owner.patch(f"{ws(owner)}/members/{member.user_id}", json={"role": "editor"})
    assert response.status_code == 200 and response.get_json()["role"] == "editor"
    assert member.get(ws(owner)).get_json()["role"] == "editor"


def test_a_viewer_cannot_change_workspace_roles(owner, member):
    assert_error(member.patch(f"{ws(owner)}/members/{member.user_id}", json={"role": "admin"}), 403)


def test_the_only_workspace_admin_may_step_down_since_org_admins_still_administer_it(owner):
    # The last-admin rule only bites in an organization without owners or admins, which cannot exist.
    response = owner.patch(f"{ws(owner)}/members/{owner.user_id}", json={"role": "viewer"})
    assert response.status_code == 200 and response.get_json()["role"] == "viewer"
    assert owner.get(ws(owner)).get_json()["role"] == "admin"


def test_removing_someone_from_a_workspace(owner, member):
    assert owner.delete(f"{ws(owner)}/members/{member.user_id}").status_code == 204
    assert member.user_id not in workspace_member_ids(owner)
    assert_error(member.get(ws(owner)), 404)
    assert member.user_id in member_ids(owner)  # still in the organization


def test_a_viewer_can_leave_a_workspace_but_not_remove_others(owner, member):
    assert_error(member.delete(f"{ws(owner)}/members/{owner.user_id}"), 403)
    assert member.delete(f"{ws(owner)}/members/{member.user_id}").status_code == 204


@pytest.mark.parametrize("method, suffix, body", [
    ("get", "", None), ("patch", "", {"name": "Hijacked"}), ("delete", "", None),
    ("get", "/members", None), ("post", "/members", {"email": "stranger@example.com"}),
    ("patch", "/members/{user}", {"role": "viewer"}), ("delete", "/members/{user}", None),
    ("post", "/transfer", {"user_id": "{user}"}), ("get", "/api-keys", None), ("post", "/api-keys", {"name": "x"}),
])
def test_another_organizations_workspace_answers_404(owner, stranger, method, suffix, body):
    url = ws(owner) + suffix.format(user=owner.user_id)
    if body is not None:
        body = {key: value.format(user=stranger.user_id) for key, value in body.items()}
    kwargs = {"json": body} if body is not None else {}
    assert_error(getattr(stranger, method)(url, **kwargs), 404)


# --- workspace transfer ---------------------------------------------------------------------------------------


def test_transferring_a_workspace_to_an_org_member_makes_them_owner_and_admin(owner, member):
    response = owner.post(f"{ws(owner)}/transfer", json={"user_id": member.user_id})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["owner_id"] == member.user_id
    assert workspace_member_ids(owner)[member.user_id] == "admin"
    assert member.get(ws(owner)).get_json()["role"] == "admin"


def test_a_workspace_cannot_go_to_someone_outside_the_organization(owner, stranger):
    body = assert_error(owner.post(f"{ws(owner)}/transfer", json={"user_id": stranger.user_id}), 422)
    assert "user_id" in body["errors"]


# --- API keys -------------------------------------------------------------------------------------------------


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def x_api_key(key):
    return {"X-API-Key": key}


def test_creating_an_api_key_shows_the_secret_once(owner):
    created = new_key(owner, permissions=["read", "write"])
    assert created["prefix"].startswith("pk_") and created["key"].startswith(created["prefix"] + ".")
    assert created["permissions"] == ["read", "write"] and created["revoked_at"] is None


def test_listing_api_keys_shows_prefixes_but_never_secrets(owner):
    created = new_key(owner)
    listed = owner.get(f"{ws(owner)}/api-keys").get_json()
    assert [item["prefix"] for item in listed] == [created["prefix"]]
    assert not {"key", "key_hash"} & set(listed[0])
    assert created["key"] not in json.dumps(listed)


@pytest.mark.parametrize("headers", [bearer, x_api_key])
def test_an_api_key_is_recognised_in_its_workspace_and_blind_elsewhere(client, owner, stranger, headers):
    key = new_key(owner)["key"]
    assert client.get(ws(owner), headers=headers(key)).status_code != 401
    assert_error(client.get(ws(stranger), headers=headers(key)), 404)
    assert_error(client.get(org(stranger), headers=headers(key)), 404)


@pytest.mark.parametrize("headers", [bearer, x_api_key])
def test_an_api_key_reads_its_own_workspace(client, owner, headers):
    response = client.get(ws(owner), headers=headers(new_key(owner)["key"]))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == owner.workspace_id


def test_using_an_api_key_records_when_it_was_last_used(app):
    # Real commits (no rolled-back transaction): the test harness keeps flushed-but-uncommitted writes alive.
    from privex.extensions import db
    from privex.models import Organization, User

    client = app.test_client()
    owner = sign_up(client, f"lastused-{uuid.uuid4().hex[:8]}")
    try:
        key = new_key(owner)["key"]
        client.get(ws(owner), headers=x_api_key(key))
        assert owner.get(f"{ws(owner)}/api-keys").get_json()[0]["last_used_at"] is not None
    finally:
        with app.app_context():
            db.session.execute(sa.delete(Organization).where(Organization.id == uuid.UUID(owner.organization_id)))
            db.session.execute(sa.delete(User).where(User.id == uuid.UUID(owner.user_id)))
            db.session.commit()


def test_an_api_key_cannot_manage_members_or_keys(client, owner):
    key = new_key(owner, permissions=["read", "write"])["key"]
    assert_error(client.post(f"{ws(owner)}/api-keys", json={"name": "more"}, headers=x_api_key(key)), 403)
    assert_error(client.get(f"{ws(owner)}/api-keys", headers=x_api_key(key)), 403)
    assert_error(client.post(f"{ws(owner)}/members", json={"email": owner.email}, headers=bearer(key)), 403)
    assert_error(client.get(f"{org(owner)}/members", headers=bearer(key)), 403)
    assert_error(client.post(f"{org(owner)}/members", json={"email": "x@example.com"}, headers=bearer(key)), 403)


def test_a_revoked_api_key_stops_working(client, owner):
    created = new_key(owner)
    assert owner.delete(f"{ws(owner)}/api-keys/{created['id']}").status_code == 204
    body = assert_error(client.get(ws(owner), headers=x_api_key(created["key"])), 401)
    assert "revoked" in body["message"]
    assert owner.get(f"{ws(owner)}/api-keys").get_json()[0]["revoked_at"] is not None


@pytest.mark.parametrize("key", ["pk_0123456789.made-up", "pk_nothing", "not-a-key"])
def test_a_made_up_api_key_is_401(client, owner, key):
    assert_error(client.get(ws(owner), headers=x_api_key(key)), 401)
    assert_error(client.get(ws(owner), headers=bearer(key)), 401)


def test_a_tampered_api_key_is_401(client, owner):
    key = new_key(owner)["key"]
    assert_error(client.get(ws(owner), headers=x_api_key(key + "x")), 401)


def test_an_api_key_cannot_be_created_already_expired(owner):
    body = assert_error(create_key(owner, expires_at=PAST.isoformat()), 422)
    assert "expires_at" in body["errors"]


def test_an_expired_api_key_is_401(client, owner, database):
    from privex.models import APIKey

    created = new_key(owner, expires_at=(datetime.now(timezone.utc) + timedelta(days=30)).isoformat())
    database.session.execute(sa.update(APIKey).where(APIKey.id == uuid.UUID(created["id"])).values(expires_at=PAST))
    body = assert_error(client.get(ws(owner), headers=x_api_key(created["key"])), 401)
    assert "expired" in body["message"]


def test_viewers_and_editors_cannot_create_api_keys(client, owner, member):
    editor = add_member(owner, sign_up(client, "editor"), "member", "editor")
    assert_error(create_key(member, owner.workspace_id), 403)
    assert_error(create_key(editor, owner.workspace_id), 403)


def test_an_unknown_permission_scope_is_refused(owner):
    body = assert_error(create_key(owner, permissions=["read", "admin"]), 422)
    assert "permissions" in body["errors"]
