"""Knowledge-base drafts: gather settings and sources, preview the chunks, then finalize into a knowledge base.

Drafts live in Redis and expire ``PRIVEX_DRAFT_HOURS`` after their last change (see ``privex.services.drafts``).
"""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from privex.api.knowledge import DocumentSchema, KnowledgeBaseSchema, UploadSchema, document_view, uploaded_files
from privex.models.knowledge import FILE_SOURCES
from privex.services import drafts as service
from privex.services import knowledge
from privex.tenancy.context import ResourceView, caller, current_workspace

blp = Blueprint("kb_drafts", __name__, url_prefix="/kb-drafts", description="Knowledge-base drafts")


class DraftSettingsSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    vector_store = fields.String(validate=validate.Length(max=64))
    embedding_model = fields.String(validate=validate.Length(max=128))
    chunking_strategy = fields.String(validate=validate.Length(max=64))
    chunking_config = fields.Dict()
    retrieval_config = fields.Dict()


class DraftCreateSchema(DraftSettingsSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))


class SourceSchema(Schema):
    id = fields.String()
    type = fields.String(metadata={"description": "upload, web, notion or google_docs"})
    name = fields.String()
    size_bytes = fields.Integer(allow_none=True)
    mime_type = fields.String(allow_none=True)
    source_url = fields.String(allow_none=True)
    config = fields.Dict(metadata={"description": "the connector's settings"})
    credential_id = fields.String(allow_none=True)
    added_at = fields.String()


class DraftSchema(Schema):
    id = fields.String()
    settings = fields.Nested(DraftSettingsSchema)
    sources = fields.List(fields.Nested(SourceSchema))
    created_at = fields.String()
    updated_at = fields.String()
    expires_at = fields.String(metadata={"description": "when the draft is deleted unless changed again"})


class CrawlSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=512), metadata={"description": "default: the host"})
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    max_depth = fields.Integer(validate=validate.Range(min=0, max=10))
    max_pages = fields.Integer(validate=validate.Range(min=1, max=1000))
    use_sitemap = fields.Boolean()
    include_patterns = fields.List(fields.String())
    exclude_patterns = fields.List(fields.String())
    allow_private = fields.Boolean(metadata={"description": "only where the operator allows private sources"})


class NotionSourceSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=512))
    credential_id = fields.UUID(required=True, metadata={"description": "a stored credential with `token`"})
    page_ids = fields.List(fields.String(), metadata={"description": "ids or links of pages"})
    database_id = fields.String(metadata={"description": "id or link of a database: all its pages"})
    api_base = fields.Url(require_tld=False)
    allow_private = fields.Boolean()


class GoogleDocsSourceSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=512))
    credential_id = fields.UUID(required=True, metadata={"description": "a stored credential with `access_token`"})
    document_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    api_base = fields.Url(require_tld=False)
    allow_private = fields.Boolean()


class ConnectorSourceSchema(Schema):
    connector = fields.String(required=True, validate=validate.Length(min=1, max=64),
                              metadata={"description": "the name of an installed source connector"})
    name = fields.String(validate=validate.Length(min=1, max=512))
    config = fields.Dict(load_default=dict, metadata={"description": "the connector's settings (its config_schema)"})
    credential_id = fields.UUID(allow_none=True)


class PreviewSchema(Schema):
    source_id = fields.UUID(metadata={"description": "default: the first source"})
    chunking_strategy = fields.String(validate=validate.Length(max=64),
                                      metadata={"description": "default: the draft's"})
    chunking_config = fields.Dict(metadata={"description": "default: the draft's"})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PreviewChunkSchema(Schema):
    position = fields.Integer()
    text = fields.String()
    characters = fields.Integer()
    metadata = fields.Dict()


class PreviewResultSchema(Schema):
    source_id = fields.String()
    source_name = fields.String()
    chunking_strategy = fields.String()
    chunking_config = fields.Dict()
    parts_read = fields.Integer(metadata={"description": "pages or sections read"})
    partial = fields.Boolean(metadata={"description": "true when only the first pages of a connector were read"})
    total_chunks = fields.Integer()
    chunks = fields.List(fields.Nested(PreviewChunkSchema))


class FinalizedSchema(Schema):
    knowledge_base = fields.Nested(KnowledgeBaseSchema)
    documents = fields.List(fields.Nested(DocumentSchema))


class DraftView(ResourceView):
    """A view of one draft: 404 for another workspace's (or an expired) draft before the body is read."""

    def dispatch_request(self, **kwargs):
        self.workspace = current_workspace(self.permissions[request.method.lower()])
        service.get(self.workspace, kwargs["draft_id"])
        return super().dispatch_request(**kwargs)


