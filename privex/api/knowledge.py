"""Knowledge bases and their documents: CRUD, uploads, ingestion status, reindexing, chunks and query (hit testing).

All in the caller's current workspace (``ResourceView``): another workspace's ids answer 404.
"""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from privex.api.filters import MetadataFilters
from privex.api.pagination import Counted, CountedPage, SelectPage
from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.models.knowledge import DOCUMENT_STATUSES
from privex.services import analytics, components
from privex.services import knowledge as service
from privex.services.errors import Invalid, NotFound
from privex.services.retrieval import MAX_TOP_K, MODES, search
from privex.tenancy.context import ResourceView, caller, scoped

blp = Blueprint("knowledge_bases", __name__, url_prefix="/knowledge-bases", description="Knowledge bases")
documents_blp = Blueprint("documents", __name__, url_prefix="/documents", description="Documents")


class KnowledgeBaseSchema(Schema):
    id = fields.UUID(dump_only=True)
    workspace_id = fields.UUID(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    vector_store = fields.String(load_default="pgvector", validate=validate.Length(max=64))
    embedding_model = fields.String(load_default="all-MiniLM-L6-v2", validate=validate.Length(max=128))
    embedding_dim = fields.Integer(dump_only=True)
    chunking_strategy = fields.String(load_default="sentence", validate=validate.Length(max=64))
    chunking_config = fields.Dict(load_default=dict)
    retrieval_config = fields.Dict(load_default=dict, metadata={
        "description": "defaults for queries: mode, top_k, threshold; `embedding` holds the model's settings"})
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class KnowledgeBaseUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    chunking_strategy = fields.String(validate=validate.Length(max=64))
    chunking_config = fields.Dict()
    retrieval_config = fields.Dict()


class DocumentSchema(Schema):
    id = fields.UUID(dump_only=True)
    knowledge_base_id = fields.UUID(dump_only=True)
    name = fields.String(validate=validate.Length(min=1, max=512))
    source_type = fields.String(dump_only=True)
    source_url = fields.String(dump_only=True, allow_none=True)
    source_config = fields.Dict(dump_only=True, metadata={
        "description": "a connector's settings (`config`) for web, notion and google_docs documents"})
    credential_id = fields.UUID(dump_only=True, allow_none=True)
    mime_type = fields.String(dump_only=True, allow_none=True)
    size_bytes = fields.Integer(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True, metadata={"description": "pending, processing, indexed or failed"})
    error = fields.String(dump_only=True, allow_none=True, metadata={"description": "why it failed"})
    chunks_done = fields.Integer(dump_only=True)
    chunks_total = fields.Integer(dump_only=True)
    progress = fields.Float(dump_only=True, metadata={"description": "0-1, chunks embedded so far"})
    metadata = fields.Dict(attribute="metadata_", metadata={"description": "your own labels; filterable"})
    indexed_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class DocumentUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=512))
    metadata = fields.Dict(attribute="metadata_", metadata={"description": "your own labels; filterable"})


class DocumentListArgs(Schema):
    status = fields.String(validate=validate.OneOf(DOCUMENT_STATUSES))
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "part of the name"})
    knowledge_base_id = fields.UUID()


class UploadSchema(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary"})
    files = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}))


class BatchUploadArgs(Schema):
    knowledge_base_id = fields.UUID(required=True)


class ChunkSchema(Schema):
    id = fields.String(metadata={"description": "the chunk's id in its vector store"})
    position = fields.Integer()
    text = fields.String()
    token_count = fields.Integer(allow_none=True)
    metadata = fields.Dict()


class QuerySchema(Schema):
    query = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    mode = fields.String(load_default=None, validate=validate.OneOf(sorted(MODES)))
    top_k = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_TOP_K))
    threshold = fields.Float(load_default=None, validate=validate.Range(min=0, max=1))
    filters = MetadataFilters()


class HitSchema(Schema):
    chunk_id = fields.String()
    text = fields.String()
    score = fields.Float()
    document_id = fields.String()
    document_name = fields.String(allow_none=True)
    position = fields.Dict(metadata={"description": "chunk number and, when known, page, heading, rows, URL"})
    metadata = fields.Dict()


class QueryResultSchema(Schema):
    mode = fields.String()
    took_ms = fields.Float()
    hits = fields.List(fields.Nested(HitSchema))


class AnalyticsSchema(Schema):
    documents = fields.Dict(metadata={"description": "count per status"})
    chunks = fields.Integer()
    size_bytes = fields.Integer()


