"""Chunkers: named factories of the LlamaIndex node parsers ingestion splits Documents with.

Each has a ``config_schema`` (JSON Schema, with defaults) and ``create(**config)``, which checks the configuration
against it and raises ValueError naming the setting at fault. A knowledge base stores the chunker's name and the
configuration, never the node parser.

Sizes are in tokens of LlamaIndex's default tokenizer (tiktoken's cl100k_base), whose encoding file ships inside
llama-index-core, as does the NLTK sentence data the sentence splitter uses: nothing is downloaded at run time.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.node_parser import NodeParser, SemanticSplitterNodeParser, SentenceSplitter, TokenTextSplitter

from privex_parsers.parent_child import ParentChildNodeParser


def _integer(default: int, description: str, minimum: int = 1, maximum: int | None = None) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": minimum, "default": default, "description": description}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def settings(chunker: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the schema's defaults filled in, checked against ``chunker.config_schema``."""
    schema = chunker.config_schema
    properties = schema["properties"]
    unknown = sorted(set(config) - set(properties))
    if unknown:
        raise ValueError(f"chunker {chunker.name!r} has no setting {', '.join(map(repr, unknown))} "
                         f"(settings: {', '.join(properties)})")
    values = {key: prop["default"] for key, prop in properties.items() if "default" in prop} | config
    for key in schema.get("required", []):
        if values.get(key) is None:
            raise ValueError(f"chunker {chunker.name!r} needs {key!r}: {properties[key]['description']}")
    for key, prop in properties.items():
        if prop.get("type") != "integer":
            continue
        value = values[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"chunker {chunker.name!r}: {key} must be a whole number, got {value!r}")
        if value < prop["minimum"] or value > prop.get("maximum", value):
            bounds = f"at least {prop['minimum']}" + (f" and at most {prop['maximum']}" if "maximum" in prop else "")
            raise ValueError(f"chunker {chunker.name!r}: {key} must be {bounds}, got {value}")
    return values


def _smaller(chunker: Any, values: dict[str, Any], small: str, large: str) -> None:
    if values[small] >= values[large]:
        raise ValueError(f"chunker {chunker.name!r}: {small} ({values[small]}) must be smaller than {large} "
                         f"({values[large]})")


class TokenChunker:
    """Fixed-size windows of tokens, ignoring sentence boundaries."""

    name = "token"
    config_schema = _object({
        "chunk_size": _integer(256, "Tokens per chunk."),
        "chunk_overlap": _integer(32, "Tokens shared by neighbouring chunks.", minimum=0),
    })

    def create(self, **config: Any) -> NodeParser:
        values = settings(self, config)
        _smaller(self, values, "chunk_overlap", "chunk_size")
        return TokenTextSplitter(chunk_size=values["chunk_size"], chunk_overlap=values["chunk_overlap"])


class SentenceChunker:
    """Chunks of whole sentences (and paragraphs where they fit) up to a token budget: the default."""

    name = "sentence"
    config_schema = _object({
        # The default model (all-MiniLM-L6-v2) reads 256 word pieces and cuts the rest: 224 tokens (cl100k, about
        # 1.05 word pieces each in English prose) plus the file name it is embedded with fit in that window.
        "chunk_size": _integer(224, "Tokens per chunk."),
        "chunk_overlap": _integer(32, "Tokens shared by neighbouring chunks.", minimum=0),
    })

    def create(self, **config: Any) -> NodeParser:
        values = settings(self, config)
        _smaller(self, values, "chunk_overlap", "chunk_size")
        return SentenceSplitter(chunk_size=values["chunk_size"], chunk_overlap=values["chunk_overlap"])


class SemanticChunker:
    """Chunks cut where the meaning shifts: between sentence groups whose embeddings differ most."""

    name = "semantic"
    config_schema = _object({
        "embed_model": {
            "readOnly": True,
            "description": "Supplied by the core, not stored: the knowledge base's embedding model (a LlamaIndex "
                           "BaseEmbedding), which compares neighbouring sentences.",
        },
        "buffer_size": _integer(1, "Sentences grouped together when comparing embeddings."),
        "breakpoint_percentile_threshold": _integer(
            95, "Cut where the distance between neighbouring groups is above this percentile of all distances; "
                "lower makes more, smaller chunks.", maximum=100),
    }, required=("embed_model",))

    def create(self, **config: Any) -> NodeParser:
        values = settings(self, config)
        return SemanticSplitterNodeParser(
            embed_model=values["embed_model"], buffer_size=values["buffer_size"],
            breakpoint_percentile_threshold=values["breakpoint_percentile_threshold"],
        )


class ParentChildChunker:
    """Small chunks to search with, each carrying its larger parent passage in metadata (``parent_text``)."""

    name = "parent_child"
    config_schema = _object({
        "parent_chunk_size": _integer(1024, "Tokens per parent passage (what the answer sees)."),
        "child_chunk_size": _integer(256, "Tokens per child chunk (what is embedded and searched)."),
        "chunk_overlap": _integer(20, "Tokens shared by neighbouring chunks of the same level.", minimum=0),
    })

    def create(self, **config: Any) -> NodeParser:
        values = settings(self, config)
        _smaller(self, values, "child_chunk_size", "parent_chunk_size")
        _smaller(self, values, "chunk_overlap", "child_chunk_size")
        return ParentChildNodeParser(**values)


CHUNKERS = (TokenChunker(), SentenceChunker(), SemanticChunker(), ParentChildChunker())
