"""Knowledge-base query ``filters`` (privex/services/filters.py): every operator of the grammar really filters, end to
end through the API, the retrieval service and the pgvector store; anything else is a 422 naming the key."""

from __future__ import annotations

import uuid

import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from privex.extensions import db
from privex.models import Document, KnowledgeBase
from privex.services import components
from tests.helpers import sign_up
from tests.test_knowledge_api import HANDBOOK, upload

API = "/api/v1"
# One chunk per document, each about invoices (so every one matches the query), with metadata of every kind.
LABELS = {
    "fr-2021": {"lang": "fr", "year": 2021, "public": True, "title": "Facture réglée", "score": 1.5},
    "de-2022": {"lang": "de", "year": 2022, "public": False, "title": "Rechnung", "score": 2},
    "en-2023": {"lang": "en", "year": 2023, "public": True, "title": "Invoice", "score": 2.0},
    "en-2024": {"lang": "en", "year": "2024", "title": "Invoice draft"},  # a year as text, no `public`
    "tagged": {"lang": ["en", "fr"], "year": 2025},  # a list is a value of its own, not its items
}


@pytest.fixture()
def owner(client):
    return sign_up(client, "fiona")


@pytest.fixture()
def labelled(app, owner):
    """A knowledge base (made through the API) holding one chunk per entry of LABELS, stored by its real store with
    real embeddings; returns its id and the document ids by label."""
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Invoices"}).get_json()
    knowledge_base = db.session.get(KnowledgeBase, uuid.UUID(kb["id"]))
    embed_model, store = components.searching(knowledge_base)
    documents, nodes = {}, []
    for label, metadata in LABELS.items():
        document = Document(workspace_id=knowledge_base.workspace_id, knowledge_base_id=knowledge_base.id,
                            name=f"{label}.md", status="indexed")
        db.session.add(document)
        db.session.flush()
        documents[label] = str(document.id)
        text = f"Invoice {label}: invoices are paid within thirty days."
        nodes.append(TextNode(text=text, metadata={"position": 0, **metadata},
                              embedding=embed_model.get_text_embedding(text),
                              relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=str(document.id))}))
    store.add(nodes)
    db.session.commit()
    return kb["id"], documents


def labels_found(owner, kb_id, documents, filters, mode="hybrid"):
    response = owner.post(f"{API}/knowledge-bases/{kb_id}/query",
                          json={"query": "invoices paid", "mode": mode, "top_k": 50, "filters": filters})
    assert response.status_code == 200, (filters, response.get_json())
    by_id = {document_id: label for label, document_id in documents.items()}
    return {by_id[hit["document_id"]] for hit in response.get_json()["hits"]}


EVERYTHING = set(LABELS)
FILTERS = [
    ({}, EVERYTHING),
    ({"lang": "en"}, {"en-2023", "en-2024"}),
    ({"lang": {"$eq": "en"}}, {"en-2023", "en-2024"}),
    ({"lang": ["fr", "de"]}, {"fr-2021", "de-2022"}),
    ({"lang": {"$in": ["fr", "de"]}}, {"fr-2021", "de-2022"}),
    ({"lang": {"$ne": "en"}}, {"fr-2021", "de-2022", "tagged"}),
    ({"lang": {"$nin": ["en", "fr"]}}, {"de-2022", "tagged"}),
    ({"year": 2022}, {"de-2022"}),
    ({"year": "2024"}, {"en-2024"}),  # text is not a number...
    ({"year": 2024}, set()),  # ...nor a number text
    ({"year": {"$gt": 2022}}, {"en-2023", "tagged"}),  # ranges match numbers only ("2024" is text)
    ({"year": {"$gte": 2022}}, {"de-2022", "en-2023", "tagged"}),
    ({"year": {"$lt": 2022}}, {"fr-2021"}),
    ({"year": {"$lte": 2022}}, {"fr-2021", "de-2022"}),
    ({"year": {"$gt": 2021, "$lt": 2023}}, {"de-2022"}),
    ({"score": 2}, {"de-2022", "en-2023"}),  # 2 equals 2.0
    ({"score": {"$in": [1.5, 2.0]}}, {"fr-2021", "de-2022", "en-2023"}),
    ({"score": {"$gt": 1.75}}, {"de-2022", "en-2023"}),
    ({"public": True}, {"fr-2021", "en-2023"}),
    ({"public": False}, {"de-2022"}),
    ({"public": {"$ne": True}}, {"de-2022", "en-2024", "tagged"}),  # and those without the key
    ({"title": "Facture réglée"}, {"fr-2021"}),
    ({"title": ["Facture réglée", "Rechnung"]}, {"fr-2021", "de-2022"}),  # non-ASCII in a list
    ({"title": {"$nin": ["Facture réglée", "Invoice"]}}, {"de-2022", "en-2024", "tagged"}),
    ({"lang": "en", "public": True}, {"en-2023"}),  # every key must match
    ({"lang": ["en", "fr"]}, {"fr-2021", "en-2023", "en-2024"}),  # "tagged" holds the list, not its items
    ({"lang": ["en", 1, True]}, {"en-2023", "en-2024"}),  # a list may mix types
    ({"missing": "x"}, set()),
    ({"missing": {"$ne": "x"}}, EVERYTHING),
]


def test_each_operator_really_filters_in_every_mode(owner, labelled):
    kb_id, documents = labelled
    for mode in ("hybrid", "vector", "keyword"):
        for filters, expected in FILTERS:
            assert labels_found(owner, kb_id, documents, filters, mode) == expected, (mode, filters)