def connector_payload(payload: dict) -> dict:
    """The API's fields split into the source's name and credential and the connector's own settings."""
    name = payload.pop("name", None)
    credential_id = payload.pop("credential_id", None)
    return {"name": name, "credential_id": credential_id, "config": payload}


@blp.route("")
class Drafts(ResourceView):
    @blp.arguments(DraftCreateSchema)
    @blp.response(201, DraftSchema)
    def post(self, payload):
        """Start a knowledge-base draft with its settings"""
        return service.create(self.workspace, caller().user_id, payload)


@blp.route("/<uuid:draft_id>")
class DraftItem(DraftView):
    @blp.response(200, DraftSchema)
    def get(self, draft_id):
        """Get a draft with its settings and sources"""
        return service.get(self.workspace, draft_id)

    @blp.arguments(DraftSettingsSchema)
    @blp.response(200, DraftSchema)
    def patch(self, payload, draft_id):
        """Change a draft's settings (name, chunker, embedding model, ...)"""
        with service.changing(self.workspace, draft_id) as draft:
            service.update(draft, payload)
        return draft

    @blp.response(204)
    def delete(self, draft_id):
        """Discard a draft and its uploaded files"""
        service.delete(self.workspace, draft_id)


@blp.route("/<uuid:draft_id>/documents/upload")
class DraftUpload(DraftView):
    @blp.arguments(UploadSchema, location="files")
    @blp.response(201, SourceSchema(many=True))
    @blp.alt_response(413, description="Larger than PRIVEX_MAX_UPLOAD_MB")
    @blp.alt_response(415, description="A file type no installed parser reads")
    def post(self, files, draft_id):
        """Add files to a draft (multipart field `file`, or several `files`)"""
        return service.add_uploads(self.workspace, draft_id, uploaded_files(files))


@blp.route("/<uuid:draft_id>/documents/crawl")
class DraftCrawl(DraftView):
    @blp.arguments(CrawlSchema)
    @blp.response(201, SourceSchema)
    def post(self, payload, draft_id):
        """Add a web site: the pages of one site, crawled from a start page when the knowledge base is indexed"""
        return service.add_connector_source(self.workspace, draft_id, "web", connector_payload(payload))


@blp.route("/<uuid:draft_id>/documents/notion")
class DraftNotion(DraftView):
    @blp.arguments(NotionSourceSchema)
    @blp.response(201, SourceSchema)
    def post(self, payload, draft_id):
        """Add Notion pages or a database, read with a stored credential"""
        return service.add_connector_source(self.workspace, draft_id, "notion", connector_payload(payload))


@blp.route("/<uuid:draft_id>/documents/google-docs")
class DraftGoogleDocs(DraftView):
    @blp.arguments(GoogleDocsSourceSchema)
    @blp.response(201, SourceSchema)
    def post(self, payload, draft_id):
        """Add Google Docs, read with a stored credential"""
        return service.add_connector_source(self.workspace, draft_id, "google_docs", connector_payload(payload))


@blp.route("/<uuid:draft_id>/documents/sources")
class DraftConnectorSource(DraftView):
    @blp.arguments(ConnectorSourceSchema)
    @blp.response(201, SourceSchema)
    def post(self, payload, draft_id):
        """Add a source read by any installed connector (`GET /plugins` lists them with their settings)"""
        connector = payload.pop("connector")
        if connector in FILE_SOURCES:
            abort(422, message=f"{connector!r} is not a connector: upload files with /documents/upload",
                  errors={"connector": ["not a connector"]})
        return service.add_connector_source(self.workspace, draft_id, connector, payload)


@blp.route("/<uuid:draft_id>/documents/<uuid:source_id>")
class DraftSource(DraftView):
    @blp.response(204)
    def delete(self, draft_id, source_id):
        """Remove a source from a draft"""
        service.remove_source(self.workspace, draft_id, source_id)


@blp.route("/<uuid:draft_id>/preview")
class DraftPreview(DraftView):
    @blp.arguments(PreviewSchema)
    @blp.response(200, PreviewResultSchema)
    def post(self, payload, draft_id):
        """Preview the chunks a chunker setting makes of one source, before anything is indexed"""
        return service.preview(self.workspace, draft_id, payload)


@blp.route("/<uuid:draft_id>/finalize")
class DraftFinalize(DraftView):
    @blp.response(201, FinalizedSchema)
    def post(self, draft_id):
        """Create the knowledge base from the draft and start indexing its sources"""
        knowledge_base, documents = service.finalize(self.workspace, draft_id, caller().user_id)
        knowledge.queue_ingestion(documents)
        return {"knowledge_base": knowledge_base, "documents": [document_view(document) for document in documents]}
