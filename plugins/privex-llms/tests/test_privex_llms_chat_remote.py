"""The ``ollama`` and ``openai`` LLM providers against a local server that streams their real wire format chunk by
chunk (a werkzeug Response over a generator): Ollama's newline-delimited JSON from ``/api/chat`` (Secret AI's is the
same behind a bearer key) and OpenAI's server-sent events from ``/v1/chat/completions``. The pause between
attempts is recorded instead of slept."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug import Request, Response

from privex.contracts import ProviderError
from privex_llms.chat.ollama import OllamaProvider
from privex_llms.chat.openai import OpenAIProvider
from privex_llms.chat.tokens import count_tokens

QUESTION = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hello to the world."}]
PIECES = ["Hello", ", wor", "ld", "!"]
PROVIDER_USAGE = {"prompt_tokens": 26, "completion_tokens": 7, "total_tokens": 33, "estimated": False}


@dataclass(frozen=True)
class Api:
    name: str
    provider_class: type
    prefix: str  # of base_url on the test server
    path: str  # where the provider posts
    content_type: str

    def parts(self, pieces: list[str], *, usage: bool = True, finish: str = "stop", model: str = "m") -> list[bytes]:
        """What the server writes, one network write each, for an answer made of ``pieces``."""
        if self.name == "ollama":
            chunks = [{"model": model, "created_at": "2025-01-06T10:00:00.1Z",
                       "message": {"role": "assistant", "content": piece}, "done": False} for piece in pieces]
            last = {"model": model, "created_at": "2025-01-06T10:00:01.9Z",
                    "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": finish,
                    "total_duration": 4883583458, "load_duration": 1334875, "eval_duration": 4535599000}
            if usage:
                last |= {"prompt_eval_count": 26, "prompt_eval_duration": 342546000, "eval_count": 7}
            return [json.dumps(chunk).encode() + b"\n" for chunk in [*chunks, last]]

        def chunk(choices, **extra):
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1736157600, "model": model,
                    "system_fingerprint": "fp_1", "choices": choices, **({"usage": None} if usage else {}), **extra}

        def choice(delta, finish_reason=None):
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

        events = [chunk(choice({"role": "assistant", "content": ""})),
                  *(chunk(choice({"content": piece})) for piece in pieces),
                  chunk(choice({}, finish))]
        if usage:
            events.append(chunk([], usage={"prompt_tokens": 26, "completion_tokens": 7, "total_tokens": 33}))
        return [b"data: " + json.dumps(event).encode() + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]

    def malformed_line(self) -> bytes:
        return b"this is not json\n" if self.name == "ollama" else b'data: {"choices": [{"delta": \n\n'

    def error_line(self, message: str) -> bytes:
        if self.name == "ollama":
            return json.dumps({"error": message}).encode() + b"\n"
        return b"data: " + json.dumps({"error": {"message": message, "type": "server_error"}}).encode() + b"\n\n"


APIS = [Api("ollama", OllamaProvider, "", "/api/chat", "application/x-ndjson"),
        Api("openai", OpenAIProvider, "/v1", "/v1/chat/completions", "text/event-stream")]


@pytest.fixture(params=APIS, ids=lambda api: api.name)
def api(request) -> Api:
    return request.param


@pytest.fixture()
def pauses() -> list[float]:
    return []


@pytest.fixture()
def provider(api, pauses):
    return api.provider_class(sleep=pauses.append)


def streamed(api: Api, parts: list[bytes], *, before: Callable[[], None] = lambda: None,
             between: Callable[[bytes], None] = lambda part: None, length: int | None = None,
             finished: threading.Event | None = None) -> Callable[[Request], Response]:
    """A handler writing ``parts`` one at a time, calling ``before`` first (the status line goes out with the first
    part) and ``between`` after each. ``length`` declares a Content-Length larger than what is sent, so the client
    sees the connection break. ``finished`` is set when the body is done."""
    def handler(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            try:
                before()
                for part in parts:
                    yield part
                    between(part)
            finally:
                if finished is not None:
                    finished.set()

        headers = {"Content-Length": str(length)} if length is not None else {}
        return Response(body(), content_type=api.content_type, headers=headers)

    return handler


class Stall:
    """Makes the server hang until the test is over; the test then waits for it to finish, so the (single-threaded)
    server is free for the next test and logs nothing into it."""

    def __init__(self):
        self.release, self.finished = threading.Event(), threading.Event()

    def __call__(self, *args) -> None:
        self.release.wait(5)

    def end(self) -> None:
        self.release.set()
        assert self.finished.wait(5)


@pytest.fixture()
def stall():
    hanging = Stall()
    yield hanging
    hanging.end()


def settings(api: Api, httpserver, **params) -> dict:
    return {"base_url": httpserver.url_for(api.prefix), "model": "m", **params}


def bodies(httpserver) -> list[dict]:
    return [json.loads(request.data) for request, _response in httpserver.log]


def collect(events: Iterator[dict], into: list[dict]) -> None:
    for event in events:
        into.append(event)


def text_of(events: list[dict]) -> str:
    return "".join(event["text"] for event in events if event["type"] == "delta")


def test_deltas_arrive_in_order_as_the_server_sends_them(api, httpserver, provider):
    # The server holds the rest of the answer back until the test has seen the first delta: a client that read
    # the whole body before yielding would leave it waiting (and released would record False).
    gate, released = threading.Event(), []

    def hold(part: bytes) -> None:
        if b'"Hello"' in part:
            released.append(gate.wait(5))

    httpserver.expect_request(api.path, method="POST").respond_with_handler(
        streamed(api, api.parts(PIECES), between=hold))
    events = provider.chat(QUESTION, settings(api, httpserver))
    assert next(events) == {"type": "delta", "text": "Hello"}
    gate.set()
    rest = list(events)
    assert released == [True]
    assert [event["text"] for event in rest[:-1]] == [", wor", "ld", "!"]
    assert text_of(rest) == ", world!"
    assert rest[-1] == {"type": "done", "usage": PROVIDER_USAGE, "model": "m", "finish_reason": "stop"}


def test_ollama_is_asked_for_a_stream_with_its_options(httpserver):
    api = APIS[0]
    httpserver.expect_request("/api/chat").respond_with_handler(streamed(api, api.parts(PIECES)))
    events = list(OllamaProvider().chat(QUESTION, settings(api, httpserver, model="llama3.2", temperature=0.2,
                                                            max_tokens=50)))
    assert text_of(events) == "Hello, world!"
    (request, _), = httpserver.log
    assert json.loads(request.data) == {"model": "llama3.2", "messages": QUESTION, "stream": True,
                                        "options": {"temperature": 0.2, "num_predict": 50}}
    assert "Authorization" not in request.headers  # a local Ollama needs no key


def test_openai_is_asked_for_a_stream_with_usage(httpserver):
    api = APIS[1]
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(streamed(api, api.parts(PIECES)))
    events = list(OpenAIProvider().chat(QUESTION, settings(api, httpserver, model="gpt-4o-mini", top_p=0.9,
                                                            max_tokens=50, api_key="sk-test")))
    assert text_of(events) == "Hello, world!"
    (request, _), = httpserver.log
    assert json.loads(request.data) == {"model": "gpt-4o-mini", "messages": QUESTION, "stream": True,
                                        "stream_options": {"include_usage": True}, "top_p": 0.9, "max_tokens": 50}
    assert request.headers["Authorization"] == "Bearer sk-test"


def test_secret_ai_gets_its_api_key_as_a_bearer_token(httpserver):
    # Secret AI's confidential endpoints speak Ollama's API under a path of their own; base_url keeps it.
    api = APIS[0]
    httpserver.expect_request("/secret/api/chat").respond_with_handler(streamed(api, api.parts(PIECES)))
    params = {"base_url": httpserver.url_for("/secret"), "model": "deepseek-r1:70b", "api_key": "sk-secret-ai"}
    events = list(OllamaProvider().chat(QUESTION, params))
    assert text_of(events) == "Hello, world!"
    (request, _), = httpserver.log
    assert request.headers["Authorization"] == "Bearer sk-secret-ai"
    assert json.loads(request.data)["model"] == "deepseek-r1:70b"


def test_usage_is_estimated_when_the_server_sends_none(api, httpserver, provider):
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, api.parts(PIECES, usage=False)))
    *deltas, last = provider.chat(QUESTION, settings(api, httpserver))
    usage = last["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == count_tokens("Hello, world!") > 0
    # The prompt is at least the messages' own words, plus a few tokens of chat formatting per message.
    words = sum(len(message["content"].split()) for message in QUESTION)
    assert words < usage["prompt_tokens"] < 4 * words
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_ollama_counts_it_gives_are_kept_and_only_the_missing_one_estimated(httpserver):
    api = APIS[0]
    parts = api.parts(PIECES, usage=False)
    last = json.loads(parts[-1]) | {"eval_count": 7}  # no prompt_eval_count: Ollama had the prompt cached
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, [*parts[:-1], json.dumps(last).encode()]))
    usage = list(OllamaProvider().chat(QUESTION, settings(api, httpserver)))[-1]["usage"]
    assert usage["completion_tokens"] == 7 and usage["estimated"] is True and usage["prompt_tokens"] > 0


def test_openai_without_usage_requested_leaves_stream_options_out(httpserver):
    api = APIS[1]
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, api.parts(PIECES, usage=False)))
    events = list(OpenAIProvider().chat(QUESTION, settings(api, httpserver, include_usage=False)))
    assert "stream_options" not in bodies(httpserver)[0]
    assert events[-1]["usage"]["estimated"] is True and text_of(events) == "Hello, world!"


def test_openai_skips_comments_and_other_fields_and_reports_why_it_stopped(httpserver):
    api = APIS[1]
    parts = api.parts(["Cut", " short"], finish="length", model="gpt-4o-mini-2024-07-18")
    parts = [b": keep-alive\n\n", b"event: message\nid: 1\n" + parts[0], *parts[1:]]
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, parts))
    events = list(OpenAIProvider().chat(QUESTION, settings(api, httpserver, max_tokens=2)))
    assert text_of(events) == "Cut short"
    assert events[-1] == {"type": "done", "usage": PROVIDER_USAGE, "model": "gpt-4o-mini-2024-07-18",
                          "finish_reason": "length"}


@pytest.mark.parametrize("keyed", [True, False], ids=["wrong-key", "no-key"])
def test_a_refused_api_key_is_a_clear_502_and_not_retried(api, httpserver, provider, pauses, keyed):
    httpserver.expect_request(api.path).respond_with_json({"error": {"message": "invalid api key"}}, status=401)
    params = settings(api, httpserver, **({"api_key": "sk-wrong"} if keyed else {}))
    with pytest.raises(ProviderError) as raised:
        list(provider.chat(QUESTION, params))
    message = str(raised.value)
    assert f"{api.name} at http://" in message and "answered 401 UNAUTHORIZED: invalid api key" in message
    hint = "the API key was refused: check api_key" if keyed else "the server wants an API key: set api_key"
    assert hint in message
    assert (raised.value.status, raised.value.transient) == (502, False)
    assert len(httpserver.log) == 1 and pauses == []
    assert "sk-wrong" not in message


def test_a_rate_limit_is_retried_after_the_pause_retry_after_asks_for(api, httpserver, provider, pauses):
    httpserver.expect_oneshot_request(api.path).respond_with_json({"error": "rate limited"}, status=429,
                                                                  headers={"Retry-After": "2"})
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, api.parts(PIECES)))
    events = list(provider.chat(QUESTION, settings(api, httpserver)))
    assert text_of(events) == "Hello, world!" and events[-1]["type"] == "done"
    assert pauses == [2.0] and len(httpserver.log) == 2


def test_server_errors_on_every_attempt_are_a_transient_502(api, httpserver, provider, pauses):
    httpserver.expect_request(api.path).respond_with_data("upstream exploded", status=500)
    with pytest.raises(ProviderError, match=r"answered 500 INTERNAL SERVER ERROR: upstream exploded "
                                            r"\(after 3 attempts\)") as raised:
        list(provider.chat(QUESTION, settings(api, httpserver)))
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert len(httpserver.log) == 3 and pauses == [0.5, 1.0]


def test_an_unreachable_server_is_retried_then_a_transient_502(api, provider, pauses):
    with socket.socket() as sock:  # a port nobody listens on once this block closes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError, match=r"could not be reached: .* \(after 3 attempts\)") as raised:
        list(provider.chat(QUESTION, {"base_url": f"http://127.0.0.1:{port}{api.prefix}"}))
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert pauses == [0.5, 1.0]


def test_no_answer_in_time_is_a_504(api, httpserver, provider, pauses, stall):
    httpserver.expect_request(api.path).respond_with_handler(
        streamed(api, api.parts(PIECES), before=stall, finished=stall.finished))
    with pytest.raises(ProviderError, match=r"did not answer within 0.1 s") as raised:
        list(provider.chat(QUESTION, settings(api, httpserver, timeout=0.1)))
    assert (raised.value.status, raised.value.transient) == (504, True)
    assert len(httpserver.log) == 1 and pauses == []  # not retried


def test_a_stall_in_the_middle_of_the_answer_is_a_504_after_what_came(api, httpserver, provider, pauses, stall):
    def hang_after_hello(part: bytes) -> None:
        if b'"Hello"' in part:
            stall()

    httpserver.expect_request(api.path).respond_with_handler(
        streamed(api, api.parts(PIECES), between=hang_after_hello, finished=stall.finished))
    received: list[dict] = []
    with pytest.raises(ProviderError, match=r"stopped in the middle of its answer: nothing more within 0.2 s") \
            as raised:
        collect(provider.chat(QUESTION, settings(api, httpserver, timeout=0.2)), received)
    assert received == [{"type": "delta", "text": "Hello"}]
    assert (raised.value.status, raised.value.transient) == (504, True)
    assert len(httpserver.log) == 1 and pauses == []


def test_a_connection_broken_after_the_first_delta_is_not_retried(api, httpserver, provider, pauses):
    # A retry would send "Hello" a second time: the caller has already shown it.
    parts = api.parts(PIECES)
    first = next(i for i, part in enumerate(parts) if b'"Hello"' in part)
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, parts[:first + 1], length=100_000))
    received: list[dict] = []
    with pytest.raises(ProviderError, match=r"broke off its answer") as raised:
        collect(provider.chat(QUESTION, settings(api, httpserver)), received)
    assert received == [{"type": "delta", "text": "Hello"}]
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert len(httpserver.log) == 1 and pauses == []


def test_a_connection_broken_before_the_first_delta_is_retried(api, httpserver, provider, pauses):
    parts = api.parts(PIECES)
    before_text = [part for part in parts[:1] if b'"Hello"' not in part]  # OpenAI's role-only first chunk
    httpserver.expect_oneshot_request(api.path).respond_with_handler(streamed(api, before_text, length=100_000))
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, parts))
    events = list(provider.chat(QUESTION, settings(api, httpserver)))
    assert text_of(events) == "Hello, world!"  # once
    assert len(httpserver.log) == 2 and pauses == [0.5]


def test_a_stream_that_ends_without_its_last_chunk_is_a_transient_502(api, httpserver, provider, pauses):
    parts = api.parts(PIECES)
    last_text = max(i for i, part in enumerate(parts) if b'"!"' in part)
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, parts[:last_text + 1]))
    received: list[dict] = []
    with pytest.raises(ProviderError, match=r"ended its answer before it was complete, after 13 characters") \
            as raised:
        collect(provider.chat(QUESTION, settings(api, httpserver)), received)
    assert text_of(received) == "Hello, world!"
    assert (raised.value.status, raised.value.transient) == (502, True)
    assert len(httpserver.log) == 1


def test_a_malformed_stream_line_is_a_502(api, httpserver, provider, pauses):
    parts = api.parts(PIECES)
    httpserver.expect_request(api.path).respond_with_handler(
        streamed(api, [parts[0], api.malformed_line(), *parts[1:]]))
    with pytest.raises(ProviderError, match=r"model 'm' sent a stream line that is not a JSON object") as raised:
        list(provider.chat(QUESTION, settings(api, httpserver)))
    assert (raised.value.status, raised.value.transient) == (502, False)
    assert len(httpserver.log) == 1 and pauses == []


@pytest.mark.parametrize("line", [b'{"message": {"content": 42}, "done": false}\n', b'[1, 2]\n'],
                         ids=["content-not-text", "not-an-object"])
def test_an_ollama_chunk_of_the_wrong_shape_is_a_502(httpserver, line):
    api = APIS[0]
    httpserver.expect_request(api.path).respond_with_handler(streamed(api, [line]))
    with pytest.raises(ProviderError, match=r"ollama model 'm' sent a") as raised:
        list(OllamaProvider().chat(QUESTION, settings(api, httpserver)))
    assert raised.value.status == 502


def test_an_error_reported_in_the_stream_is_quoted(api, httpserver, provider):
    parts = api.parts(PIECES)
    httpserver.expect_request(api.path).respond_with_handler(
        streamed(api, [*parts[:2], api.error_line("model runner has unexpectedly stopped")]))
    with pytest.raises(ProviderError, match=r"model 'm' failed while answering: model runner has unexpectedly "
                                            r"stopped") as raised:
        list(provider.chat(QUESTION, settings(api, httpserver)))
    assert raised.value.status == 502


class KeepAliveServer(ThreadingHTTPServer):
    """A server that keeps connections open between requests (HTTP/1.1, as model servers do) and counts the
    connections it was opened: each request answers ``parts`` as one chunked body."""

    daemon_threads = True

    def __init__(self, api: Api, parts: list[bytes]):
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                server.connections += 1

            def do_POST(self):  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", api.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in parts:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, format, *args):  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_answers_reuse_the_connection_to_the_model_server(api, provider):
    # Stopping at the last chunk and closing the response closed the connection too: every answer paid a new one,
    # and against a remote provider a TLS handshake.
    server = KeepAliveServer(api, api.parts(PIECES))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        params = {"base_url": f"http://127.0.0.1:{server.server_port}{api.prefix}", "model": "m"}
        for _ in range(3):
            assert text_of(list(provider.chat(QUESTION, params))) == "Hello, world!"
        assert server.connections == 1
    finally:
        server.shutdown()
        server.server_close()


def test_a_cookie_a_model_server_sets_is_never_sent_back(api, httpserver, provider):
    # One client serves every bot of the process, whatever its tenant: a cookie kept from one call would go with the
    # next bot's call to the same server.
    def answer(request: Request) -> Response:
        response = streamed(api, api.parts(PIECES))(request)
        response.set_cookie("session", "tenant-a-secret")
        return response

    httpserver.expect_request(api.path).respond_with_handler(answer)
    for _ in range(2):
        assert text_of(list(provider.chat(QUESTION, settings(api, httpserver)))) == "Hello, world!"
    assert [request.headers.get("Cookie") for request, _ in httpserver.log] == [None, None]