class DocumentAnalyticsSchema(Schema):
    status = fields.String()
    chunks = fields.Integer()
    average_chunk_characters = fields.Integer()
    size_bytes = fields.Integer(allow_none=True)


class ReindexSchema(Schema):
    queued = fields.Integer()


def document_view(document: Document) -> Document:
    document.progress = round(document.chunks_done / document.chunks_total, 3) if document.chunks_total else (
        1.0 if document.status == "indexed" else 0.0)
    return document


class DocumentPage(SelectPage):
    """Pages of documents, each with its progress."""

    @property
    def items(self):
        return [document_view(document) for document in super().items]


def uploaded_files(files) -> list:
    storages = [f for f in files.get("files", []) or []] + ([files["file"]] if files.get("file") else [])
    if not storages:
        raise Invalid("send the file as multipart/form-data field `file` (or several as `files`)",
                      errors={"file": ["missing"]})
    return storages


@blp.route("")
class KnowledgeBases(ResourceView):
    @blp.response(200, KnowledgeBaseSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self):
        """List the workspace's knowledge bases"""
        return scoped(KnowledgeBase).order_by(KnowledgeBase.created_at, KnowledgeBase.id)

    @blp.arguments(KnowledgeBaseSchema)
    @blp.response(201, KnowledgeBaseSchema)
    @blp.alt_response(409, description="A knowledge base of that name exists in this workspace")
    def post(self, payload):
        """Create a knowledge base (its vector store, embedding model and chunker are plugins, by name)"""
        return service.create(self.workspace, caller().user_id, payload)


