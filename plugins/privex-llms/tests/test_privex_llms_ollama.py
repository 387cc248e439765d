"""The ``ollama`` embedding model against a local HTTP server speaking Ollama's real ``/api/embed`` JSON (and Secret
AI's, which is the same API behind a bearer token)."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

from privex.contracts import ProviderError
from privex_llms.embeddings import ollama

MODEL = ollama.MODEL


def vector_of(text: str) -> list[float]:
    """A fake 3-dimension vector that says which text it belongs to: "text 7" -> [7.0, 1.0, 0.5]."""
    return [float(text.split()[-1]), 1.0, 0.5]


def ollama_answer(request: Request) -> Response:
    body = json.loads(request.data)
    answer = {"model": body["model"], "embeddings": [vector_of(text) for text in body["input"]],
              "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}
    return Response(json.dumps(answer), content_type="application/json")


def requests_of(httpserver) -> list[tuple[Request, dict]]:
    return [(request, json.loads(request.data)) for request, _response in httpserver.log]


def texts(count: int) -> list[str]:
    return [f"text {i}" for i in range(count)]


def test_embeds_with_the_real_request_and_answer(httpserver):
    httpserver.expect_request("/api/embed", method="POST").respond_with_handler(ollama_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/"), model="all-minilm")
    assert embedding.get_text_embedding_batch(texts(2)) == [[0.0, 1.0, 0.5], [1.0, 1.0, 0.5]]
    assert embedding.get_query_embedding("query 5") == [5.0, 1.0, 0.5]
    (first, body), (_, query_body) = requests_of(httpserver)
    assert body == {"model": "all-minilm", "input": ["text 0", "text 1"]}
    assert query_body == {"model": "all-minilm", "input": ["query 5"]}
    assert first.headers["Content-Type"] == "application/json"
    assert "Authorization" not in first.headers  # a local Ollama needs no key


def test_api_key_is_sent_as_a_bearer_token_for_secret_ai(httpserver):
    # Secret AI's confidential endpoints sit under a path of their own; base_url keeps it.
    httpserver.expect_request("/secret/api/embed", method="POST").respond_with_handler(ollama_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/secret"), api_key="sk-secret-ai")
    assert embedding.get_text_embedding("text 3") == [3.0, 1.0, 0.5]
    (request, body), = requests_of(httpserver)
    assert request.headers["Authorization"] == "Bearer sk-secret-ai"
    assert body == {"model": "nomic-embed-text", "input": ["text 3"]}


def test_inputs_are_sent_in_batches_and_come_back_in_order(httpserver):
    httpserver.expect_request("/api/embed", method="POST").respond_with_handler(ollama_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/"), batch_size=32)
    vectors = embedding.get_text_embedding_batch(texts(70))
    assert [vector[0] for vector in vectors] == [float(i) for i in range(70)]
    assert [len(body["input"]) for _, body in requests_of(httpserver)] == [32, 32, 6]


def test_configured_dimension_is_asked_for_and_checked(httpserver):
    httpserver.expect_request("/api/embed", method="POST").respond_with_handler(ollama_answer)
    assert MODEL.create(base_url=httpserver.url_for("/"), dimension=3).get_text_embedding("text 1") == [1, 1, .5]
    assert requests_of(httpserver)[0][1]["dimensions"] == 3
    with pytest.raises(ProviderError, match=r"returns 3-dimension vectors, but 768 are configured") as raised:
        MODEL.create(base_url=httpserver.url_for("/"), dimension=768).get_text_embedding("text 1")
    assert (raised.value.status, raised.value.transient) == (502, False)


def test_unknown_model_is_a_permanent_error_quoting_ollama(httpserver):
    httpserver.expect_request("/api/embed").respond_with_json(
        {"error": 'model "nope" not found, try pulling it first'}, status=404)
    with pytest.raises(ProviderError) as raised:
        MODEL.create(base_url=httpserver.url_for("/"), model="nope").get_text_embedding("text 1")
    assert (raised.value.status, raised.value.transient) == (502, False)
    assert "404 NOT FOUND" in str(raised.value).upper()
    assert 'model "nope" not found, try pulling it first' in str(raised.value)
    assert len(httpserver.log) == 1  # not retried


@pytest.mark.parametrize(("answer", "problem"), [
    ({"model": "m"}, r'no "embeddings" list'),
    ([[0.1, 0.2]], r'no "embeddings" list'),
    ({"embeddings": [[0.1, 0.2]]}, r"1 vectors for 2 texts"),
    ({"embeddings": [[0.1, 0.2], [0.1, 0.2, 0.3]]}, r"vectors of different lengths \(2, 3\)"),
    ({"embeddings": [[0.1, 0.2], []]}, r"a vector is list"),
    ({"embeddings": [[0.1, 0.2], "0.1,0.2"]}, r"a vector is str"),
    ({"embeddings": [[0.1, 0.2], [0.1, None]]}, r"a vector holds something that is not a finite number"),
])
def test_malformed_answers_are_provider_errors(httpserver, answer, problem):
    httpserver.expect_request("/api/embed").respond_with_json(answer)
    with pytest.raises(ProviderError, match=r"ollama model 'nomic-embed-text' answered malformed embeddings: "
                                            + problem) as raised:
        MODEL.create(base_url=httpserver.url_for("/")).get_text_embedding_batch(texts(2))
    assert raised.value.status == 502 and not raised.value.transient


def test_ragged_vectors_across_batches_are_caught(httpserver):
    answers = iter([[[0.1, 0.2]], [[0.1, 0.2, 0.3]]])
    httpserver.expect_request("/api/embed").respond_with_handler(
        lambda request: Response(json.dumps({"embeddings": next(answers)}), content_type="application/json"))
    embedding = MODEL.create(base_url=httpserver.url_for("/"), batch_size=1)
    with pytest.raises(ProviderError, match=r"vectors of different lengths \(2, 3\)"):
        embedding.get_text_embedding_batch(texts(2))
    assert len(httpserver.log) == 2
