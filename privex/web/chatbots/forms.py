"""The chatbot pages' forms: one small form per builder step, the deploy tab's, the preview's. Each only parses what
was typed into the shape ``services.chatbots.update`` takes (``changes()``); whether it is acceptable is the
service's call (``resolve_config`` checks the whole configuration), and its refusals come back beside these fields
through ``show_errors``: ``config.retrieval.top_k`` lands on ``form.retrieval.top_k``, and so on.

The model step's provider settings are fields made at request time from the chosen provider's ``config_schema``
(``model_form``), so a provider plugin installed tomorrow gets its form without a change here.
"""

from __future__ import annotations

import re

from wtforms import (BooleanField, FloatField, Form, FormField, IntegerField, SelectField, SelectMultipleField,
                     StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from privex.web.forms import PageForm

LEAD_ROWS = 5  # rows of the lead form's editor; a bot asking for more than five details asks for too much
# Provider settings the bot itself holds (the behaviour step's fallback message): not asked twice.
BOT_LEVEL_SETTINGS = {"fallback_message"}
ACRONYMS = {"url", "api", "id", "tls", "ssl"}


def choices(pairs) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms wants its choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def optional_number(field_class, label, description=None, **render):
    """A number field that may be left empty (left empty: the default)."""
    return field_class(label, validators=[Optional()], description=description, render_kw=render or None)


def number_or_none(field) -> float | int | None:
    return field.data if field.raw_data and field.raw_data[0].strip() else None


class NewChatbotForm(PageForm):
    name = StringField("Name", description="What your team and your visitors call it, like “Help centre”.")
    knowledge_base_ids = SelectMultipleField(
        "Knowledge it answers from", choices=[], validate_choice=False, widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(), description="Tick one or more; you can change this later.")

    def changes(self) -> dict:
        return {"name": self.name.data or "", "knowledge_base_ids": self.knowledge_base_ids.data or [],
                "status": "draft"}


# -- the builder's steps -------------------------------------------------------------------------------------------

class InstructionsForm(PageForm):
    name = StringField("Name", description="What your team and your visitors call it.")
    description = TextAreaField("Description (optional)", description="A note for your team: what this bot is for.",
                                render_kw={"rows": 2})
    system_prompt = TextAreaField(
        "Instructions", render_kw={"rows": 7},
        description="How the bot should behave, in plain words: who it speaks for, its tone, what it must not do. "
                    "It always answers from your documents and cites them.")

    def changes(self) -> dict:
        return {"name": self.name.data or "", "description": self.description.data or None,
                "config": {"system_prompt": self.system_prompt.data or ""}}


class KnowledgeForm(PageForm):
    knowledge_base_ids = SelectMultipleField(
        "Knowledge bases", choices=[], validate_choice=False, widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        description="The bot answers only from the knowledge bases ticked here; with none, it answers with its "
                    "fallback message.")

    def changes(self) -> dict:
        return {"knowledge_base_ids": self.knowledge_base_ids.data or []}


class ModelForm(PageForm):
    provider = SelectField("Answer provider", choices=[], validate_choice=False)
    credential_id = SelectField("Credential", choices=[], validate_choice=False,
                                description="The API key the provider needs, kept encrypted under Team › "
                                            "Credentials. The offline provider needs none.")
    max_context_tokens = IntegerField(
        "Context window (tokens)", render_kw={"min": 256, "step": 1},
        description="How much the model reads at once: instructions, passages, history and answer together.")
    max_answer_tokens = IntegerField("Longest answer (tokens)", render_kw={"min": 16, "step": 1},
                                     description="Must be smaller than the context window.")

    def changes(self) -> dict:
        return {"config": {"provider": self.provider.data, "credential_id": self.credential_id.data or None,
                           "max_context_tokens": self.max_context_tokens.data,
                           "max_answer_tokens": self.max_answer_tokens.data,
                           "model_params": self.model_params.values() if hasattr(self, "model_params") else {}}}


class ProviderSettings(Form):
    """The settings of one provider (fields added by ``model_form``)."""

    defaults: dict = {}

    def values(self) -> dict:
        """The settings typed that differ from the provider's defaults (the rest stay the provider's own, so a
        better default in a new version applies)."""
        values = {}
        for name, field in self._fields.items():
            value = field.data if isinstance(field, BooleanField) else number_or_none(field) if isinstance(
                field, (IntegerField, FloatField)) else (field.data or "").strip() or None
            if value is not None and value != self.defaults.get(name):
                values[name] = value
        return values


def model_form(provider, current: dict | None, data: dict, posted: bool = False, **kwargs) -> ModelForm:
    """The model step's form for ``provider`` (a registry item with a ``config_schema``; None when not installed),
    filled with ``data`` and its settings with ``current`` (the bot's saved ``model_params`` when it uses this
    provider) over the provider's defaults; ``posted``: with what was posted and nothing else."""
    properties = (getattr(provider, "config_schema", None) or {}).get("properties", {}) if provider else {}
    attributes, defaults = {}, {}
    for name, schema in properties.items():
        if schema.get("writeOnly") or name in BOT_LEVEL_SETTINGS:  # a secret comes from the credential
            continue
        attributes[name] = setting_field(name, schema)
        defaults[name] = schema.get("default")
    settings = type("ProviderSettings", (ProviderSettings,), {**attributes, "defaults": defaults})
    form_class = type("ProviderModelForm", (ModelForm,), {"model_params": FormField(settings, label="Settings")})
    shown = {name: (current or {}).get(name, default) for name, default in defaults.items()}
    return form_class(data=None if posted else {**data, "model_params": shown}, **kwargs)


def setting_field(name: str, schema: dict):
    """A field for one property of a provider's ``config_schema``."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    label = " ".join(word.upper() if word in ACRONYMS else word for word in name.split("_"))
    label = label[:1].upper() + label[1:]  # base_url -> Base URL
    description = schema.get("description")
    bounds = {key: schema[key] for key in ("minimum", "maximum") if key in schema}
    render = {"min": bounds.get("minimum"), "max": bounds.get("maximum")}
    render = {key: value for key, value in render.items() if value is not None}
    if "boolean" in kinds:
        return BooleanField(label, description=description)
    if "integer" in kinds:
        return optional_number(IntegerField, label, description, step=1, **render)
    if "number" in kinds:
        return optional_number(FloatField, label, description, step="any", **render)
    return StringField(label, description=description)


RETRIEVAL_MODES = choices([("hybrid", "Hybrid: meaning and exact words (recommended)"),
                   ("vector", "Meaning: finds passages that say the same in other words"),
                   ("keyword", "Exact words: finds passages using the question's words")])


class RetrievalForm(Form):
    mode = SelectField("How passages are found", choices=RETRIEVAL_MODES, validate_choice=False)
    top_k = IntegerField("Passages per answer", render_kw={"min": 1, "max": 20, "step": 1},
                         description="How many of the best passages the bot reads before answering (1 to 20).")
    threshold = optional_number(FloatField, "Least relevance (optional)",
                                "From 0 to 1: passages less relevant than this are ignored. Empty: keep the best "
                                "ones whatever their score.", min=0, max=1, step="0.05")


class BehaviourForm(PageForm):
    retrieval = FormField(RetrievalForm, label="Finding passages")
    fallback_message = TextAreaField("When nothing relevant is found, say", render_kw={"rows": 2})
    history_window = IntegerField("Earlier messages remembered", render_kw={"min": 0, "max": 100, "step": 1},
                                  description="How many earlier messages of the conversation go with each question "
                                              "(0: each question on its own).")
    citations = BooleanField("Show the sources of each answer")
    rate_limit_per_minute = IntegerField("Most messages a minute", render_kw={"min": 1, "step": 1},
                                         description="Across all visitors of this bot; more are asked to wait.")

    def changes(self) -> dict:
        retrieval = self.retrieval.form
        return {"config": {"retrieval": {"mode": retrieval.mode.data, "top_k": retrieval.top_k.data,
                                         "threshold": number_or_none(retrieval.threshold)},
                           "fallback_message": self.fallback_message.data or "",
                           "history_window": self.history_window.data, "citations": bool(self.citations.data),
                           "rate_limit_per_minute": self.rate_limit_per_minute.data}}


class LeadFieldForm(Form):
    """One detail the lead form asks for (what each field means is said once, above the rows)."""

    label = StringField("Label")
    type = SelectField("Kind", choices=choices([("text", "Text"), ("email", "Email"),
                                                 ("tel", "Phone")]), validate_choice=False)
    name = StringField("Stored as")
    required = BooleanField("Required")


class LeadCaptureForm(Form):
    enabled = BooleanField("Ask visitors for their contact details")
    when = SelectField("When", choices=choices([("after", "After a few questions"), ("before", "Before the first question")]),
                       validate_choice=False)
    after_messages = IntegerField("After how many questions", render_kw={"min": 0, "max": 100, "step": 1},
                                  description="Used when asking after a few questions.")
    consent_text = TextAreaField("Consent the visitor must tick (optional)", render_kw={"rows": 2},
                                 description="Like “I agree to be contacted about my question.”")


for _row in range(LEAD_ROWS):
    setattr(LeadCaptureForm, f"field_{_row}", FormField(LeadFieldForm, label=f"Detail {_row + 1}"))


def key_of(label: str) -> str:
    """The stored name a label suggests: ``Work email`` -> ``work_email`` (a letter first, at most 40)."""
    key = re.sub(r"[^a-z0-9]+", "_", (label or "").lower()).strip("_")
    key = key if key[:1].isalpha() else f"field_{key}" if key else ""
    return key[:40]


class LeadsForm(PageForm):
    lead_capture = FormField(LeadCaptureForm, label="Lead capture")

    def changes(self) -> dict:
        capture = self.lead_capture.form
        rows, self.row_of = [], {}  # the service's list index -> this form's row, for its errors
        for row in range(LEAD_ROWS):
            sub = getattr(capture, f"field_{row}").form
            label, name = (sub.label.data or "").strip(), (sub.name.data or "").strip()
            if not label and not name:
                continue
            self.row_of[len(rows)] = row
            rows.append({"name": name or key_of(label), "label": label or None, "type": sub.type.data,
                         "required": bool(sub.required.data)})
        return {"config": {"lead_capture": {
            "enabled": bool(capture.enabled.data), "when": capture.when.data, "after_messages":
            capture.after_messages.data, "fields": rows, "consent_text": (capture.consent_text.data or "").strip()
            or None}}}

    def error_fields(self) -> dict:
        """Where the service's ``lead_capture.fields.<n>.<key>`` errors go: row n of the rows sent."""
        mapped = {f"lead_capture.fields.{index}": f"lead_capture.field_{row}.label"
                  for index, row in getattr(self, "row_of", {}).items()}
        for index, row in getattr(self, "row_of", {}).items():
            for key in ("name", "label", "type", "required"):
                mapped[f"lead_capture.fields.{index}.{key}"] = f"lead_capture.field_{row}.{key}"
        return mapped


class AppearanceSettings(Form):
    title = StringField("Title (optional)", description="Shown at the top of the chat. Empty: the bot's name.")
    color = StringField("Colour", render_kw={"type": "color"},
                        description="Of the chat bubble and the visitor's messages.")
    position = SelectField("Corner", choices=choices([("right", "Bottom right"), ("left", "Bottom left")]),
                           validate_choice=False)
    avatar_url = StringField("Avatar image address (optional)", render_kw={"type": "url", "inputmode": "url"},
                             description="An https:// link to a square picture.")
    placeholder = StringField("Text in the empty message box")


class AppearanceForm(PageForm):
    welcome_message = TextAreaField("Welcome message", render_kw={"rows": 2},
                                    description="The first thing visitors read when they open the chat.")
    appearance = FormField(AppearanceSettings, label="Look")

    def changes(self) -> dict:
        look = self.appearance.form
        return {"config": {"welcome_message": self.welcome_message.data or "", "appearance": {
            "title": (look.title.data or "").strip() or None, "color": look.color.data or "",
            "position": look.position.data, "avatar_url": (look.avatar_url.data or "").strip() or None,
            "placeholder": look.placeholder.data or ""}}}


# -- deploy, API keys, the preview ---------------------------------------------------------------------------------

class OriginsForm(PageForm):
    allowed_origins = TextAreaField(
        "Sites allowed to show this bot", render_kw={"rows": 4, "spellcheck": "false", "autocapitalize": "off"},
        description="One per line, the address of the site without a path, like https://www.example.com. The "
                    "widget works only there (and on this app's demo page).")

    def origins(self) -> list[str]:
        """One origin a line; ``https://shop.example/`` (as copied from the address bar) is ``https://shop.example``,
        which is what browsers send as the Origin."""
        lines = [line.strip() for line in (self.allowed_origins.data or "").splitlines() if line.strip()]
        return [line[:-1] if re.fullmatch(r"https?://[^/\s?#]+/", line) else line for line in lines]

    def changes(self) -> dict:
        return {"config": {"allowed_origins": self.origins()}}


class ApiKeyForm(PageForm):
    name = StringField("Key name", description="So you know later where the key is used.")


class PreviewForm(PageForm):
    """One question of the preview chat (JSON from the page's script, or a form post)."""

    message = StringField("Your question", validators=[Length(max=4000)])
    session_id = StringField()
