"""How both remote embedding models (Ollama and OpenAI-compatible) fail: retries with backoff on 429 / 5xx /
connection errors (``Retry-After`` honoured up to 10 s), and every failure a ``ProviderError`` with the status and
transience the core answers with. The pause between attempts is recorded instead of slept."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import pytest
from werkzeug import Request, Response

from privex.contracts import ProviderError
from privex_llms.embeddings.ollama import OllamaEmbedding
from privex_llms.embeddings.openai import OpenAIEmbedding


@dataclass(frozen=True)
class Api:
    name: str
    embedding_class: type
    prefix: str  # of base_url on the test server
    path: str  # what the model posts to

    def answer(self, request: Request) -> Response:
        inputs = json.loads(request.data)["input"]
        vectors = [[0.25, 0.5, float(i)] for i in range(len(inputs))]
        if self.name == "ollama":
            body = {"model": "m", "embeddings": vectors}
        else:
            body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}
        return Response(json.dumps(body), content_type="application/json")


APIS = [Api("ollama", OllamaEmbedding, "", "/api/embed"), Api("openai", OpenAIEmbedding, "/v1", "/v1/embeddings")]


@pytest.fixture(params=APIS, ids=lambda api: api.name)
def api(request) -> Api:
    return request.param


@pytest.fixture()
def pauses() -> list[float]:
    return []


@pytest.fixture()
def embedding(api, httpserver, pauses):
    return api.embedding_class(base_url=httpserver.url_for(api.prefix), api_key="sk-test", sleep=pauses.append)


def test_a_server_error_is_retried_after_a_pause(api, httpserver, embedding, pauses):
    httpserver.expect_oneshot_request(api.path).respond_with_data("upstream exploded", status=500)
    httpserver.expect_request(api.path).respond_with_handler(api.answer)
    assert embedding.get_text_embedding("hello") == [0.25, 0.5, 0.0]
    assert len(httpserver.log) == 2 and pauses == [0.5]


def test_a_rate_limit_waits_as_long_as_retry_after_says(api, httpserver, embedding, pauses):
    httpserver.expect_oneshot_request(api.path).respond_with_json(
        {"error": "rate limited"}, status=429, headers={"Retry-After": "3"})
    httpserver.expect_request(api.path).respond_with_handler(api.answer)
    assert embedding.get_text_embedding("hello") == [0.25, 0.5, 0.0]
    assert pauses == [3.0]


def test_retry_after_is_honoured_up_to_ten_seconds(api, httpserver, embedding, pauses):
    httpserver.expect_oneshot_request(api.path).respond_with_data("slow down", status=429,
                                                                  headers={"Retry-After": "120"})
    httpserver.expect_request(api.path).respond_with_handler(api.answer)
    embedding.get_text_embedding("hello")
    assert pauses == [10.0]


def test_server_errors_on_every_attempt_are_a_transient_502(api, httpserver, embedding, pauses):
    httpserver.expect_request(api.path).respond_with_json({"error": "model is loading"}, status=503)
    with pytest.raises(ProviderError, match=r"answered 503 SERVICE UNAVAILABLE: model is loading "
                                            r"\(after 3 attempts\)") as raised:
        embedding.get_text_embedding("hello")
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert len(httpserver.log) == 3 and pauses == [0.5, 1.0]  # exponential backoff


def test_a_rejected_key_is_not_retried(api, httpserver, embedding, pauses):
    httpserver.expect_request(api.path).respond_with_json({"error": {"message": "invalid api key"}}, status=401)
    with pytest.raises(ProviderError, match=rf"{api.name} at http://\S+{api.path} answered 401 UNAUTHORIZED: "
                                            r"invalid api key") as raised:
        embedding.get_text_embedding("hello")
    assert (raised.value.status, raised.value.transient) == (502, False)
    assert len(httpserver.log) == 1 and pauses == []
    assert "sk-test" not in str(raised.value)


def test_no_answer_in_time_is_a_transient_504(api, httpserver, pauses):
    def too_slow(request):
        time.sleep(0.5)
        return api.answer(request)

    httpserver.expect_request(api.path).respond_with_handler(too_slow)
    embedding = api.embedding_class(base_url=httpserver.url_for(api.prefix), timeout=0.1, sleep=pauses.append)
    with pytest.raises(ProviderError, match=r"did not answer within 0.1 s") as raised:
        embedding.get_text_embedding("hello")
    assert (raised.value.status, raised.value.transient) == (504, True)


def test_an_answer_that_is_not_json_is_a_provider_error(api, httpserver, embedding):
    httpserver.expect_request(api.path).respond_with_data("<html>502 Bad Gateway</html>", status=200,
                                                          content_type="text/html")
    with pytest.raises(ProviderError, match=r"answered with something that is not JSON: <html>502") as raised:
        embedding.get_text_embedding("hello")
    assert (raised.value.status, raised.value.transient) == (502, False)


def test_an_unreachable_server_is_retried_then_a_transient_502(api, pauses):
    with socket.socket() as sock:  # a port nobody listens on once this block closes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    embedding = api.embedding_class(base_url=f"http://127.0.0.1:{port}{api.prefix}", sleep=pauses.append)
    with pytest.raises(ProviderError, match=r"could not be reached: .* \(after 3 attempts\)") as raised:
        embedding.get_text_embedding("hello")
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert pauses == [0.5, 1.0]


def test_no_texts_make_no_request(api, httpserver, embedding):
    assert embedding.get_text_embedding_batch([]) == []
    assert httpserver.log == []
