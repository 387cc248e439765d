"""What bots and people leave behind — conversations, messages, feedback, token usage, leads — and credentials with
their audit log, all read-only in the back office: the system writes them (leads through the lead form, credentials
where their secret can be entered and is never shown again)."""

from __future__ import annotations

from privex.admin.views import ReadOnlyView


class ChatSessionView(ReadOnlyView):
    column_list = ("chatbot_id", "chatflow_id", "workspace_id", "channel", "external_user_id", "is_test",
                   "last_message_at", "created_at")
    column_filters = ("channel", "is_test")
    column_default_sort = ("created_at", True)


class ChatMessageView(ReadOnlyView):
    column_list = ("session_id", "role", "content", "model", "latency_ms", "prompt_tokens", "completion_tokens",
                   "created_at")
    column_searchable_list = ("content",)
    column_filters = ("role", "model")
    column_default_sort = ("created_at", True)


class MessageFeedbackView(ReadOnlyView):
    column_list = ("message_id", "rating", "comment", "workspace_id", "created_at")
    column_filters = ("rating",)


class TokenUsageView(ReadOnlyView):
    column_list = ("organization_id", "chatbot_id", "provider", "model", "prompt_tokens", "completion_tokens",
                   "estimated", "created_at")
    column_filters = ("provider", "model", "estimated")
    column_default_sort = ("created_at", True)


class LeadView(ReadOnlyView):
    column_list = ("email", "name", "phone", "chatbot_id", "workspace_id", "status", "channel", "consent",
                   "created_at")
    column_searchable_list = ("email", "name", "phone")
    column_filters = ("status", "channel", "consent", "email")
    column_default_sort = ("created_at", True)


class CredentialView(ReadOnlyView):
    column_list = ("name", "provider", "credential_type", "workspace_id", "metadata_", "last_used_at", "expires_at")
    column_labels = {"metadata_": "Metadata (no secrets)"}
    column_filters = ("provider", "credential_type")


class CredentialAuditLogView(ReadOnlyView):
    column_list = ("credential_id", "action", "user_id", "ip_address", "detail", "created_at")
    column_filters = ("action",)
    column_default_sort = ("created_at", True)
