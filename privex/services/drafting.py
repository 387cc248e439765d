"""Unfinished things kept in Redis, one JSON value each, until ``PRIVEX_DRAFT_HOURS`` after their last change: the
knowledge-base drafts (privex/services/drafts.py) and the chatbot drafts (privex/services/chatbots.py)."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import current_app

from privex.clock import now
from privex.extensions import get_redis


class DraftStore:
    def __init__(self, prefix: str):
        self.prefix = prefix

    def key(self, draft_id) -> str:
        return f"{self.prefix}:{draft_id}"

    @staticmethod
    def lifetime() -> int:
        """Seconds a draft is kept after its last change."""
        return int(current_app.config.get("DRAFT_HOURS", 24)) * 3600

    def save(self, draft: dict) -> dict:
        """Store ``draft`` (it has an ``id``), stamped with ``updated_at`` and ``expires_at``; returns it."""
        moment = now()
        draft["updated_at"] = moment.isoformat()
        draft["expires_at"] = (moment + timedelta(seconds=self.lifetime())).isoformat()
        get_redis().set(self.key(draft["id"]), json.dumps(draft), ex=self.lifetime())
        return draft

    def read(self, draft_id) -> dict | None:
        raw = get_redis().get(self.key(draft_id))
        return json.loads(raw) if raw else None

    def delete(self, draft_id) -> None:
        get_redis().delete(self.key(draft_id))
