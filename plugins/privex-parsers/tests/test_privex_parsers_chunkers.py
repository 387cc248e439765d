"""Chunkers: chunks bounded by their token budget with overlap, configuration checked, semantic cuts where the topic
changes, parent-child leaves carrying their parent, and all of it working with no network."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import Document, MetadataMode, NodeRelationship
from llama_index.core.utils import get_tokenizer

from privex_parsers.chunkers import CHUNKERS
from privex_parsers.files import MarkdownParser

CHUNKER = {chunker.name: chunker for chunker in CHUNKERS}
TEXT = " ".join(f"Sentence number {number} explains how feature {number % 7} behaves in detail."
                for number in range(300))


def tokens(text: str) -> int:
    return len(get_tokenizer()(text))


def shared_words(before: str, after: str) -> int:
    """How many words ``after`` repeats from the end of ``before``."""
    first, second = before.split(), after.split()
    return max((n for n in range(1, min(len(first), len(second)) + 1) if first[-n:] == second[:n]), default=0)


def test_config_schemas_are_json_schema_objects_with_defaults():
    for chunker in CHUNKERS:
        schema = chunker.config_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        for key, prop in schema["properties"].items():
            assert "description" in prop, (chunker.name, key)
            assert "default" in prop or key in schema["required"], (chunker.name, key)
    assert CHUNKER["semantic"].config_schema["required"] == ["embed_model"]


def test_token_chunks_are_bounded_and_overlap():
    chunks = CHUNKER["token"].create(chunk_size=64, chunk_overlap=16).split_text(TEXT)
    assert len(chunks) > 10
    assert max(tokens(chunk) for chunk in chunks) <= 64
    # Every word is at least one token, so an overlap of at most 16 tokens repeats at most 16 words.
    assert all(1 <= shared_words(a, b) <= 16 for a, b in zip(chunks, chunks[1:]))


def test_token_defaults():
    splitter = CHUNKER["token"].create()
    assert (splitter.chunk_size, splitter.chunk_overlap) == (256, 32)


def test_sentence_chunks_end_on_sentences_are_bounded_and_overlap():
    chunks = CHUNKER["sentence"].create(chunk_size=96, chunk_overlap=32).split_text(TEXT)
    assert len(chunks) > 10
    assert max(tokens(chunk) for chunk in chunks) <= 96
    assert all(chunk.endswith("detail.") for chunk in chunks)
    assert all(shared_words(a, b) >= 8 for a, b in zip(chunks, chunks[1:]))  # at least one whole sentence


def test_sentence_defaults_and_metadata_counting_toward_the_budget():
    splitter = CHUNKER["sentence"].create()
    assert (splitter.chunk_size, splitter.chunk_overlap) == (224, 32)  # fits all-MiniLM-L6-v2's 256 word pieces
    [section] = MarkdownParser().parse(io.BytesIO(f"# Features\n\n{TEXT}".encode()), "features.md")
    nodes = splitter.get_nodes_from_documents([section])
    assert len(nodes) > 1
    assert all(tokens(node.get_content(metadata_mode=MetadataMode.EMBED)) <= 224 for node in nodes)
    assert all(node.metadata["heading"] == "Features" and node.metadata["file_name"] == "features.md"
               for node in nodes)


@pytest.mark.parametrize("name, config, message", [
    ("token", {"chunk_size": 100, "chunk_overlap": 100}, r"chunk_overlap \(100\) must be smaller than chunk_size"),
    ("sentence", {"chunk_overlap": 600}, r"chunk_overlap \(600\) must be smaller than chunk_size \(224\)"),
    ("token", {"chunk_size": 0}, r"chunk_size must be at least 1, got 0"),
    ("sentence", {"chunk_overlap": -1}, r"chunk_overlap must be at least 0, got -1"),
    ("token", {"chunk_size": "256"}, r"chunk_size must be a whole number, got '256'"),
    ("sentence", {"chunk_size": True}, r"chunk_size must be a whole number, got True"),
    ("token", {"size": 10}, r"chunker 'token' has no setting 'size' \(settings: chunk_size, chunk_overlap\)"),
    ("semantic", {}, r"chunker 'semantic' needs 'embed_model'"),
    ("semantic", {"embed_model": object(), "breakpoint_percentile_threshold": 101}, r"at most 100, got 101"),
    ("parent_child", {"parent_chunk_size": 256, "child_chunk_size": 256},
     r"child_chunk_size \(256\) must be smaller than parent_chunk_size \(256\)"),
    ("parent_child", {"child_chunk_size": 64, "chunk_overlap": 64},
     r"chunk_overlap \(64\) must be smaller than child_chunk_size \(64\)"),
])
def test_invalid_config_is_refused_naming_the_setting(name, config, message):
    with pytest.raises(ValueError, match=message):
        CHUNKER[name].create(**config)


class TopicEmbedding(BaseEmbedding):
    """A toy embedding: how much a text is about pets and how much about money, enough to see a topic change."""

    @staticmethod
    def _vector(text: str) -> list[float]:
        words = re.findall(r"\w+", text.lower())
        pets = sum(word in {"cat", "cats", "dog", "dogs", "kitten", "puppy", "pets"} for word in words)
        money = sum(word in {"invoice", "invoices", "payment", "tax", "refund", "bank"} for word in words)
        return [pets + 0.01, money + 0.01]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


def test_semantic_chunker_cuts_where_the_topic_changes():
    pets = ["Cats sleep most of the day.", "A kitten needs four meals.", "Dogs and cats can be friends.",
            "A puppy chews everything.", "Old dogs still learn tricks."]
    money = ["Every invoice is due in thirty days.", "A refund reaches the bank in a week.",
             "Tax is added to each invoice.", "Payment by bank transfer is free.", "The invoice lists the tax."]
    splitter = CHUNKER["semantic"].create(embed_model=TopicEmbedding(model_name="topics"),
                                          breakpoint_percentile_threshold=90)
    assert (splitter.buffer_size, splitter.breakpoint_percentile_threshold) == (1, 90)
    nodes = splitter.get_nodes_from_documents([Document(text=" ".join(pets + money))])
    assert [node.text.strip() for node in nodes] == [" ".join(pets), " ".join(money)]


def test_parent_child_returns_only_leaves_that_carry_their_parent():
    document = Document(text=TEXT, metadata={"file_name": "f.txt", "source_type": "upload"},
                        excluded_embed_metadata_keys=["source_type"], excluded_llm_metadata_keys=["source_type"])
    leaves = CHUNKER["parent_child"].create(parent_chunk_size=256, child_chunk_size=64,
                                            chunk_overlap=8).get_nodes_from_documents([document])
    assert len(leaves) > 10
    parents = {leaf.metadata["parent_id"]: leaf.metadata["parent_text"] for leaf in leaves}
    assert 1 < len(parents) < len(leaves)  # several leaves share each parent
    for leaf in leaves:
        assert leaf.text in leaf.metadata["parent_text"] and leaf.text in TEXT
        assert tokens(leaf.text) <= 64 and tokens(leaf.metadata["parent_text"]) <= 256
        assert leaf.metadata["file_name"] == "f.txt"
        assert leaf.ref_doc_id == document.doc_id and NodeRelationship.PARENT not in leaf.relationships
        for mode in (MetadataMode.EMBED, MetadataMode.LLM):
            content = leaf.get_content(metadata_mode=mode)
            assert "parent_text" not in content and "parent_id" not in content and "file_name: f.txt" in content
        assert {"parent_text", "parent_id", "source_type"} <= set(leaf.excluded_embed_metadata_keys)
        assert {"parent_text", "parent_id", "source_type"} <= set(leaf.excluded_llm_metadata_keys)
    assert document.excluded_embed_metadata_keys == ["source_type"]  # the document's own list is untouched


def test_parent_child_defaults():
    parser = CHUNKER["parent_child"].create()
    assert (parser.parent_chunk_size, parser.child_chunk_size, parser.chunk_overlap) == (1024, 256, 20)


def test_chunkers_need_no_network(tmp_path):
    """A fresh interpreter with sockets disabled and an empty home: the tokenizer's encoding and NLTK's sentence
    data must come from inside the installed packages, not from a download or an earlier run's cache."""
    script = textwrap.dedent("""
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled by the test")

        socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse

        from llama_index.core.base.embeddings.base import BaseEmbedding
        from llama_index.core.schema import Document
        from privex_parsers.chunkers import CHUNKERS

        class Length(BaseEmbedding):
            def _get_query_embedding(self, query):
                return [len(query), 1.0]

            async def _aget_query_embedding(self, query):
                return [len(query), 1.0]

            def _get_text_embedding(self, text):
                return [len(text), 1.0]

        document = Document(text=" ".join(f"Sentence {n} is here. It has a friend." for n in range(400)))
        for chunker in CHUNKERS:
            config = {"embed_model": Length(model_name="length")} if chunker.name == "semantic" else {}
            nodes = chunker.create(**config).get_nodes_from_documents([document])
            print(chunker.name, len(nodes))
    """)
    env = {key: value for key, value in os.environ.items()
           if key not in ("TIKTOKEN_CACHE_DIR", "NLTK_DATA", "DATA_GYM_CACHE_DIR")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    counts = dict(line.split() for line in result.stdout.splitlines())
    assert set(counts) == {"token", "sentence", "semantic", "parent_child"}
    assert all(int(count) > 0 for count in counts.values())
