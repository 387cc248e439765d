"""Team: the organization's people and workspaces, the current workspace's API keys and credentials, and the plan
with its usage. Every page calls the services (``organizations``, ``workspaces``, ``invitations``, ``api_keys``,
``credentials``, ``plans``, ``analytics``) and asks the one permission table through the shell, so it refuses what
the API refuses, in the same words.

- ``members``: ``/team`` — members and their roles, inviting (an invitation's link is shown once, to copy: nothing
  is emailed), pending invitations, ownership transfer, leaving, renaming and deleting the organization.
- ``workspaces``: ``/team/workspaces`` — the organization's workspaces, and one workspace's details and members.
- ``keys``: ``/team/api-keys`` — the current workspace's API keys (the secret shown once).
- ``credentials``: ``/team/credentials`` — the current workspace's third-party credentials (secrets go in and never
  come out: pages show only their ``hints``) and each one's audit log.
- ``plan``: ``/team/plan`` — the plan's limits with current usage, and tokens per chatbot and per day.
- ``common``: what they share (plain-worded refusals, pagination, answering a refusal on the page itself).
"""

from __future__ import annotations

from flask import Blueprint

from privex.web.shell import NavEntry

bp = Blueprint("team", __name__, url_prefix="/team")
NAV = NavEntry("Team", "web.team.index", order=40)

from privex.web.team import credentials, keys, members, plan, workspaces  # noqa: E402,F401  (their routes)