@blp.route("/<uuid:kb_id>")
class KnowledgeBaseItem(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.response(200, KnowledgeBaseSchema)
    def get(self, kb_id):
        """Get a knowledge base"""
        return self.found["kb_id"]

    @blp.arguments(KnowledgeBaseUpdateSchema)
    @blp.response(200, KnowledgeBaseSchema)
    @blp.alt_response(409, description="A knowledge base of that name exists in this workspace")
    def patch(self, payload, kb_id):
        """Update a knowledge base (a new chunker applies when documents are reindexed)"""
        return service.update(self.found["kb_id"], payload)

    @blp.response(204)
    def delete(self, kb_id):
        """Delete a knowledge base with its documents, vectors and files"""
        service.delete_knowledge_base(self.found["kb_id"])


@blp.route("/<uuid:kb_id>/query")
class Query(ResourceView):
    permissions = {"post": "resources.read"}
    resources = {"kb_id": KnowledgeBase}

    @blp.arguments(QuerySchema)
    @blp.response(200, QueryResultSchema)
    def post(self, payload, kb_id):
        """Search a knowledge base (hit testing): the chunks that best answer a query, with citations"""
        return search(self.found["kb_id"], payload["query"], mode=payload["mode"], top_k=payload["top_k"],
                      threshold=payload["threshold"], filters=payload["filters"])


@blp.route("/<uuid:kb_id>/analytics")
class KnowledgeBaseAnalytics(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.response(200, AnalyticsSchema)
    def get(self, kb_id):
        """Documents per status, chunks and stored bytes"""
        return analytics.knowledge_base_summary(self.found["kb_id"])


@blp.route("/<uuid:kb_id>/documents")
class KnowledgeBaseDocuments(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.arguments(DocumentListArgs, location="query")
    @blp.response(200, DocumentSchema(many=True))
    @blp.paginate(DocumentPage)
    def get(self, args, kb_id):
        """List a knowledge base's documents (filter by status or name)"""
        return document_query({**args, "knowledge_base_id": kb_id})


@blp.route("/<uuid:kb_id>/documents/upload")
class Upload(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.arguments(UploadSchema, location="files")
    @blp.response(202, DocumentSchema(many=True))
    @blp.alt_response(413, description="Larger than PRIVEX_MAX_UPLOAD_MB")
    @blp.alt_response(415, description="A file type no installed parser reads")
    def post(self, files, kb_id):
        """Upload files; each becomes a pending document and is indexed in the background"""
        return [document_view(document) for document in service.add_uploads(self.found["kb_id"],
                                                                            uploaded_files(files))]


@blp.route("/<uuid:kb_id>/documents/<uuid:doc_id>")
class KnowledgeBaseDocument(ResourceView):
    resources = {"kb_id": KnowledgeBase, "doc_id": Document}

    @blp.response(204)
    def delete(self, kb_id, doc_id):
        """Delete a document with its vectors"""
        knowledge_base = self.found["kb_id"]
        service.delete_documents(knowledge_base, [service.document_of(knowledge_base, self.found["doc_id"])])


@blp.route("/<uuid:kb_id>/reindex")
class ReindexKnowledgeBase(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.response(202, ReindexSchema)
    def post(self, kb_id):
        """Rebuild every document's chunks (after changing the chunker); old chunks serve until each is done"""
        return {"queued": service.reindex_knowledge_base(self.found["kb_id"])}


def document_query(args: dict):
    statement = scoped(Document)
    if args.get("knowledge_base_id"):
        statement = statement.where(Document.knowledge_base_id == args["knowledge_base_id"])
    if args.get("status"):
        statement = statement.where(Document.status == args["status"])
    if args.get("q"):
        statement = statement.where(Document.name.icontains(args["q"], autoescape=True))
    return statement.order_by(Document.created_at.desc(), Document.id)


@documents_blp.route("")
class Documents(ResourceView):
    @documents_blp.arguments(DocumentListArgs, location="query")
    @documents_blp.response(200, DocumentSchema(many=True))
    @documents_blp.paginate(DocumentPage)
    def get(self, args):
        """List documents of the workspace (filter by knowledge base, status or name)"""
        return document_query(args)


@documents_blp.route("/batch-upload")
class BatchUpload(ResourceView):
    @documents_blp.arguments(BatchUploadArgs, location="query")
    @documents_blp.arguments(UploadSchema, location="files")
    @documents_blp.response(202, DocumentSchema(many=True))
    @documents_blp.alt_response(404, description="No such knowledge base in this workspace")
    def post(self, form, files):
        """Upload several files into one knowledge base (`?knowledge_base_id=...`)"""
        knowledge_base = db.session.scalar(scoped(KnowledgeBase).where(KnowledgeBase.id == form["knowledge_base_id"]))
        if knowledge_base is None:
            raise NotFound("KnowledgeBase not found", errors={"knowledge_base_id": ["not in this workspace"]})
        return [document_view(document) for document in service.add_uploads(knowledge_base, uploaded_files(files))]


@documents_blp.route("/<uuid:doc_id>")
class DocumentItem(ResourceView):
    resources = {"doc_id": Document}

    @documents_blp.response(200, DocumentSchema)
    def get(self, doc_id):
        """Get a document with its ingestion status and progress"""
        return document_view(self.found["doc_id"])

    @documents_blp.arguments(DocumentUpdateSchema)
    @documents_blp.response(200, DocumentSchema)
    def patch(self, payload, doc_id):
        """Rename a document or change its labels"""
        return document_view(service.update_document(self.found["doc_id"], payload))

    @documents_blp.response(204)
    def delete(self, doc_id):
        """Delete a document with its vectors"""
        document = self.found["doc_id"]
        service.delete_documents(db.session.get(KnowledgeBase, document.knowledge_base_id), [document])


@documents_blp.route("/<uuid:doc_id>/reindex")
class ReindexDocument(ResourceView):
    resources = {"doc_id": Document}

    @documents_blp.response(202, DocumentSchema)
    def post(self, doc_id):
        """Rebuild a document's chunks; the old ones serve until the new ones are complete"""
        document = self.found["doc_id"]
        service.reindex([document])
        return document_view(document)


@documents_blp.route("/<uuid:doc_id>/chunks")
class DocumentChunks(ResourceView):
    resources = {"doc_id": Document}

    @documents_blp.response(200, ChunkSchema(many=True))
    @documents_blp.paginate(CountedPage)
    def get(self, doc_id):
        """A document's chunks in order, as its knowledge base's vector store holds them"""
        document = self.found["doc_id"]
        store = components.vector_store(db.session.get(KnowledgeBase, document.knowledge_base_id))
        return Counted(count=lambda: store.summary(str(document.id))["chunks"],
                       window=lambda offset, limit: store.chunks(str(document.id), offset=offset, limit=limit))


@documents_blp.route("/<uuid:doc_id>/analytics")
class DocumentAnalytics(ResourceView):
    resources = {"doc_id": Document}

    @documents_blp.response(200, DocumentAnalyticsSchema)
    def get(self, doc_id):
        """Chunks, their average length and the stored size of a document"""
        document = self.found["doc_id"]
        return analytics.document_summary(db.session.get(KnowledgeBase, document.knowledge_base_id), document)
