"""What the remote embedding models (Ollama, OpenAI-compatible) share: batching, the HTTP client, and checking that
an answer holds one well-formed vector per text before anything is stored.

A subclass says how to ask (``_request``) and where the vectors are in the answer (``_vectors``); it raises
``ProviderError`` for an answer of the wrong shape. Everything else lives here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

from llama_index.core.base.embeddings.base import Embedding
from pydantic import Field, PrivateAttr

from privex.contracts import ProviderError
from privex_llms.settings import setting
from privex_llms.embeddings.threaded import ThreadedEmbedding
from privex_llms.provider_client import ProviderClient


class RemoteEmbedding(ThreadedEmbedding):
    """An embedding model behind an HTTP API. ``dimension``, when set, is asked for (where the API can) and every
    vector is checked against it; ``api_key`` is sent as ``Authorization: Bearer`` and never serialised."""

    provider: ClassVar[str] = "remote"

    base_url: str
    api_key: str | None = Field(default=None, exclude=True, repr=False)
    dimension: int | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0)

    _client: ProviderClient = PrivateAttr()
    _length: int | None = PrivateAttr(default=None)  # of the first vector this instance got back

    def __init__(self, *, model: str, batch_size: int, sleep: Callable[[float], Any] = time.sleep, **data: Any):
        super().__init__(model_name=model, embed_batch_size=batch_size, **data)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = ProviderClient(self.provider, self.base_url, timeout=self.timeout, headers=headers,
                                      sleep=sleep)

    @property
    def client(self) -> ProviderClient:
        return self._client

    def _request(self, texts: list[str]) -> tuple[str, dict[str, Any]]:
        """The path (relative to ``base_url``) and JSON body that ask for the vectors of ``texts``."""
        raise NotImplementedError

    def _vectors(self, answer: Any, count: int) -> list[Any]:
        """The vectors in ``answer``, in the order of the texts asked for; ProviderError when they are missing."""
        raise NotImplementedError

    def malformed(self, problem: str) -> ProviderError:
        return ProviderError(f"{self.provider} model {self.model_name!r} answered malformed embeddings: {problem}",
                             status=502)

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        path, body = self._request(texts)
        vectors = self._vectors(self._client.post_json(path, body), len(texts))
        if len(vectors) != len(texts):
            raise self.malformed(f"{len(vectors)} vectors for {len(texts)} texts")
        return [self._checked(vector) for vector in vectors]

    def _checked(self, vector: Any) -> list[float]:
        if not isinstance(vector, list) or not vector:
            raise self.malformed(f"a vector is {type(vector).__name__} {str(vector)[:40]}, not a list of numbers")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
            raise self.malformed("a vector holds something that is not a finite number")
        if self.dimension is not None and len(vector) != self.dimension:
            raise ProviderError(f"{self.provider} model {self.model_name!r} returns {len(vector)}-dimension vectors, "
                                f"but {self.dimension} are configured", status=502)
        # Across requests too: LlamaIndex sends one batch per call, and one knowledge base needs one length.
        if self._length is None:
            self._length = len(vector)
        elif len(vector) != self._length:
            lengths = sorted({self._length, len(vector)})
            raise self.malformed(f"vectors of different lengths ({', '.join(map(str, lengths))})")
        return [float(x) for x in vector]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.embed_batch_size):
            vectors.extend(self._embed_batch(texts[start:start + self.embed_batch_size]))
        return vectors

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embeddings([query])[0]


def remote_settings(*, base_url: str, model: str, batch_size: int, api_key: str) -> dict[str, dict[str, Any]]:
    """The ``config_schema`` properties of a remote embedding model, with its defaults and what its key is for."""
    return {
        "base_url": setting("string", base_url, "Where the server's API is", minLength=1, pattern=r"^https?://\S+$",
                            patternDescription="be an http:// or https:// URL"),
        "model": setting("string", model, "The embedding model's name on that server", minLength=1),
        "api_key": setting(["string", "null"], None, api_key, writeOnly=True),
        "dimension": setting(["integer", "null"], None, "Vector length; asked for where the API can, and every "
                             "vector is checked against it", minimum=1),
        "batch_size": setting("integer", batch_size, "Texts per request", minimum=1, maximum=2048),
        "timeout": setting("number", 60, "Seconds to wait for an answer", exclusiveMinimum=0),
    }
