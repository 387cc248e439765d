"""Team: members and roles, invitations, API keys, credentials, plan and usage.

A placeholder of the shell (the page says the area is coming), so the navigation and the first-run guide link
somewhere real; the team area replaces this module and ``templates/team/``.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from privex.web.shell import NavEntry, organization_for

bp = Blueprint("team", __name__, url_prefix="/team")
NAV = NavEntry("Team", "web.team.index", order=40)


@bp.get("")
def index():
    return render_template("team/index.html", organization=organization_for("org.read"))
