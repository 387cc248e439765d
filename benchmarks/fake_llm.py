"""A fake OpenAI-compatible LLM server for the chat benchmark: ``POST /v1/chat/completions`` with ``stream: true``
answers at once with a 12-word answer citing ``[1]`` in six ``delta`` chunks, a chunk with the finish reason, a usage
chunk and ``data: [DONE]``, so that what the benchmark measures is the platform, not a model. ``GET /health`` says
it is up.

``python -m benchmarks.fake_llm PORT`` serves it on 127.0.0.1 (a thread per connection) until stopped.
"""

from __future__ import annotations

import functools
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = ["Employees ", "receive ", "27 days ", "of annual leave ", "a year, ", "see [1]."]


class FakeOpenAI(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions`` with ``stream: true``: the whole streamed answer at once."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as model servers set it: the headers and the body go out in two writes, and on a kept-alive
    # connection Nagle's algorithm held the body back until the client's delayed ACK of the headers (40 ms).
    disable_nagle_algorithm = True

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions" or not body.get("stream"):
            self.send_error(404)
            return
        data = _answer(str(body.get("model", "bench")))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - the benchmark waits for this before starting
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 - one line per request would cost more than the answer
        pass


@functools.lru_cache(maxsize=64)
def _answer(model: str) -> bytes:
    """The streamed answer's bytes for ``model``, made once: this server shares the cores with what is measured."""
    chunks = [{"id": "bench", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in ANSWER]
    chunks.append({"id": "bench", "object": "chat.completion.chunk", "model": model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"id": "bench", "object": "chat.completion.chunk", "model": model, "choices": [],
                   "usage": {"prompt_tokens": 600, "completion_tokens": 16, "total_tokens": 616}})
    return ("".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n").encode()


def serve(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeOpenAI)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