def test_document_id_filters_name_documents(owner, labelled):
    kb_id, documents = labelled
    assert labels_found(owner, kb_id, documents, {"document_id": documents["de-2022"]}) == {"de-2022"}
    assert labels_found(owner, kb_id, documents, {"document_id": [documents["de-2022"], documents["tagged"]]}) == {
        "de-2022", "tagged"}
    assert labels_found(owner, kb_id, documents, {"document_id": {"$nin": [documents["de-2022"]]}}) == (
        EVERYTHING - {"de-2022"})
    assert labels_found(owner, kb_id, documents, {"document_id": str(uuid.uuid4())}) == set()


def test_uploaded_documents_are_filtered_by_what_their_parser_recorded(owner):
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Handbooks"}).get_json()
    upload(owner, kb["id"], ("handbook.md", HANDBOOK), ("copy.md", HANDBOOK))
    for filters, names in (({"file_name": "copy.md"}, {"copy.md"}),
                           ({"file_name": {"$ne": "copy.md"}}, {"handbook.md"}),
                           ({"heading": "Handbook > Security"}, {"handbook.md", "copy.md"}),
                           ({"source_type": "upload", "file_name": ["handbook.md"]}, {"handbook.md"})):
        hits = owner.post(f"{API}/knowledge-bases/{kb['id']}/query",
                          json={"query": "lost laptop", "top_k": 20, "filters": filters}).get_json()["hits"]
        assert {hit["document_name"] for hit in hits} == names, filters


REFUSED = [
    ({"a": [[1], {"b": 2}]}, "a", "Each value of the list must be a string, a number or a boolean"),
    ({"a": None}, "a", "not null"),
    ({"a": {"b": 2}}, "a", "Unknown operator 'b'"),
    ({"a": {"$regex": "x.*"}}, "a", "Unknown operator '$regex'"),
    ({"a": {"$exists": True}}, "a", "Unknown operator"),
    ({"a": {}}, "a", "An empty object"),
    ({"a": []}, "a", "a list of 1 to 100 values"),
    ({"a": list(range(101))}, "a", "a list of 1 to 100 values"),
    ({"a": {"$in": "x"}}, "a", "$in takes a list"),
    ({"a": {"$nin": [{"x": 1}]}}, "a", "not an object"),
    ({"a": {"$eq": [1]}}, "a", "$eq must be a string, a number or a boolean, not a list"),
    ({"a": {"$gt": "2020"}}, "a", "$gt compares numbers"),
    ({"a": {"$lte": True}}, "a", "$lte compares numbers"),
    ({"a": "x" * 501}, "a", "longer than 500"),
    ({"a b": 1}, "a b", "A metadata key is"),
    ({"": 1}, "", "A metadata key is"),
    ({"k" * 65: 1}, "k" * 65, "A metadata key is"),
    ({"document_id": "not-an-id"}, "document_id", "a document id"),
    ({"document_id": 7}, "document_id", "a document id"),
    ({"document_id": {"$gt": 1}}, "document_id", "takes only"),
]


@pytest.mark.parametrize("filters, key, words", REFUSED)
def test_anything_else_is_a_422_naming_the_key_and_what_is_allowed(owner, labelled, filters, key, words):
    kb_id, _documents = labelled
    response = owner.post(f"{API}/knowledge-bases/{kb_id}/query", json={"query": "x", "filters": filters})
    body = response.get_json()
    assert response.status_code == 422, (filters, body)
    assert list(body["errors"]) == ["filters"] and list(body["errors"]["filters"]) == [key], body
    assert words in body["errors"]["filters"][key][0], body


def test_too_many_keys_and_a_non_object_are_refused(owner, labelled):
    kb_id, _documents = labelled
    for filters in ({f"k{i}": 1 for i in range(21)}, ["a"], "a"):
        response = owner.post(f"{API}/knowledge-bases/{kb_id}/query", json={"query": "x", "filters": filters})
        assert response.status_code == 422 and "filters" in response.get_json()["errors"], filters


def test_the_grammar_is_documented_in_the_openapi_description(client):
    spec = client.get(f"{API}/openapi.json").get_json()
    described = spec["components"]["schemas"]["Query"]["properties"]["filters"]["description"]
    for operator in ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "document_id"):
        assert operator in described


def test_a_documents_own_labels_filter_its_chunks_and_relabelling_applies(owner):
    """Labels set on a document (PATCH /documents/{id} `metadata`) ride on its chunks; changing them rebuilds the
    chunks with the new ones, so a filter naming a label finds exactly the documents that carry it now."""
    kb = owner.post(f"{API}/knowledge-bases", json={"name": "Handbooks"}).get_json()
    first, second = upload(owner, kb["id"], ("handbook-a.md", HANDBOOK), ("handbook-b.md", HANDBOOK))
    assert owner.patch(f"{API}/documents/{first['id']}", json={"metadata": {"team": "sales"}}).status_code == 200

    def found(filters):
        hits = owner.post(f"{API}/knowledge-bases/{kb['id']}/query",
                          json={"query": "holiday", "top_k": 50, "filters": filters}).get_json()["hits"]
        return {hit["document_name"] for hit in hits}

    assert found({"team": "sales"}) == {"handbook-a.md"}
    assert found({"team": {"$ne": "sales"}}) == {"handbook-b.md"}
    owner.patch(f"{API}/documents/{first['id']}", json={"metadata": {"team": "support"}})
    owner.patch(f"{API}/documents/{second['id']}", json={"metadata": {"team": "sales"}})
    assert found({"team": "sales"}) == {"handbook-b.md"} and found({"team": "support"}) == {"handbook-a.md"}
    assert owner.get(f"{API}/documents/{first['id']}").get_json()["status"] == "indexed"
