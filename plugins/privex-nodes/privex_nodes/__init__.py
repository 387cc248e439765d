"""PrivexBot's built-in chatflow node types; one module per type, registered like any third-party node."""

from privex import hookimpl

from privex_nodes.basic import (ConditionNode, HumanInputNode, KnowledgeBaseNode, LlmNode, LoopNode, MemoryNode,
                                ResponseNode, StartNode, VariableNode)
from privex_nodes.code import CodeNode
from privex_nodes.database import DatabaseNode
from privex_nodes.http_request import HttpRequestNode
from privex_nodes.parameter_extractor import ParameterExtractorNode
from privex_nodes.question_classifier import QuestionClassifierNode

NODE_TYPES = [StartNode, ResponseNode, VariableNode, ConditionNode, LoopNode, MemoryNode, LlmNode,
              KnowledgeBaseNode, HumanInputNode, CodeNode, HttpRequestNode, DatabaseNode, QuestionClassifierNode,
              ParameterExtractorNode]


@hookimpl
def privex_node_types():
    return NODE_TYPES
