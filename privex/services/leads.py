"""Leads: the contact details a bot's lead form asks for — when a conversation must stop until they are left, and
checking and storing them — the same for the widget, the public API and every messaging channel.
"""

from __future__ import annotations

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from privex.extensions import db
from privex.models import ChatMessage, ChatSession, Chatbot, Chatflow, Lead
from privex.services.errors import DetailsRequired, Invalid

STANDARD_FIELDS = ("email", "name", "phone")
LIMITS = {"email": 255, "name": 255, "phone": 64}
CUSTOM_VALUE_CHARACTERS = 2000


def check_gate(config: dict, session: ChatSession) -> None:
    """DetailsRequired when the bot asks for a lead before this message (at once, or after ``after_messages``
    questions) and the conversation has not left one yet."""
    capture = config.get("lead_capture") or {}
    if not capture.get("enabled"):
        return
    if db.session.scalar(sa.select(Lead.id).where(Lead.session_id == session.id).limit(1)):
        return
    if capture.get("when") != "before":
        asked = db.session.scalar(sa.select(sa.func.count()).select_from(ChatMessage).where(
            ChatMessage.session_id == session.id, ChatMessage.role == "user"))
        if asked < int(capture.get("after_messages") or 0):
            return
    raise DetailsRequired("please leave your contact details to continue", errors={"lead": ["required"]})


def submit(chatbot: Chatbot, session: ChatSession, values: dict, *, consent: bool, channel: str) -> Lead:
    """Store the details a visitor left, after checking them against the bot's lead form: required fields present,
    an email that is an email, consent given when the form asks for it. Commits."""
    capture = chatbot.config.get("lead_capture") or {}
    values = {key: value for key, value in values.items() if value not in (None, "")}
    errors = {}
    for field in capture.get("fields") or []:
        value = values.get(field["name"])
        if field.get("required") and not (isinstance(value, str) and value.strip()):
            errors[field["name"]] = ["required"]
    for key, value in values.items():
        limit = LIMITS.get(key, CUSTOM_VALUE_CHARACTERS)
        if isinstance(value, str) and len(value) > limit:
            errors[key] = [f"at most {limit} characters"]
    if isinstance(values.get("email"), str) and "email" not in errors:
        try:
            values["email"] = validate_email(values["email"], check_deliverability=False).normalized
        except EmailNotValidError as error:
            errors["email"] = [str(error)]
    if capture.get("consent_text") and not consent:
        errors["consent"] = ["please agree to be contacted"]
    if errors:
        raise Invalid("some contact details are missing or invalid; see `errors`", errors=errors)
    standard = {key: values.pop(key, None) for key in STANDARD_FIELDS}
    owner = {"chatflow_id" if isinstance(chatbot, Chatflow) else "chatbot_id": chatbot.id}
    lead = Lead(workspace_id=chatbot.workspace_id, session_id=session.id, **owner, **standard,
                custom_fields=values, consent=consent, consent_text=capture.get("consent_text"), channel=channel)
    db.session.add(lead)
    db.session.commit()
    return lead
