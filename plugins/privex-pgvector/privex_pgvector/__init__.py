"""The default vector store: chunks in PostgreSQL, searched by pgvector (HNSW, cosine), full text, or both fused."""

from __future__ import annotations

from privex import hookimpl
from privex_pgvector import indexes, keywords
from privex_pgvector.store import PGVectorStore, ensure_index

__version__ = "0.1.0"


class PGVector:
    """Factory registered under the name ``pgvector``."""

    name = "pgvector"
    version = __version__

    def create(self, knowledge_base, embedding_dim: int) -> PGVectorStore:
        ensure_index(embedding_dim)
        return PGVectorStore(knowledge_base_id=str(knowledge_base.id), workspace_id=str(knowledge_base.workspace_id),
                             embedding_dim=embedding_dim)

    def upkeep(self) -> int:
        """The housekeeping's turn: fill in the keyword data of chunks stored without it (``keywords``), in bounded
        batches, so no knowledge base waits for a keyword search to do it; then build the HNSW index of each
        knowledge base that has grown large and drop those of knowledge bases deleted (``indexes``). How many chunks
        were filled plus how many indexes were built or dropped."""
        return keywords.fill_pending() + indexes.upkeep()


@hookimpl
def privex_vector_stores():
    return [PGVector()]
