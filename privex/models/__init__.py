"""Every SQLAlchemy model, by domain. Importing this package registers them all on ``db.metadata``."""

from privex.models.api_keys import APIKey
from privex.models.bots import Chatbot, Chatflow, ChatflowVersion, chatbot_knowledge_bases
from privex.models.conversations import ChatMessage, ChatSession, MessageFeedback, TokenUsage
from privex.models.credentials import Credential, CredentialAuditLog
from privex.models.evaluations import EvaluationQuestion, EvaluationRun
from privex.models.identity import AuthIdentity, AuthSession, RefreshToken, User
from privex.models.knowledge import Chunk, Document, KnowledgeBase
from privex.models.leads import Lead
from privex.models.tenancy import Invitation, Organization, OrganizationMember, Workspace, WorkspaceMember

__all__ = [
    "APIKey", "AuthIdentity", "AuthSession", "ChatMessage", "ChatSession", "Chatbot", "Chatflow", "ChatflowVersion",
    "Chunk", "Credential", "CredentialAuditLog", "Document", "EvaluationQuestion", "EvaluationRun", "Invitation", "KnowledgeBase", "Lead",
    "MessageFeedback", "Organization", "OrganizationMember", "RefreshToken", "TokenUsage", "User", "Workspace",
    "WorkspaceMember", "chatbot_knowledge_bases",
]
