"""The ``openai`` embedding model against a local HTTP server speaking the real OpenAI ``/v1/embeddings`` JSON."""

from __future__ import annotations

import json

import pytest
from werkzeug import Request, Response

from privex.contracts import ProviderError
from privex_llms.embeddings import openai

MODEL = openai.MODEL


def vector_of(text: str) -> list[float]:
    """A fake 3-dimension vector that says which text it belongs to: "text 7" -> [7.0, 1.0, 0.5]."""
    return [float(text.split()[-1]), 1.0, 0.5]


def openai_answer(request: Request) -> Response:
    body = json.loads(request.data)
    data = [{"object": "embedding", "index": i, "embedding": vector_of(text)} for i, text in enumerate(body["input"])]
    answer = {"object": "list", "data": data[::-1],  # any order: the index says where each belongs
              "model": body["model"], "usage": {"prompt_tokens": 4 * len(data), "total_tokens": 4 * len(data)}}
    return Response(json.dumps(answer), content_type="application/json")


def requests_of(httpserver) -> list[tuple[Request, dict]]:
    return [(request, json.loads(request.data)) for request, _response in httpserver.log]


def texts(count: int) -> list[str]:
    return [f"text {i}" for i in range(count)]


def test_embeds_with_the_real_request_and_puts_answers_in_index_order(httpserver):
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(openai_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/v1"), api_key="sk-test")
    assert embedding.get_text_embedding_batch(texts(3)) == [[0.0, 1.0, 0.5], [1.0, 1.0, 0.5], [2.0, 1.0, 0.5]]
    (request, body), = requests_of(httpserver)
    assert body == {"model": "text-embedding-3-small", "input": ["text 0", "text 1", "text 2"]}
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.headers["Content-Type"] == "application/json"


def test_dimension_is_sent_as_dimensions(httpserver):
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(openai_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/v1/"), api_key="sk-test", model="text-embedding-3-large",
                             dimension=3)
    assert embedding.get_query_embedding("text 9") == [9.0, 1.0, 0.5]
    assert requests_of(httpserver)[0][1] == {"model": "text-embedding-3-large", "input": ["text 9"], "dimensions": 3}


def test_servers_without_a_key_get_no_authorization_header(httpserver):
    httpserver.expect_request("/v1/embeddings").respond_with_handler(openai_answer)
    MODEL.create(base_url=httpserver.url_for("/v1")).get_text_embedding("text 1")
    assert "Authorization" not in requests_of(httpserver)[0][0].headers


def test_inputs_are_sent_in_batches_and_come_back_in_order(httpserver):
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(openai_answer)
    embedding = MODEL.create(base_url=httpserver.url_for("/v1"), api_key="sk-test", batch_size=25)
    vectors = embedding.get_text_embedding_batch(texts(60))
    assert [vector[0] for vector in vectors] == [float(i) for i in range(60)]
    assert [len(body["input"]) for _, body in requests_of(httpserver)] == [25, 25, 10]


def test_a_bad_key_is_a_permanent_error_quoting_openai(httpserver):
    httpserver.expect_request("/v1/embeddings").respond_with_json({"error": {
        "message": "Incorrect API key provided: sk-bad. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}, status=401)
    with pytest.raises(ProviderError) as raised:
        MODEL.create(base_url=httpserver.url_for("/v1"), api_key="sk-bad").get_text_embedding("text 1")
    assert (raised.value.status, raised.value.transient) == (502, False)
    assert "401 UNAUTHORIZED" in str(raised.value).upper() and "Incorrect API key provided" in str(raised.value)
    assert len(httpserver.log) == 1  # not retried


@pytest.mark.parametrize(("answer", "problem"), [
    ({"object": "list", "model": "m"}, r'no "data" list'),
    ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 1}]}, r'an item of "data" has no "embedding"'),
    ({"data": [{"index": 0, "embedding": [0.1]}]}, r"indexes \[0\] do not name each of the 2 inputs once"),
    ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]}, r"indexes \[0, 0\]"),
    ({"data": [{"index": "0", "embedding": [0.1]}, {"index": 1, "embedding": [0.2]}]}, r"indexes \['0', 1\]"),
    ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.2, 0.3]}]},
     r"vectors of different lengths \(1, 2\)"),
    ({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": "AAAA"}]}, r"a vector is str"),
])
def test_malformed_answers_are_provider_errors(httpserver, answer, problem):
    httpserver.expect_request("/v1/embeddings").respond_with_json(answer)
    with pytest.raises(ProviderError, match=r"openai model 'text-embedding-3-small' answered malformed embeddings: "
                                            + problem) as raised:
        MODEL.create(base_url=httpserver.url_for("/v1")).get_text_embedding_batch(texts(2))
    assert raised.value.status == 502 and not raised.value.transient
