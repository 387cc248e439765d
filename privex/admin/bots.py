"""Chatbots in the back office, written through ``privex.services.chatbots`` so a bot that cannot answer is never
saved; chatflows, which have no service yet, are shown read-only."""

from __future__ import annotations

from flask_login import current_user
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from privex.admin.forms import AdminForm, JSONObjectField, knowledge_base_picker, workspace_picker
from privex.admin.views import ReadOnlyView, ServiceView, empty_to_none
from privex.extensions import db
from privex.models import Workspace
from privex.models.bots import BOT_STATUSES
from privex.services import chatbots

CONFIG_HELP = ("The bot's settings as JSON (system_prompt, provider, model_params, retrieval, lead_capture, "
               "appearance, allowed_origins, ...); sections you leave out keep their values.")


class ChatbotEditForm(AdminForm):
    name = StringField("Name")
    description = TextAreaField("Description")
    status = SelectField("Status", choices=[SelectChoice(status) for status in BOT_STATUSES])
    config = JSONObjectField("Config", description=CONFIG_HELP)
    knowledge_bases = knowledge_base_picker(description="Only knowledge bases of the bot's workspace.")


class ChatbotCreateForm(ChatbotEditForm):
    workspace = workspace_picker(validators=[InputRequired()])
    status = SelectField("Status", choices=[SelectChoice(status) for status in BOT_STATUSES], default="active")


class ChatbotView(ServiceView):
    column_list = ("name", "workspace_id", "status", "public_id", "description", "deployed_at", "created_at")
    column_searchable_list = ("name", "public_id")
    column_filters = ("status", "name")
    column_default_sort = ("created_at", True)
    form_create_rules = ("workspace", "name", "description", "status", "config", "knowledge_bases")
    error_fields = {"knowledge_base_ids": "knowledge_bases"}

    def get_create_form(self):
        return ChatbotCreateForm

    def get_edit_form(self):
        return ChatbotEditForm

    def details(self, form) -> dict:
        return {"name": form.name.data, "description": empty_to_none(form.description.data),
                "status": form.status.data, "config": form.config.data or {},
                "knowledge_base_ids": [kb.id for kb in form.knowledge_bases.data or []]}

    def create(self, form):
        return chatbots.create(form.workspace.data, current_user.id, self.details(form))

    def update(self, form, row) -> None:
        chatbots.update(db.session.get(Workspace, row.workspace_id), row, self.details(form))

    def delete(self, row) -> None:
        chatbots.delete(row)

    def describe_error(self, key, lines):
        if key == "knowledge_base_ids":
            return ["only knowledge bases of the chatbot's own workspace can be attached"]
        return lines


class ChatflowView(ReadOnlyView):
    column_list = ("name", "workspace_id", "status", "version", "public_id", "created_at")
    column_searchable_list = ("name", "public_id")
    column_filters = ("status", "name")


class ChatflowVersionView(ReadOnlyView):
    """Published graphs: read-only here as everywhere (a version never changes; the builder publishes and rolls
    back)."""
    column_list = ("chatflow", "number", "note", "workspace_id", "created_at")
    column_filters = ("number",)
