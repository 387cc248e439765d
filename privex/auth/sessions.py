"""Browser sessions (Flask-Login) for the HTML pages and the back office.

The cookie holds ``User.get_id()``: the user's id and a stamp of their password hash. A session whose stamp no
longer matches (the password changed since it signed in, here or through the API) loads nobody: it is signed out.
"""

from __future__ import annotations

import hmac
import uuid

from privex.extensions import db, login_manager
from privex.models import User


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, stamp = session_id.partition(".")
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    if user is None or not user.is_active or not hmac.compare_digest(stamp, user.password_stamp):
        return None
    return user
