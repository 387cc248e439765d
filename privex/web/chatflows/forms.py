"""The chatflow pages' forms: what was typed, parsed; whether it is acceptable is the store's call."""

from __future__ import annotations

from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from privex.web.forms import PageForm


class NewChatflowForm(PageForm):
    name = StringField("Name", filters=[lambda text: text.strip() if isinstance(text, str) else text],
                       validators=[DataRequired("give your chatflow a name"), Length(max=120)],
                       description="What your team calls it, e.g. “Support triage”.")
    description = TextAreaField("Description (optional)", validators=[Optional(), Length(max=2000)])

    def values(self) -> dict:
        return {"name": (self.name.data or "").strip(), "description": (self.description.data or "").strip() or None}


class PublishForm(PageForm):
    note = StringField("What changed (optional)", validators=[Optional(), Length(max=500)],
                       description="Shown in the list of versions, e.g. “asks for the order number first”.")


class RollbackForm(PageForm):
    number = IntegerField("Version", validators=[InputRequired()])
