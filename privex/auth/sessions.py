"""Browser sessions (Flask-Login) for the HTML pages and the back office."""

from __future__ import annotations

import uuid

from privex.extensions import db, login_manager
from privex.models import User


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    return user if user is not None and user.is_active else None
