"""The knowledge area's forms. They only parse what was typed; the services (``knowledge``, ``drafts``) decide
whether it is acceptable, and their refusals land beside the fields through ``show_errors``.

A chunker's settings differ from chunker to chunker, so the settings form is built from the chosen chunker's
``config_schema`` (its whole-number settings, each with its description and default), for plugins' chunkers too.
"""

from __future__ import annotations

from contextlib import contextmanager

from markupsafe import Markup
from wtforms import (BooleanField, Field, FileField, FormField, IntegerField, SelectField, SelectMultipleField,
                     StringField, TextAreaField, URLField)
from wtforms.fields.choices import SelectChoice
from wtforms import Form as SubForm
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from privex.extensions import state
from privex.services.errors import Invalid
from privex.services.retrieval import MAX_TOP_K, MODES
from privex.web.forms import PageForm

DEFAULT_CHUNKER = "sentence"
# Plain names for the chunkers we ship; a plugin's chunker shows its own name.
CHUNKER_NAMES = {"sentence": "Whole sentences (recommended)", "token": "Fixed-size pieces",
                 "semantic": "Where the meaning changes", "parent_child": "Small pieces inside larger passages"}
MODE_NAMES = {"hybrid": "Meaning and words", "vector": "Meaning", "keyword": "Words"}


class ErrorsOnly(Field):
    """A field that draws nothing: it holds the messages about a group of fields (a chunker's settings) so they can
    be shown beside that group."""

    def __call__(self, **kwargs) -> Markup:
        return Markup("")


def lines(text: str | None) -> list[str]:
    """One entry per non-empty line (links, ids, patterns)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


# -- the chunker ---------------------------------------------------------------------------------------------------

def chunker_choices() -> list[SelectChoice]:
    chunkers = state().plugins.chunkers
    ordered = sorted(chunkers, key=lambda name: (name != DEFAULT_CHUNKER, name not in CHUNKER_NAMES, name))
    return [SelectChoice(name, CHUNKER_NAMES.get(name, name)) for name in ordered]


def chunker_summary(name: str) -> str:
    """What a chunker does, in its plugin's own words (the first line of its docstring)."""
    try:
        plugin = state().plugins.chunkers[name]
    except LookupError:
        return ""
    return ((type(plugin).__doc__ or "").strip().splitlines() or [""])[0]


def setting_label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def chunker_settings_form(name: str) -> type[SubForm]:
    """A sub-form with a whole-number field per setting of chunker ``name`` (blank: the chunker's default)."""
    try:
        schema = state().plugins.chunkers[name].config_schema or {}
    except (LookupError, AttributeError):
        schema = {}
    fields = {}
    for key, spec in (schema.get("properties") or {}).items():
        if spec.get("readOnly") or spec.get("type") != "integer":
            continue  # the embedding model a semantic chunker needs is the core's to give
        default = f" Leave it blank for {spec['default']}." if "default" in spec else ""
        fields[key] = IntegerField(setting_label(key), validators=[Optional()],
                                   description=f"{spec.get('description', '')}{default}".strip(),
                                   render_kw={"placeholder": spec["default"]} if "default" in spec else None)
    return type("ChunkerSettings", (SubForm,), fields)


class DetailsForm(PageForm):
    """Name, description and chunker of a knowledge base (or of the draft of one)."""

    name = StringField("Name", description="What your team calls it, for example “Staff handbook”.")
    description = TextAreaField("Description", description="Optional: what it holds, for the people you work with.")
    # Not checked against the list: a chunker that is not installed is refused by the service, naming those that are.
    chunking_strategy = SelectField("How documents are split into passages", choices=[], validate_choice=False)
    chunking_config = ErrorsOnly()


def details_form(strategy: str | None = None, prefix: str = "details", **kwargs) -> DetailsForm:
    """The details form with the settings of ``strategy`` (or of the chunker chosen in the request)."""
    from flask import request

    chosen = request.form.get(f"{prefix}-chunking_strategy") if request.method == "POST" else None
    chosen = chosen or strategy or DEFAULT_CHUNKER
    form_class = type("KnowledgeBaseDetailsForm", (DetailsForm,),
                      {"chunker": FormField(chunker_settings_form(chosen), label="Passage sizes")})
    form = form_class(prefix=prefix, **kwargs)
    form.chunking_strategy.data = form.chunking_strategy.data or chosen
    form.chunking_strategy.choices = chunker_choices()
    if chosen not in {choice.value for choice in form.chunking_strategy.choices}:
        form.chunking_strategy.choices.append(SelectChoice(chosen))  # an uninstalled one: the service names it
    return form


def details(form: DetailsForm, *, fixed_chunker: bool = False) -> dict:
    """What the details form asks the service to set."""
    values = {"name": (form.name.data or "").strip(), "description": (form.description.data or "").strip() or None}
    if not fixed_chunker:
        values["chunking_strategy"] = form.chunking_strategy.data
        values["chunking_config"] = {key: value for key, value in form.chunker.data.items() if value is not None}
    return values


def details_of(settings: dict) -> dict:
    """A knowledge base's (or draft's) settings as the details form shows them."""
    return {"name": settings.get("name"), "description": settings.get("description"),
            "chunking_strategy": settings.get("chunking_strategy") or DEFAULT_CHUNKER,
            "chunker": dict(settings.get("chunking_config") or {})}


# -- sources -------------------------------------------------------------------------------------------------------

