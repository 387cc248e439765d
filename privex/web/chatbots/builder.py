"""The chatbot list, a new bot, and the builder: six steps, each a small form saved in one round trip
(``services.chatbots.update``), with the preview chat beside them.

With htmx, a step's links and its form swap only ``#builder-main`` (the steps and the form), so a conversation in
the preview carries on while the bot is being changed; without it they are plain links and a plain form
(post, redirect, get). Each step's refusals come back beside their fields (``show_errors``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from htmx_flask import make_response as htmx_response
from sqlalchemy import orm

from privex.extensions import db, state
from privex.models import Chatbot, KnowledgeBase
from privex.services import chatbots
from privex.services.errors import Invalid, NotFound
from privex.web.chatbots import bp
from privex.web.chatbots.forms import (LEAD_ROWS, AppearanceForm, BehaviourForm, InstructionsForm, KnowledgeForm,
                                       LeadsForm, NewChatbotForm, choices, model_form)
from privex.web.forms import credential_choices, form_status, knowledge_choices, show_errors
from privex.web.shell import may, paginate, resource_or_404, scoped, workspace_for

PER_PAGE = 20


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    intro: str


STEPS = (
    Step("instructions", "Instructions", "Name your bot and tell it, in plain words, how to answer."),
    Step("knowledge", "Knowledge", "Choose the documents it answers from."),
    Step("model", "Model", "Choose what writes the answers."),
    Step("behaviour", "Behaviour", "How it finds passages, what it says when it finds none, and what it remembers."),
    Step("leads", "Lead capture", "Ask visitors for their contact details before or during a conversation."),
    Step("appearance", "Appearance", "How the chat looks on your site, and the first thing it says."),
)
BY_SLUG = {step.slug: step for step in STEPS}


# -- the list and a new bot ----------------------------------------------------------------------------------------

@bp.get("")
def index():
    """The workspace's chatbots, newest first, with their status and knowledge."""
    workspace_for("resources.read")
    page = paginate(scoped(Chatbot).options(orm.selectinload(Chatbot.knowledge_bases))
                    .order_by(Chatbot.created_at.desc(), Chatbot.id), PER_PAGE)
    has_knowledge = db.session.scalar(scoped(KnowledgeBase).with_only_columns(KnowledgeBase.id).limit(1)) is not None
    return render_template("chatbots/index.html", page=page, has_knowledge=has_knowledge,
                           can_write=may("resources.write"))


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Name a new bot and choose its knowledge; it is saved as a draft and the builder opens on it."""
    workspace = workspace_for("resources.write")
    form = NewChatbotForm()
    form.knowledge_base_ids.choices = choices(knowledge_choices())
    if not form.is_submitted() and len(form.knowledge_base_ids.choices) == 1:
        form.knowledge_base_ids.data = [form.knowledge_base_ids.choices[0].value]  # the one there is
    if form.validate_on_submit():
        with show_errors(form):
            try:
                chatbot = chatbots.create(workspace, current_user.id, form.changes())
            except Invalid as error:
                raise knowledge_refusal(error) from error
            flash(f"“{chatbot.name}” is saved as a draft: only you and your team see it until you publish it.",
                  "success")
            return redirect(url_for(".build", chatbot_id=chatbot.id, slug=STEPS[0].slug))
    return render_template("chatbots/new.html", form=form), form_status(form)


@bp.get("/<chatbot_id>")
def show(chatbot_id):
    chatbot = resource_or_404(Chatbot, chatbot_id)
    return redirect(url_for(".build", chatbot_id=chatbot.id, slug=STEPS[0].slug))


# -- the steps -----------------------------------------------------------------------------------------------------

@bp.route("/<chatbot_id>/build/<slug>", methods=["GET", "POST"])
def build(chatbot_id, slug):
    """One step of the builder; a post saves it (``then=next``: and opens the next step)."""
    step = BY_SLUG.get(slug)
    writing = request.method == "POST"
    chatbot = resource_or_404(Chatbot, chatbot_id, "resources.write" if writing else "resources.read")
    if step is None:
        raise NotFound(f"the builder has no step {slug!r}")
    form = step_form(step, chatbot)
    if writing and form.validate_on_submit():
        saved, changes = False, form.changes()
        with show_errors(form, fields=error_fields(step, form)):
            save(step, chatbot, form, changes)
            saved = True
        if saved:
            return after_saving(step, chatbot)
    return render_step(chatbot, step, form), form_status(form)


def save(step: Step, chatbot: Chatbot, form, changes: dict) -> None:
    workspace = workspace_for("resources.write")
    try:
        chatbots.update(workspace, chatbot, changes)
    except Invalid as error:
        if step.slug == "model":
            raise settings_beside_their_fields(error, form) from error
        raise knowledge_refusal(error) from error


def after_saving(step: Step, chatbot: Chatbot):
    """Where a saved step goes: back to itself saying so, or (``then=next``) to the next step; htmx gets the page
    to swap in (and the address to show), a plain form a redirect."""
    following = next_step(step) if request.form.get("then") == "next" else step
    said = f"“{step.title}” saved." if following is not step else "Saved."
    target = (url_for(".build", chatbot_id=chatbot.id, slug=following.slug) if following
              else url_for(".deploy", chatbot_id=chatbot.id))
    if not request.htmx:
        flash(said, "success")
        return redirect(target)
    if following is None:  # from the last step to Deploy: a page of its own
        flash(said, "success")
        return htmx_response(redirect=target)
    page = render_step(chatbot, following, step_form(following, chatbot, fresh=True), saved=said)
    return htmx_response(page, push_url=target if following is not step else None)


def next_step(step: Step) -> Step | None:
    position = STEPS.index(step)
    return STEPS[position + 1] if position + 1 < len(STEPS) else None


def render_step(chatbot: Chatbot, step: Step, form, saved: str | None = None):
    extra = {}
    if step.slug == "model":
        extra["provider"] = provider_named(form.provider.data)
    return render_template("chatbots/build.html", chatbot=chatbot, step=step, steps=STEPS, form=form, saved=saved,
                           can_write=may("resources.write"), **extra)


# -- each step's form, filled with the bot as it is ----------------------------------------------------------------

def step_form(step: Step, chatbot: Chatbot, fresh: bool = False):
    """The step's form: what was posted (and nothing else: a field left out is empty, not the saved value), or on
    a GET (or ``fresh``, after saving) the bot as it is."""
    if step.slug == "model":
        return model_step_form(chatbot, fresh)
    posted = request.method == "POST" and not fresh
    form = FORMS[step.slug](data=None if posted else saved_values(step, chatbot),
                            **({"formdata": None} if fresh else {}))
    if step.slug == "knowledge":
        form.knowledge_base_ids.choices = choices(knowledge_choices())
    return form


FORMS = {"instructions": InstructionsForm, "knowledge": KnowledgeForm, "behaviour": BehaviourForm,
         "leads": LeadsForm, "appearance": AppearanceForm}


def saved_values(step: Step, chatbot: Chatbot) -> dict:
    """What a step's form shows of the bot."""
    config = chatbot.config
    if step.slug == "instructions":
        return {"name": chatbot.name, "description": chatbot.description,
                "system_prompt": config.get("system_prompt")}
    if step.slug == "knowledge":
        return {"knowledge_base_ids": [str(kb.id) for kb in chatbot.knowledge_bases]}
    if step.slug == "behaviour":
        return {key: config.get(key) for key in ("retrieval", "fallback_message", "history_window", "citations",
                                                 "rate_limit_per_minute")}
    if step.slug == "leads":
        capture = dict(config.get("lead_capture") or {})
        for row, item in enumerate((capture.pop("fields", None) or [])[:LEAD_ROWS]):
            capture[f"field_{row}"] = item
        return {"lead_capture": capture}
    return {"welcome_message": config.get("welcome_message"), "appearance": config.get("appearance") or {}}


