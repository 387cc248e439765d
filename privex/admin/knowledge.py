"""Knowledge bases and documents in the back office, written through ``privex.services.knowledge``: plugins are
chosen among the installed ones, deleting takes the vectors and files along, and documents can be re-ingested.
Chunks are written only by ingestion, so they are read-only here."""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_login import current_user
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from privex.admin.forms import AdminForm, JSONObjectField, workspace_picker
from privex.admin.views import ReadOnlyView, ServiceView, empty_to_none
from privex.extensions import db, state
from privex.models import KnowledgeBase
from privex.services import knowledge
from privex.services.errors import ServiceError


class KnowledgeBaseEditForm(AdminForm):
    name = StringField("Name")
    description = TextAreaField("Description")
    chunking_strategy = SelectField("Chunking strategy",
                                    description="Applies to documents when they are re-ingested.")
    chunking_config = JSONObjectField("Chunking config")
    retrieval_config = JSONObjectField("Retrieval config")


class KnowledgeBaseCreateForm(KnowledgeBaseEditForm):
    workspace = workspace_picker(validators=[InputRequired()])
    vector_store = SelectField("Vector store", description="Fixed once the knowledge base exists.")
    embedding_model = SelectField("Embedding model", description="Fixed once the knowledge base exists.")


def installed(kind: str) -> list[SelectChoice]:
    return [SelectChoice(name) for name in sorted(getattr(state().plugins, kind))]


class KnowledgeBaseView(ServiceView):
    column_list = ("name", "workspace_id", "vector_store", "embedding_model", "chunking_strategy", "description",
                   "created_at")
    column_searchable_list = ("name",)
    column_default_sort = ("created_at", True)
    form_create_rules = ("workspace", "name", "description", "vector_store", "embedding_model", "chunking_strategy",
                         "chunking_config", "retrieval_config")
    column_filters = ("name", "vector_store", "embedding_model", "chunking_strategy")

    def get_create_form(self):
        return KnowledgeBaseCreateForm

    def get_edit_form(self):
        return KnowledgeBaseEditForm

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.vector_store.choices = installed("vector_stores")
        form.embedding_model.choices = installed("embedding_models")
        form.chunking_strategy.choices = installed("chunkers")
        if not form.is_submitted():
            form.vector_store.data = form.vector_store.data or knowledge.DEFAULTS["vector_store"]
            form.embedding_model.data = form.embedding_model.data or knowledge.DEFAULTS["embedding_model"]
            form.chunking_strategy.data = form.chunking_strategy.data or knowledge.DEFAULTS["chunking_strategy"]
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        choices = installed("chunkers")
        # A knowledge base whose chunker's plugin was uninstalled still shows (and keeps) its chunker.
        if obj is not None and obj.chunking_strategy not in {choice.value for choice in choices}:
            choices.append(SelectChoice(obj.chunking_strategy, f"{obj.chunking_strategy} (not installed)"))
        form.chunking_strategy.choices = choices
        return form

    @staticmethod
    def settings(form) -> dict:
        return {"name": form.name.data, "description": empty_to_none(form.description.data),
                "chunking_strategy": form.chunking_strategy.data, "chunking_config": form.chunking_config.data or {},
                "retrieval_config": form.retrieval_config.data or {}}

    def create(self, form):
        payload = {**self.settings(form), "vector_store": form.vector_store.data,
                   "embedding_model": form.embedding_model.data}
        return knowledge.create(form.workspace.data, current_user.id, payload)

    def update(self, form, row) -> None:
        knowledge.update(row, self.settings(form))

    def delete(self, row) -> None:
        knowledge.delete_knowledge_base(row)


class DocumentEditForm(AdminForm):
    name = StringField("Name")
    metadata_ = JSONObjectField("Metadata", description="Labels that queries can filter on.")


class DocumentView(ServiceView):
    """Documents arrive through uploads and connectors (the API and the builder); here they are renamed, labelled,
    re-ingested or deleted."""

    can_create = False
    column_list = ("name", "knowledge_base_id", "workspace_id", "status", "source_type", "chunks_done",
                   "chunks_total", "error", "indexed_at")
    column_searchable_list = ("name", "source_url")
    column_filters = ("name", "status", "source_type", "knowledge_base_id")
    column_default_sort = ("created_at", True)
    error_fields = {"metadata": "metadata_"}

    def get_edit_form(self):
        return DocumentEditForm

    def update(self, form, row) -> None:
        knowledge.update_document(row, {"name": form.name.data, "metadata_": form.metadata_.data or {}})

    def delete(self, row) -> None:
        knowledge.delete_documents(db.session.get(KnowledgeBase, row.knowledge_base_id), [row])

    @action("reingest", "Re-ingest", "Re-ingest the selected documents? Their chunks are rebuilt.")
    def action_reingest(self, ids) -> None:
        documents = self.rows(ids)
        try:
            count = knowledge.reindex(documents)
        except ServiceError as error:
            db.session.rollback()
            flash(f"Nothing was re-ingested: {error.message}", "error")
            return
        flash(f"{count} document{'s' if count != 1 else ''} queued for ingestion.", "success")


class ChunkView(ReadOnlyView):
    column_list = ("document_id", "knowledge_base_id", "position", "text", "token_count", "embedding_dim")
    column_searchable_list = ()
    column_filters = ("knowledge_base_id", "document_id")


class EvaluationRunView(ReadOnlyView):
    """Evaluation runs are started from the API, `privex eval` or the Quality tab; here they are read."""

    column_list = ("knowledge_base_id", "status", "source", "questions_done", "questions_total", "summary",
                   "error", "created_at", "finished_at")
    column_searchable_list = ()
    column_filters = ("knowledge_base_id", "status")


class EvaluationQuestionView(ReadOnlyView):
    column_list = ("run_id", "position", "text", "failed", "results")
    column_searchable_list = ()
    column_filters = ("run_id", "failed")
