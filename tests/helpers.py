"""Small helpers for API tests: sign people up through the API and call it as them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

PASSWORD = "Sup3r-secret!"
_counter = itertools.count()


@dataclass
class Person:
    """Someone signed up through the API, with their tokens and default context."""

    client: object
    email: str
    user_id: str
    organization_id: str
    workspace_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, url, **kwargs):
        return self.client.get(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, url, **kwargs):
        return self.client.post(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def patch(self, url, **kwargs):
        return self.client.patch(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, url, **kwargs):
        return self.client.delete(url, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def use(self, tokens: dict) -> "Person":
        """Adopt the tokens of a response (refresh, switch-context)."""
        self.access_token = tokens["access_token"]
        if tokens.get("refresh_token"):
            self.refresh_token = tokens["refresh_token"]
        self.organization_id = str(tokens["context"]["organization_id"])
        self.workspace_id = str(tokens["context"]["workspace_id"])
        return self


def sign_up(client, name: str | None = None, password: str = PASSWORD) -> Person:
    """A new user (with a personal organization and default workspace) signed in through the API."""
    name = name or f"user{next(_counter)}"
    email = f"{name}@example.com"
    response = client.post("/api/v1/auth/email/signup", json={"email": email, "password": password,
                                                               "display_name": name.title()})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Person(client=client, email=email, user_id=body["user"]["id"],
                  organization_id=body["context"]["organization_id"], workspace_id=body["context"]["workspace_id"],
                  access_token=body["access_token"], refresh_token=body["refresh_token"])


def log_in(client, email: str, password: str = PASSWORD) -> Person:
    response = client.post("/api/v1/auth/email/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return Person(client=client, email=email, user_id=body["user"]["id"],
                  organization_id=body["context"]["organization_id"], workspace_id=body["context"]["workspace_id"],
                  access_token=body["access_token"], refresh_token=body["refresh_token"])


def add_member(owner: Person, member: Person, org_role: str = "member", workspace_role: str | None = "viewer",
               workspace_id: str | None = None):
    """Put ``member`` into ``owner``'s organization (and workspace) and switch ``member`` to that context."""
    workspace_id = workspace_id or owner.workspace_id
    payload = {"email": member.email, "role": org_role}
    if workspace_role:
        payload.update(workspace_id=workspace_id, workspace_role=workspace_role)
    response = owner.post(f"/api/v1/orgs/{owner.organization_id}/members", json=payload)
    assert response.status_code == 201, response.get_json()
    switched = member.post("/api/v1/auth/switch-context",
                           json={"organization_id": owner.organization_id,
                                 **({"workspace_id": workspace_id} if workspace_role else {})})
    assert switched.status_code == 200, switched.get_json()
    member.use(switched.get_json())
    return member