def model_step_form(chatbot: Chatbot, fresh: bool = False):
    """The model step for the provider chosen (``?provider=`` while choosing, the posted one when saving, the
    bot's own otherwise), its settings from the bot when it is the bot's provider."""
    config = chatbot.config
    if fresh:
        chosen = config.get("provider")
    else:
        chosen = (request.form.get("provider") if request.method == "POST" else request.args.get("provider")) \
            or config.get("provider")
    current = config.get("model_params") if chosen == config.get("provider") else {}
    posted = request.method == "POST" and not fresh
    form = model_form(provider_named(chosen), current, posted=posted, data={
        "provider": chosen, "credential_id": config.get("credential_id") or "",
        "max_context_tokens": config.get("max_context_tokens"), "max_answer_tokens": config.get("max_answer_tokens")},
        **({"formdata": None} if fresh else {}))
    installed = sorted(state().plugins.llm_providers)
    offered = [(name, name) for name in installed]
    if chosen and chosen not in installed:
        offered.append((chosen, f"{chosen} (not installed)"))
    form.provider.choices = choices(offered)
    form.credential_id.choices = choices([("", "None")] + credential_choices())
    return form


def provider_named(name):
    providers = state().plugins.llm_providers
    return providers[name] if name in list(providers) else None


def error_fields(step: Step, form) -> dict:
    """Where a step's refusals go when the path alone does not say (``show_errors``' ``fields``)."""
    if step.slug == "leads":
        return form.error_fields()
    if step.slug == "knowledge":
        return {"knowledge_base_ids": "knowledge_base_ids", None: "knowledge_base_ids"}
    return {}


def settings_beside_their_fields(error: Invalid, form) -> Invalid:
    """A provider refuses its settings in one message naming the setting (``LLM provider 'ollama': temperature
    must be at most 2``); put it beside that setting's field."""
    messages = ((error.errors.get("config") or {}) if isinstance(error.errors, dict) else {}).get("model_params")
    names = list(form.model_params.form._fields) if hasattr(form, "model_params") else []
    if not isinstance(messages, list):
        return error
    placed = {}
    for message in messages:
        text = str(message).split(": ", 1)[1] if str(message).startswith("LLM provider ") else str(message)
        name = next((name for name in names if text.startswith(name + " ") or f"'{name}'" in text), None)
        placed.setdefault(name or "provider", []).append(text)
    rest = placed.pop("provider", None)
    errors = {"config": {"model_params": placed, **({"provider": rest} if rest else {})}}
    return Invalid(error.message, errors=errors)


def knowledge_refusal(error: Invalid) -> Invalid:
    """The service names the knowledge bases it refuses by id; the person reads its sentence instead."""
    if isinstance(error.errors, dict) and "knowledge_base_ids" in error.errors:
        return Invalid(error.message, errors={"knowledge_base_ids": [error.message]})
    return error
