"""PrivexBot's built-in chatflow node types; one module per type, registered like any third-party node."""

from privex import hookimpl

from privex_nodes.basic import (ConditionNode, HumanInputNode, KnowledgeBaseNode, LlmNode, LoopNode, MemoryNode,
                                ResponseNode, StartNode, VariableNode)

NODE_TYPES = [StartNode, ResponseNode, VariableNode, ConditionNode, LoopNode, MemoryNode, LlmNode,
              KnowledgeBaseNode, HumanInputNode]


@hookimpl
def privex_node_types():
    return NODE_TYPES
