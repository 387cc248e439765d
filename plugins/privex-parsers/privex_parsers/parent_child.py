"""The parent-child node parser: small chunks to search with, each carrying the larger passage around it.

Small chunks embed precisely; an answer needs more context than they hold. This parser cuts each document into
parent passages, each parent into child chunks, and returns only the children, with the parent's text and id in
their metadata (kept out of the embedding and the prompt's metadata block). Retrieval matches a child and may hand
the LLM its ``parent_text``; hits sharing a ``parent_id`` can be merged into one passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.node_parser import HierarchicalNodeParser, NodeParser
from llama_index.core.schema import BaseNode, MetadataMode, NodeRelationship

PARENT_KEYS = ("parent_text", "parent_id")


class ParentChildNodeParser(NodeParser):
    """Returns child chunks of ``child_chunk_size`` tokens, each with ``parent_text`` and ``parent_id``: the
    passage of ``parent_chunk_size`` tokens it was cut from."""

    parent_chunk_size: int = Field(default=1024, gt=0, description="Tokens per parent passage.")
    child_chunk_size: int = Field(default=256, gt=0, description="Tokens per child chunk (the ones embedded).")
    chunk_overlap: int = Field(default=20, ge=0, description="Tokens shared by neighbouring chunks of a level.")

    @classmethod
    def class_name(cls) -> str:
        return "ParentChildNodeParser"

    def _parse_nodes(self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        hierarchy = HierarchicalNodeParser.from_defaults(
            chunk_sizes=[self.parent_chunk_size, self.child_chunk_size], chunk_overlap=self.chunk_overlap,
            include_metadata=self.include_metadata, include_prev_next_rel=False,
            callback_manager=self.callback_manager,
        )
        every = hierarchy.get_nodes_from_documents(nodes, show_progress=show_progress)
        parents = {node.node_id: node for node in every if NodeRelationship.PARENT not in node.relationships}
        children = []
        for node in every:
            parent_info = node.relationships.pop(NodeRelationship.PARENT, None)
            if parent_info is None:
                continue
            # Only children are returned, so the parent relationship would point at a node no store holds: its id
            # and text travel in metadata instead.
            parent = parents[parent_info.node_id]
            node.metadata["parent_id"] = parent.node_id
            node.metadata["parent_text"] = parent.get_content(metadata_mode=MetadataMode.NONE)
            # New lists: splitters hand one list object to every node cut from the same document.
            node.excluded_embed_metadata_keys = _with(node.excluded_embed_metadata_keys, PARENT_KEYS)
            node.excluded_llm_metadata_keys = _with(node.excluded_llm_metadata_keys, PARENT_KEYS)
            children.append(node)
        return children


def _with(keys: list[str], more: Sequence[str]) -> list[str]:
    return [*keys, *(key for key in more if key not in keys)]
