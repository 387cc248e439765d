"""A third-party vector store does everything the built-in one does (docs/plugins.md, ``privex_vector_stores``).

The store below keeps its chunks in a dictionary, knows nothing of PrivexBot's tables, and is registered at run
time exactly as an installed plugin would be. A knowledge base that names it is built, listed, counted, queried in
every mode, cited, reindexed and deleted through the public API — the core asks the store, never its own tables.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (BasePydanticVectorStore, VectorStoreQuery, VectorStoreQueryMode,
                                                  VectorStoreQueryResult)

from privex import hookimpl
from tests.helpers import sign_up

API = "/api/v1"
SHELVES: dict[str, dict[str, dict]] = {}  # knowledge base id -> chunk id -> chunk


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


class ShelfStore(BasePydanticVectorStore):
    """Chunks on a shelf per knowledge base: cosine for vectors, shared words for keywords, their sum for hybrid."""

    stores_text: bool = True
    knowledge_base_id: str

    @property
    def client(self) -> Any:
        return SHELVES

    @property
    def shelf(self) -> dict:
        return SHELVES.setdefault(self.knowledge_base_id, {})

    def add(self, nodes, **kwargs) -> list[str]:
        for index, node in enumerate(nodes):
            metadata = dict(node.metadata)
            self.shelf[node.node_id] = {"id": node.node_id, "document_id": node.ref_doc_id, "text": node.get_content(),
                                        "position": metadata.pop("position", index), "metadata": metadata,
                                        "embedding": list(node.get_embedding())}
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **kwargs) -> None:
        for chunk_id in [key for key, chunk in self.shelf.items() if chunk["document_id"] == ref_doc_id]:
            del self.shelf[chunk_id]

    def clear(self) -> None:
        SHELVES.pop(self.knowledge_base_id, None)

    def summary(self, document_id: str | None = None) -> dict:
        chunks = [c for c in self.shelf.values() if document_id is None or c["document_id"] == document_id]
        return {"chunks": len(chunks), "characters": sum(len(c["text"]) for c in chunks)}

    def chunks(self, document_id: str, *, offset: int = 0, limit: int = 100) -> list[dict]:
        ordered = sorted((c for c in self.shelf.values() if c["document_id"] == document_id),
                         key=lambda c: c["position"])
        return [{"id": c["id"], "position": c["position"], "text": c["text"], "token_count": None,
                 "metadata": c["metadata"]} for c in ordered[offset:offset + limit]]

    def query(self, query: VectorStoreQuery, **kwargs) -> VectorStoreQueryResult:
        scored = []
        for chunk in self.shelf.values():
            if query.filters and any(chunk["metadata"].get(item.key) != item.value for item in query.filters.filters):
                continue
            cosine = self._cosine(chunk["embedding"], query.query_embedding) if query.query_embedding else 0.0
            overlap = len(words(query.query_str or "") & words(chunk["text"])) / (1 + len(words(chunk["text"])))
            score = {VectorStoreQueryMode.DEFAULT: cosine, VectorStoreQueryMode.TEXT_SEARCH: overlap}.get(
                query.mode, cosine + overlap)
            if query.mode == VectorStoreQueryMode.TEXT_SEARCH and not overlap:
                continue
            scored.append((score, chunk))
        scored.sort(key=lambda pair: (-pair[0], pair[1]["id"]))
        top = scored[:query.similarity_top_k]
        nodes = [TextNode(id_=c["id"], text=c["text"], metadata={**c["metadata"], "position": c["position"],
                                                                   "document_id": c["document_id"]},
                          relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c["document_id"])})
                 for _, c in top]
        return VectorStoreQueryResult(nodes=nodes, similarities=[s for s, _ in top], ids=[c["id"] for _, c in top])

    @staticmethod
    def _cosine(a, b) -> float:
        dot = sum(x * y for x, y in zip(a, b))
        return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)


class Shelf:
    name = "shelf"
    version = "0.0.1"

    def create(self, knowledge_base, embedding_dim: int) -> ShelfStore:
        return ShelfStore(knowledge_base_id=str(knowledge_base.id))


class ShelfPlugin:
    @hookimpl
    def privex_vector_stores(self):
        return [Shelf()]


@pytest.fixture()
def shelf(register_plugin):
    register_plugin(ShelfPlugin(), name="shelf-under-test")
    yield SHELVES
    SHELVES.clear()


HOLIDAYS = b"# Holidays\n\nEvery employee gets twenty-five days of paid holiday a year.\n\n" \
           b"# Parking\n\nThe car park opens at seven in the morning and closes at nine at night."


def test_a_knowledge_base_on_a_third_party_store_works_end_to_end(client, database, shelf):
    from privex.models import Chunk

    owner = sign_up(client)
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "on the shelf", "vector_store": "shelf"})
    assert kb.status_code == 201, kb.get_json()
    kb = kb.get_json()
    [document] = owner.post(f"{API}/knowledge-bases/{kb['id']}/documents/upload",
                            data={"file": (io.BytesIO(HOLIDAYS), "handbook.md")},
                            content_type="multipart/form-data").get_json()
    document = owner.get(f"{API}/documents/{document['id']}").get_json()
    assert document["status"] == "indexed", document
    stored = len(shelf[kb["id"]])
    assert stored >= 2 and document["chunks_total"] == stored
    assert database.session.query(Chunk).filter_by(knowledge_base_id=kb["id"]).count() == 0  # not in our table

    chunks = owner.get(f"{API}/documents/{document['id']}/chunks?page_size=1")
    assert chunks.status_code == 200 and len(chunks.get_json()) == 1 and chunks.get_json()[0]["position"] == 0
    assert json.loads(chunks.headers["X-Pagination"])["total"] == stored
    analytics = owner.get(f"{API}/knowledge-bases/{kb['id']}/analytics").get_json()
    assert analytics["chunks"] == stored and analytics["documents"]["indexed"] == 1
    assert owner.get(f"{API}/documents/{document['id']}/analytics").get_json()["chunks"] == stored

    for mode in ("vector", "keyword", "hybrid"):
        hits = owner.post(f"{API}/knowledge-bases/{kb['id']}/query",
                          json={"query": "how many days of paid holiday", "mode": mode, "top_k": 1}).get_json()
        assert hits["hits"][0]["document_name"] == "handbook.md", (mode, hits)
        assert "twenty-five days" in hits["hits"][0]["text"], (mode, hits)

    bot = owner.post(f"{API}/chatbots", json={"name": "shelf bot", "knowledge_base_ids": [kb["id"]]}).get_json()
    answer = owner.post(f"{API}/chatbots/{bot['id']}/test", json={"message": "How many days of holiday?"}).get_json()
    assert "twenty-five" in answer["answer"] and answer["citations"][0]["document_name"] == "handbook.md"

    reindexed = owner.post(f"{API}/documents/{document['id']}/reindex")
    assert reindexed.status_code == 202 and len(shelf[kb["id"]]) == stored  # replaced, not doubled

    assert owner.delete(f"{API}/documents/{document['id']}").status_code == 204
    assert owner.get(f"{API}/knowledge-bases/{kb['id']}/analytics").get_json()["chunks"] == 0
    assert owner.delete(f"{API}/knowledge-bases/{kb['id']}").status_code == 204
    assert kb["id"] not in shelf
