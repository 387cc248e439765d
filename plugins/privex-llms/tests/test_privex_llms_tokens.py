"""Token estimates for answers whose provider gives no usage: a real tokenizer when one loads (tiktoken's
cl100k_base shipped in llama-index-core, else all-MiniLM-L6-v2's WordPiece), words × 1.3 when none does."""

from __future__ import annotations

import pytest

from privex_llms.chat import tokens

LONG = "Reimbursement claims are tokenized into subwords. " * 40


@pytest.fixture()
def fresh_choice(monkeypatch):
    """The tokenizer chosen afresh for one test, and the process's choice restored after it."""
    monkeypatch.setattr(tokens, "_count", None)


def test_counts_come_from_a_tokenizer_not_from_words():
    assert tokens.count_tokens("Hello, world!") == 4  # "Hello" "," " world" "!"
    assert tokens.count_tokens("") == 0
    # Long words split into several tokens: far more than the 1.3 per word a rule of thumb would say.
    assert tokens.count_tokens(LONG) > 1.6 * len(LONG.split())


def test_without_tiktoken_the_minilm_wordpiece_tokenizer_counts(fresh_choice, monkeypatch):
    monkeypatch.setattr(tokens, "_tiktoken", lambda: (_ for _ in ()).throw(ImportError("no tiktoken")))
    assert tokens.count_tokens("Hello, world!") == 4  # "hello" "," "world" "!": not padded to the model's 128
    assert tokens.count_tokens(LONG) > 1.6 * len(LONG.split())  # "reimbursement" is several word pieces
    assert tokens.count_tokens(LONG) > 128  # nor cut there


def test_without_any_tokenizer_words_count_for_1_3_tokens(fresh_choice, monkeypatch):
    def missing():
        raise ImportError("not installed")

    monkeypatch.setattr(tokens, "_tiktoken", missing)
    monkeypatch.setattr(tokens, "_wordpiece", missing)
    assert tokens.count_tokens("one two three four five six seven eight nine ten") == 13


def test_usage_keeps_the_counts_the_provider_gave():
    messages = [{"role": "user", "content": "How many vacation days do I get?"}]
    assert tokens.estimated_usage(messages, "Twenty-five.", prompt=12, completion=3) == {
        "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "estimated": False}
    partly = tokens.estimated_usage(messages, "Twenty-five.", prompt=None, completion=3)
    assert partly["completion_tokens"] == 3 and partly["prompt_tokens"] > 8 and partly["estimated"] is True