class CrawlForm(PageForm):
    url = URLField("Start page", description="The address of the first page to read, for example "
                                              "https://example.com/help/. Only pages of the same site are followed.")
    max_depth = IntegerField("Link depth", validators=[Optional()], default=2,
                             description="How many links away from the start page to go; 0 reads the start page "
                                         "only.")
    max_pages = IntegerField("Page limit", validators=[Optional()], default=50,
                             description="The most pages to read (at most 1,000).")
    use_sitemap = BooleanField("Also read the pages the site’s sitemap lists", default=True)
    include_patterns = TextAreaField("Only pages whose path matches", description=(
        "Optional, one regular expression per line, for example ^/docs/"))
    exclude_patterns = TextAreaField("Skip pages whose path matches", description=(
        "Optional, one regular expression per line, for example ^/blog/"))
    allow_private = BooleanField("The site is on a private network or on this machine")
    name = StringField("Name in the list", description="Optional: the site’s address by default.")

    config_keys = ("url", "max_depth", "max_pages", "use_sitemap", "include_patterns", "exclude_patterns",
                   "allow_private")

    def source(self, allow_private: bool) -> dict:
        config = {"url": (self.url.data or "").strip(), "use_sitemap": bool(self.use_sitemap.data),
                  "include_patterns": lines(self.include_patterns.data),
                  "exclude_patterns": lines(self.exclude_patterns.data)}
        for key in ("max_depth", "max_pages"):
            if getattr(self, key).data is not None:
                config[key] = getattr(self, key).data
        if allow_private and self.allow_private.data:
            config["allow_private"] = True
        return {"name": (self.name.data or "").strip() or None, "config": config, "credential_id": None}


class CredentialSourceForm(PageForm):
    credential_id = SelectField("Credential", choices=[], validate_choice=True)
    name = StringField("Name in the list", description="Optional.")
    api_base = URLField("API address", description="Leave it blank unless you reach the service through a proxy.")
    allow_private = BooleanField("The proxy is on a private network or on this machine")

    def common(self, config: dict, allow_private: bool) -> dict:
        if (self.api_base.data or "").strip():
            config["api_base"] = self.api_base.data.strip()
        if allow_private and self.allow_private.data:
            config["allow_private"] = True
        return {"name": (self.name.data or "").strip() or None, "config": config,
                "credential_id": self.credential_id.data or None}


class NotionForm(CredentialSourceForm):
    page_ids = TextAreaField("Pages", description="Links or ids of the Notion pages, one per line. Share each page "
                                                  "with your integration first (the page’s ••• menu, Connections).")
    database_id = StringField("Database", description="Optional: the link or id of a Notion database, to read "
                                                      "every page in it.")
    config_keys = ("page_ids", "database_id", "api_base", "allow_private")

    def source(self, allow_private: bool) -> dict:
        config = {"page_ids": lines(self.page_ids.data)}
        if (self.database_id.data or "").strip():
            config["database_id"] = self.database_id.data.strip()
        return self.common(config, allow_private)


class GoogleDocsForm(CredentialSourceForm):
    document_ids = TextAreaField("Documents", description="Links or ids of the Google Docs, one per line. The "
                                                          "connected Google account must be able to open them.")
    config_keys = ("document_ids", "api_base", "allow_private")

    def source(self, allow_private: bool) -> dict:
        return self.common({"document_ids": lines(self.document_ids.data)}, allow_private)


def credential_choices(credentials) -> list[SelectChoice]:
    return [SelectChoice("", "Choose a credential")] + [SelectChoice(str(c.id), f"{c.name} ({c.provider})")
                                                        for c in credentials]


@contextmanager
def source_errors(form: PageForm, default: str):
    """A connector's refusal names its setting only in words (``max_depth must be ...``): put it beside that field
    (the credential's when it is about the credential, ``default`` otherwise)."""
    try:
        yield
    except Invalid as error:
        config = error.errors.get("config") if isinstance(error.errors, dict) else None
        if isinstance(config, list):
            message = " ".join(map(str, config))
            key = next((key for key in form.config_keys if key in message), None)
            if key is None:
                key = "credential_id" if "credential" in message and hasattr(form, "credential_id") else default
            error.errors = {**{k: v for k, v in error.errors.items() if k != "config"}, key: config}
        raise


# -- preview, search, documents ------------------------------------------------------------------------------------

class PreviewForm(PageForm):
    """Which source to preview and with which chunker (a GET: it changes nothing)."""

    class Meta:
        csrf = False

    source_id = SelectField("Source", choices=[])
    chunking_strategy = SelectField("Split by", choices=[])


class SearchForm(PageForm):
    """A test question (a GET: a search changes nothing, and its address can be shared)."""

    class Meta:
        csrf = False

    q = StringField("Question")
    mode = SelectField("Search by", description="Meaning finds passages that say the same in other words; words "
                                                "finds those that use the question’s words; both together (the "
                                                "default) suit most questions.", choices=[SelectChoice(mode, MODE_NAMES.get(mode, mode)) for mode in
                                             sorted(MODES, key=lambda m: (m != "hybrid", m))],
                       validate_choice=False)
    top_k = IntegerField("Passages to show", validators=[Optional()],
                         description=f"From 1 to {MAX_TOP_K}.")


class RenameForm(PageForm):
    name = StringField("Name")


class EvaluationForm(PageForm):
    """Labelled questions to evaluate retrieval with: a JSONL file or a .zip of a BEIR folder, and the modes."""

    questions = FileField("Questions file", description="A .jsonl file, one question a line, or a .zip of a BEIR "
                                                        "folder (queries.jsonl and qrels).")
    modes = SelectMultipleField(
        "Ways of searching to compare", choices=[SelectChoice(mode, MODE_NAMES.get(mode, mode)) for mode in
                                                 ("vector", "keyword", "hybrid")],
        default=["vector", "keyword", "hybrid"], validate_choice=False, widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput())
    split = StringField("BEIR split", validators=[Optional()],
                        description="Only for a BEIR folder with several qrels files: train, test, …")
