"""Knowledge: KnowledgeBase -> Document -> Chunk (text, metadata, embedding, full-text vector).

``Chunk.embedding`` is a ``vector`` column without a fixed dimension, so knowledge bases embedded by models of
different sizes share one table; the vector store plugin indexes it per dimension (an HNSW index on
``embedding::vector(N)`` restricted to ``embedding_dim = N``), which is pgvector's documented way to mix sizes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from pgvector.sqlalchemy import SPARSEVEC, Vector
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from privex.models.base import Model, WorkspaceScoped, choice, foreign_key, jsonb
from privex.models.bots import chatbot_knowledge_bases

DOCUMENT_STATUSES = ("pending", "processing", "indexed", "failed")
# Stored files; any other source type is the name of the source connector that fetches the document.
FILE_SOURCES = ("upload", "text")


class KnowledgeBase(WorkspaceScoped, Model):
    """The plugins that produced its vectors are recorded by name, so a missing one is reported by name."""

    __tablename__ = "knowledge_bases"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name"),)

    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    vector_store: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="pgvector",
                                              server_default="pgvector")
    embedding_model: Mapped[str] = mapped_column(sa.String(128), nullable=False, default="all-MiniLM-L6-v2",
                                                 server_default="all-MiniLM-L6-v2")
    embedding_dim: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=384, server_default="384")
    chunking_strategy: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="sentence",
                                                   server_default="sentence")
    chunking_config: Mapped[dict] = jsonb()
    retrieval_config: Mapped[dict] = jsonb()
    created_by_id: Mapped[uuid.UUID | None] = foreign_key("users.id", ondelete="SET NULL", nullable=True,
                                                          index=False)

    documents: Mapped[list["Document"]] = relationship(
        back_populates="knowledge_base", cascade="all, delete-orphan", passive_deletes=True
    )
    chatbots = relationship("Chatbot", secondary=chatbot_knowledge_bases, back_populates="knowledge_bases",
                            passive_deletes=True)


class Document(WorkspaceScoped, Model):
    __tablename__ = "documents"
    __table_args__ = (
        choice("status", DOCUMENT_STATUSES),
        sa.Index(None, "knowledge_base_id", "status"),
        sa.Index(None, "knowledge_base_id", "content_hash"),
    )

    knowledge_base_id: Mapped[uuid.UUID] = foreign_key("knowledge_bases.id")
    name: Mapped[str] = mapped_column(sa.String(512), nullable=False)
    source_type: Mapped[str] = mapped_column(sa.String(64), nullable=False, default="upload")
    source_url: Mapped[str | None] = mapped_column(sa.Text)
    mime_type: Mapped[str | None] = mapped_column(sa.String(128))
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    storage_path: Mapped[str | None] = mapped_column(sa.Text)
    # A connector's document (web, notion, google_docs): the connector's settings and the stored credential it reads
    # with. Ingestion fetches the source afresh, so a reindex refreshes it.
    source_config: Mapped[dict] = jsonb()
    credential_id: Mapped[uuid.UUID | None] = foreign_key("credentials.id", ondelete="SET NULL", nullable=True,
                                                          index=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="pending", server_default="pending")
    error: Mapped[str | None] = mapped_column(sa.Text)
    chunks_done: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    chunks_total: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    # `metadata` is reserved by SQLAlchemy's declarative base: the attribute is `metadata_`, the column `metadata`.
    metadata_: Mapped[dict] = jsonb(name="metadata")
    indexed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    knowledge_base: Mapped[KnowledgeBase] = relationship(back_populates="documents")


class Chunk(WorkspaceScoped, Model):
    __tablename__ = "chunks"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "position"),
        sa.Index("ix_chunks_terms", "terms", postgresql_using="gin"),
        sa.Index("ix_chunks_without_terms", "knowledge_base_id", postgresql_where=sa.text("terms IS NULL")),
    )

    knowledge_base_id: Mapped[uuid.UUID] = foreign_key("knowledge_bases.id")
    document_id: Mapped[uuid.UUID] = foreign_key("documents.id")
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    content_hash: Mapped[str | None] = mapped_column(sa.String(64))
    token_count: Mapped[int | None] = mapped_column(sa.Integer)
    metadata_: Mapped[dict] = jsonb(name="metadata")
    embedding = mapped_column(Vector())
    embedding_dim: Mapped[int | None] = mapped_column(sa.SmallInteger)
    # Keyword ranking (the vector store's): stemmed term ids, their BM25 weights, and how many terms the text has.
    # The embedding and the weights are stored inside the row (STORAGE MAIN and a TOAST target of 4,000 bytes,
    # migration 4d2b8e6f1a37): searches read them for up to thousands of chunks a question, and out of line in TOAST
    # each cost three more buffer reads. The text goes out of line instead.
    terms = mapped_column(ARRAY(sa.Integer))
    term_weights = mapped_column(SPARSEVEC())
    term_count: Mapped[int | None] = mapped_column(sa.Integer)
