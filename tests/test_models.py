"""The data model against the real schema built by the migrations: keys and timestamps, uniqueness, CHECK
constraints, what a delete takes with it (the database's ON DELETE rules), pgvector and full-text search, JSONB.

Deletes are issued as SQL (``sa.delete``), not through ``session.delete``, so what is tested is the database's own
ON DELETE behaviour, which every code path (API, back office, psql) gets."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from privex.models import (
    APIKey, AuthIdentity, ChatMessage, ChatSession, Chatbot, Chatflow, Chunk, Credential, CredentialAuditLog,
    Document, Invitation, KnowledgeBase, Lead, MessageFeedback, Organization, OrganizationMember, TokenUsage, User,
    Workspace, WorkspaceMember, chatbot_knowledge_bases,
)

PAST = datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone.utc)

# Tree attribute -> model; every model in privex.models (the link table has its own tests).
MODELS = {
    "user": User, "identity": AuthIdentity, "organization": Organization, "org_member": OrganizationMember,
    "workspace": Workspace, "workspace_member": WorkspaceMember, "invitation": Invitation, "chatbot": Chatbot,
    "chatflow": Chatflow, "knowledge_base": KnowledgeBase, "document": Document, "chunk": Chunk,
    "chat_session": ChatSession, "message": ChatMessage, "feedback": MessageFeedback, "usage": TokenUsage,
    "lead": Lead, "credential": Credential, "audit": CredentialAuditLog, "api_key": APIKey,
}

# One ordinary edit per model, to see updated_at move.
EDITS = {
    "user": ("display_name", "Renamed"), "identity": ("password_hash", "argon2$new"),
    "organization": ("billing_email", "billing@example.com"), "org_member": ("role", "admin"),
    "workspace": ("description", "edited"), "workspace_member": ("role", "editor"),
    "invitation": ("email", "someone-else@example.com"), "chatbot": ("description", "edited"),
    "chatflow": ("description", "edited"), "knowledge_base": ("description", "edited"),
    "document": ("status", "indexed"), "chunk": ("token_count", 42), "chat_session": ("external_user_id", "visitor"),
    "message": ("model", "gpt-x"), "feedback": ("comment", "helpful"), "usage": ("model", "gpt-x"),
    "lead": ("name", "Ada"), "credential": ("provider", "anthropic"), "audit": ("ip_address", "192.0.2.1"),
    "api_key": ("name", "renamed"),
}


def build_tree(db, label: str = "acme") -> SimpleNamespace:
    """A user who owns an organization with one workspace holding one of every resource, all linked together.

    Returns the objects by name (see ``MODELS``) plus ``ids``: each object's id, read once after the commit, so
    tests can still filter on them after a delete has removed the rows."""
    t = SimpleNamespace()
    add = db.session.add_all

    t.user = User(username=f"{label}-owner", display_name=f"{label} owner")
    add([t.user])
    db.session.flush()
    t.identity = AuthIdentity(user_id=t.user.id, provider="email", provider_id=f"owner@{label}.example")
    t.organization = Organization(name=label.title(), created_by_id=t.user.id)
    add([t.identity, t.organization])
    db.session.flush()
    t.org_member = OrganizationMember(organization_id=t.organization.id, user_id=t.user.id, role="owner")
    t.workspace = Workspace(organization_id=t.organization.id, name="Main", is_default=True,
                            created_by_id=t.user.id)
    add([t.org_member, t.workspace])
    db.session.flush()

    ws = t.workspace.id
    t.workspace_member = WorkspaceMember(workspace_id=ws, user_id=t.user.id, role="admin")
    t.invitation = Invitation(organization_id=t.organization.id, workspace_id=ws, email=f"guest@{label}.example",
                              token_hash=f"token-hash-{label}", invited_by_id=t.user.id,
                              expires_at=datetime.now(timezone.utc) + timedelta(days=7))
    t.chatbot = Chatbot(workspace_id=ws, name="Support bot", created_by_id=t.user.id)
    t.chatflow = Chatflow(workspace_id=ws, name="Onboarding flow", created_by_id=t.user.id)
    t.knowledge_base = KnowledgeBase(workspace_id=ws, name="Handbook", created_by_id=t.user.id)
    t.credential = Credential(workspace_id=ws, name="OpenAI", provider="openai", encrypted_data=b"fernet-token",
                              created_by_id=t.user.id)
    t.api_key = APIKey(workspace_id=ws, name="CI", prefix=f"pk_{label}"[:16], key_hash=f"hash-{label}",
                       created_by_id=t.user.id)
    add([t.workspace_member, t.invitation, t.chatbot, t.chatflow, t.knowledge_base, t.credential, t.api_key])
    db.session.flush()

    t.chatbot.knowledge_bases.append(t.knowledge_base)
    t.document = Document(workspace_id=ws, knowledge_base_id=t.knowledge_base.id, name="handbook.pdf")
    t.chat_session = ChatSession(workspace_id=ws, chatbot_id=t.chatbot.id, channel="widget")
    t.audit = CredentialAuditLog(workspace_id=ws, credential_id=t.credential.id, user_id=t.user.id, action="create")
    add([t.document, t.chat_session, t.audit])
    db.session.flush()

    t.chunk = Chunk(workspace_id=ws, knowledge_base_id=t.knowledge_base.id, document_id=t.document.id, position=0,
                    text="Refunds are processed within fourteen days.")
    t.message = ChatMessage(workspace_id=ws, session_id=t.chat_session.id, role="assistant", content="Hello!")
    add([t.chunk, t.message])
    db.session.flush()

    t.feedback = MessageFeedback(workspace_id=ws, message_id=t.message.id, rating=1)
    t.usage = TokenUsage(workspace_id=ws, organization_id=t.organization.id, chatbot_id=t.chatbot.id,
                         message_id=t.message.id, provider="openai", prompt_tokens=12, completion_tokens=3)
    t.lead = Lead(workspace_id=ws, chatbot_id=t.chatbot.id, session_id=t.chat_session.id,
                  email=f"lead@{label}.example", consent=True)
    add([t.feedback, t.usage, t.lead])
    db.session.commit()

    t.ids = SimpleNamespace(**{name: getattr(t, name).id for name in MODELS})
    return t


def count(db, target, *where) -> int:
    """Rows of a model or table matching ``where``, straight from the database."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(target).where(*where))


def rejected(db, *objects) -> str:
    """Insert ``objects``, expect the database to refuse them, roll back; return the violated constraint's name."""
    db.session.add_all(objects)
    with pytest.raises(IntegrityError) as info:
        db.session.commit()
    db.session.rollback()
    return info.value.orig.diag.constraint_name


def db_now(db) -> datetime:
    """The database's ``now()``: the start of the test's outer transaction, so equal to every default stamp."""
    return db.session.scalar(sa.select(sa.func.now()))


# --- keys and timestamps -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_a_new_row_has_a_uuid_and_database_timestamps(database, name):
    tree = build_tree(database)
    row = database.session.get(MODELS[name], tree.ids.__dict__[name])

    assert isinstance(row.id, uuid.UUID)
    assert row.created_at.tzinfo is not None
    assert row.created_at == row.updated_at == db_now(database)


@pytest.mark.parametrize("name", MODELS)
def test_an_update_moves_updated_at_and_keeps_created_at(database, name):
    tree = build_tree(database)
    row = getattr(tree, name)
    row.created_at = row.updated_at = PAST
    database.session.commit()
    assert row.updated_at == PAST  # an explicit value is kept; the bump comes from an edit

    field, value = EDITS[name]
    setattr(row, field, value)
    database.session.commit()
    database.session.expire_all()

    row = database.session.get(MODELS[name], tree.ids.__dict__[name])
    assert getattr(row, field) == value
    assert row.created_at == PAST
    assert row.updated_at == db_now(database)


def test_every_table_defaults_its_key_and_timestamps_in_the_database(database):
    defaults = {
        (table, column): default for table, column, default in database.session.execute(sa.text(
            "SELECT table_name, column_name, column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_name IN ('id', 'created_at', 'updated_at')"
        ))
    }
    for model in MODELS.values():
        table = model.__tablename__
        assert defaults[(table, "id")] == "gen_random_uuid()", table
        assert defaults[(table, "created_at")] == "now()", table
        assert defaults[(table, "updated_at")] == "now()", table


def test_a_plain_sql_insert_gets_an_id_timestamps_and_defaults(database):
    row = database.session.execute(sa.text(
        "INSERT INTO users (username) VALUES ('from-psql') "
        "RETURNING id, created_at, updated_at, is_active, is_superuser"
    )).one()

    assert isinstance(row.id, uuid.UUID)
    assert row.created_at == row.updated_at == db_now(database)
    assert row.is_active is True and row.is_superuser is False


# --- uniqueness ----------------------------------------------------------------------------------------------------

def test_a_refused_insert_rolls_back_only_itself(database):
    tree = build_tree(database)

    assert rejected(database, User(username="acme-owner")) == "uq_users_username"

    # The tree committed before the failure is still there, and the session works on.
    assert count(database, User, User.username == "acme-owner") == 1
    assert database.session.get(Organization, tree.ids.organization).name == "Acme"
    database.session.add(User(username="after-the-failure"))
    database.session.commit()
    assert count(database, User, User.username == "after-the-failure") == 1


def test_usernames_are_unique(database):
    database.session.add(User(username="alice"))
    database.session.commit()

    assert rejected(database, User(username="alice")) == "uq_users_username"


def test_a_wallet_or_email_belongs_to_one_user_only(database):
    tree = build_tree(database)
    other = User(username="mallory")
    database.session.add(other)
    database.session.flush()
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    database.session.add(AuthIdentity(user_id=tree.user.id, provider="evm", provider_id=address))
    database.session.commit()

    assert rejected(database, AuthIdentity(user_id=other.id, provider="evm", provider_id=address)) \
        == "uq_auth_identities_provider_provider_id"
    assert rejected(database, AuthIdentity(user_id=other.id, provider="email", provider_id="owner@acme.example")) \
        == "uq_auth_identities_provider_provider_id"
    # The same string under another provider is a different identity.
    database.session.add(AuthIdentity(user_id=other.id, provider="solana", provider_id=address))
    database.session.commit()
    assert count(database, AuthIdentity, AuthIdentity.provider_id == address) == 2


def test_a_user_is_a_member_of_an_organization_once(database):
    tree = build_tree(database)

    assert rejected(database, OrganizationMember(organization_id=tree.ids.organization, user_id=tree.ids.user,
                                                 role="member")) == "uq_organization_members_organization_id_user_id"


def test_workspace_names_are_unique_within_an_organization_only(database):
    tree = build_tree(database)
    build_tree(database, "globex")

    assert rejected(database, Workspace(organization_id=tree.ids.organization, name="Main")) \
        == "uq_workspaces_organization_id_name"
    assert count(database, Workspace, Workspace.name == "Main") == 2  # one per organization


def test_knowledge_base_names_are_unique_within_a_workspace_only(database):
    tree = build_tree(database)
    second = Workspace(organization_id=tree.ids.organization, name="Second")
    database.session.add(second)
    database.session.commit()

    assert rejected(database, KnowledgeBase(workspace_id=tree.ids.workspace, name="Handbook")) \
        == "uq_knowledge_bases_workspace_id_name"
    database.session.add(KnowledgeBase(workspace_id=second.id, name="Handbook"))
    database.session.commit()
    assert count(database, KnowledgeBase, KnowledgeBase.name == "Handbook") == 2


def test_a_chunk_position_is_unique_within_its_document(database):
    tree = build_tree(database)
    ws, kb = tree.ids.workspace, tree.ids.knowledge_base

    assert rejected(database, Chunk(workspace_id=ws, knowledge_base_id=kb, document_id=tree.ids.document,
                                    position=0, text="again")) == "uq_chunks_document_id_position"
    other_document = Document(workspace_id=ws, knowledge_base_id=kb, name="faq.md")
    database.session.add(other_document)
    database.session.flush()
    database.session.add(Chunk(workspace_id=ws, knowledge_base_id=kb, document_id=other_document.id, position=0,
                               text="first chunk of another document"))
    database.session.commit()
    assert count(database, Chunk, Chunk.knowledge_base_id == kb) == 2


def test_a_message_has_at_most_one_feedback(database):
    tree = build_tree(database)

    assert rejected(database, MessageFeedback(workspace_id=tree.ids.workspace, message_id=tree.ids.message,
                                              rating=-1)) == "uq_message_feedback_message_id"


def test_api_key_prefixes_are_unique_across_workspaces(database):
    build_tree(database)
    other = build_tree(database, "globex")

    assert rejected(database, APIKey(workspace_id=other.ids.workspace, name="dup", prefix="pk_acme",
                                     key_hash="x")) == "uq_api_keys_prefix"


def test_chatbot_public_ids_are_unique_and_generated(database):
    tree = build_tree(database)
    public_id = tree.chatbot.public_id
    second = Chatbot(workspace_id=tree.ids.workspace, name="Another")
    database.session.add(second)
    database.session.commit()

    assert public_id.startswith("bot_") and second.public_id.startswith("bot_")
    assert second.public_id != public_id
    assert rejected(database, Chatbot(workspace_id=tree.ids.workspace, name="Copy", public_id=public_id)) \
        == "uq_chatbots_public_id"


# --- CHECK constraints ---------------------------------------------------------------------------------------------

def test_only_known_sign_in_providers_are_accepted(database):
    tree = build_tree(database)

    assert rejected(database, AuthIdentity(user_id=tree.ids.user, provider="github", provider_id="alice")) \
        == "ck_auth_identities_provider_valid"
    for provider in ("evm", "solana", "cosmos"):
        database.session.add(AuthIdentity(user_id=tree.ids.user, provider=provider, provider_id="addr"))
    database.session.commit()
    assert count(database, AuthIdentity, AuthIdentity.user_id == tree.ids.user) == 4


def test_organization_roles_are_checked(database):
    tree = build_tree(database)
    newcomer = User(username="newcomer")
    database.session.add(newcomer)
    database.session.flush()

    assert rejected(database, OrganizationMember(organization_id=tree.ids.organization, user_id=newcomer.id,
                                                 role="superboss")) == "ck_organization_members_role_valid"


def test_a_workspace_has_no_owner_role(database):
    tree = build_tree(database)
    newcomer = User(username="newcomer")
    database.session.add(newcomer)
    database.session.flush()

    assert rejected(database, WorkspaceMember(workspace_id=tree.ids.workspace, user_id=newcomer.id,
                                              role="owner")) == "ck_workspace_members_role_valid"


def test_document_statuses_are_checked(database):
    tree = build_tree(database)

    assert rejected(database, Document(workspace_id=tree.ids.workspace, knowledge_base_id=tree.ids.knowledge_base,
                                       name="x.pdf", status="done")) == "ck_documents_status_valid"


def test_feedback_is_thumbs_up_or_down(database):
    tree = build_tree(database)
    database.session.execute(sa.delete(MessageFeedback).where(MessageFeedback.id == tree.ids.feedback))
    database.session.commit()

    for rating in (0, 2, -2):
        assert rejected(database, MessageFeedback(workspace_id=tree.ids.workspace, message_id=tree.ids.message,
                                                  rating=rating)) == "ck_message_feedback_rating_valid"


def test_a_chat_session_belongs_to_a_chatbot_or_a_chatflow_not_both(database):
    tree = build_tree(database)
    ws = tree.ids.workspace

    assert rejected(database, ChatSession(workspace_id=ws, chatbot_id=tree.ids.chatbot,
                                          chatflow_id=tree.ids.chatflow)) == "ck_chat_sessions_one_bot"
    database.session.add_all([ChatSession(workspace_id=ws, chatflow_id=tree.ids.chatflow),
                              ChatSession(workspace_id=ws)])
    database.session.commit()
    assert count(database, ChatSession, ChatSession.workspace_id == ws) == 3


def test_subscription_tiers_are_checked(database):
    assert rejected(database, Organization(name="Rich", subscription_tier="platinum")) \
        == "ck_organizations_subscription_tier_valid"
    database.session.add(Organization(name="Paying", subscription_tier="enterprise"))
    database.session.commit()
    assert count(database, Organization, Organization.name == "Paying") == 1


# --- what a delete takes with it -----------------------------------------------------------------------------------

WORKSPACE_RESOURCES = (WorkspaceMember, Invitation, Chatbot, Chatflow, KnowledgeBase, Document, Chunk, ChatSession,
                       ChatMessage, MessageFeedback, TokenUsage, Lead, Credential, CredentialAuditLog, APIKey)


def delete(db, model, *where):
    db.session.execute(sa.delete(model).where(*where))
    db.session.commit()
    db.session.expire_all()


def test_deleting_an_organization_removes_everything_in_it_and_nothing_else(database):
    doomed, kept = build_tree(database), build_tree(database, "globex")

    delete(database, Organization, Organization.id == doomed.ids.organization)

    for tree, expected in ((doomed, 0), (kept, 1)):
        ids = tree.ids
        assert count(database, Organization, Organization.id == ids.organization) == expected
        assert count(database, Workspace, Workspace.organization_id == ids.organization) == expected
        assert count(database, OrganizationMember, OrganizationMember.organization_id == ids.organization) == expected
        assert count(database, Invitation, Invitation.organization_id == ids.organization) == expected
        assert count(database, TokenUsage, TokenUsage.organization_id == ids.organization) == expected
        assert count(database, chatbot_knowledge_bases,
                     chatbot_knowledge_bases.c.chatbot_id == ids.chatbot) == expected
        for model in WORKSPACE_RESOURCES:
            assert count(database, model, model.workspace_id == ids.workspace) == expected, model.__name__
    # People are not owned by organizations.
    assert count(database, User, User.id == doomed.ids.user) == 1
    assert count(database, AuthIdentity, AuthIdentity.user_id == doomed.ids.user) == 1


def test_deleting_a_document_removes_its_chunks_only(database):
    tree = build_tree(database)
    ws, kb = tree.ids.workspace, tree.ids.knowledge_base
    sibling = Document(workspace_id=ws, knowledge_base_id=kb, name="faq.md")
    database.session.add(sibling)
    database.session.flush()
    database.session.add(Chunk(workspace_id=ws, knowledge_base_id=kb, document_id=sibling.id, position=0, text="q"))
    database.session.commit()
    sibling_id = sibling.id

    delete(database, Document, Document.id == tree.ids.document)

    assert count(database, Chunk, Chunk.document_id == tree.ids.document) == 0
    assert count(database, Chunk, Chunk.document_id == sibling_id) == 1
    assert count(database, Document, Document.id == sibling_id) == 1
    assert count(database, KnowledgeBase, KnowledgeBase.id == kb) == 1


def test_deleting_a_knowledge_base_unlinks_it_from_chatbots_but_keeps_them(database):
    tree = build_tree(database)
    link = chatbot_knowledge_bases.c
    assert count(database, chatbot_knowledge_bases, link.knowledge_base_id == tree.ids.knowledge_base) == 1

    delete(database, KnowledgeBase, KnowledgeBase.id == tree.ids.knowledge_base)

    assert count(database, chatbot_knowledge_bases, link.knowledge_base_id == tree.ids.knowledge_base) == 0
    assert count(database, Chatbot, Chatbot.id == tree.ids.chatbot) == 1
    assert count(database, Document, Document.knowledge_base_id == tree.ids.knowledge_base) == 0
    assert count(database, Chunk, Chunk.knowledge_base_id == tree.ids.knowledge_base) == 0
    assert database.session.get(Chatbot, tree.ids.chatbot).knowledge_bases == []


def test_deleting_a_chatbot_keeps_its_leads_and_token_usage(database):
    tree = build_tree(database)
    # One usage row per reference path (see the xfail test below for a row holding both).
    tree.usage.message_id = None
    per_message = TokenUsage(workspace_id=tree.ids.workspace, organization_id=tree.ids.organization,
                             message_id=tree.ids.message, provider="openai", prompt_tokens=7)
    database.session.add(per_message)
    database.session.commit()
    per_message_id = per_message.id

    delete(database, Chatbot, Chatbot.id == tree.ids.chatbot)

    lead = database.session.get(Lead, tree.ids.lead)
    assert lead is not None and lead.email == "lead@acme.example"
    assert lead.chatbot_id is None
    usage = database.session.get(TokenUsage, tree.ids.usage)
    assert usage is not None and usage.prompt_tokens == 12
    assert usage.chatbot_id is None
    assert usage.organization_id == tree.ids.organization  # still counted against the organization
    # Its conversations go with it, so the references to them are cleared too.
    assert count(database, ChatSession, ChatSession.id == tree.ids.chat_session) == 0
    assert count(database, ChatMessage, ChatMessage.id == tree.ids.message) == 0
    assert lead.session_id is None
    orphaned = database.session.get(TokenUsage, per_message_id)
    assert orphaned is not None and orphaned.message_id is None and orphaned.prompt_tokens == 7
    # The knowledge base it used stays, unlinked.
    assert count(database, KnowledgeBase, KnowledgeBase.id == tree.ids.knowledge_base) == 1
    assert count(database, chatbot_knowledge_bases, chatbot_knowledge_bases.c.chatbot_id == tree.ids.chatbot) == 0


def test_deleting_a_chatbot_keeps_usage_that_names_both_the_bot_and_a_message(database):
    # token_usage reaches the chatbot twice (chatbot_id SET NULL, and message_id SET NULL through the cascade
    # chatbot -> sessions -> messages); the deferred message_id key lets both actions finish before the check.
    tree = build_tree(database)  # tree.usage has chatbot_id and message_id

    delete(database, Chatbot, Chatbot.id == tree.ids.chatbot)
    database.session.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))  # check the deferred keys now

    usage = database.session.get(TokenUsage, tree.ids.usage)
    assert (usage.chatbot_id, usage.message_id) == (None, None)


def test_deleting_a_user_removes_their_sign_ins_and_memberships_but_not_what_they_created(database):
    tree = build_tree(database)
    ids = tree.ids

    delete(database, User, User.id == ids.user)

    assert count(database, AuthIdentity, AuthIdentity.user_id == ids.user) == 0
    assert count(database, OrganizationMember, OrganizationMember.user_id == ids.user) == 0
    assert count(database, WorkspaceMember, WorkspaceMember.user_id == ids.user) == 0
    organization = database.session.get(Organization, ids.organization)
    assert organization is not None and organization.created_by_id is None
    assert database.session.get(Workspace, ids.workspace).created_by_id is None
    assert database.session.get(Chatbot, ids.chatbot).created_by_id is None
    assert database.session.get(KnowledgeBase, ids.knowledge_base).created_by_id is None
    assert database.session.get(APIKey, ids.api_key).created_by_id is None
    assert database.session.get(Invitation, ids.invitation).invited_by_id is None
    assert database.session.get(CredentialAuditLog, ids.audit).user_id is None  # the audit trail stays


# --- vectors and full-text search ----------------------------------------------------------------------------------

def add_chunk(db, tree, position, text, embedding=None):
    chunk = Chunk(workspace_id=tree.ids.workspace, knowledge_base_id=tree.ids.knowledge_base,
                  document_id=tree.ids.document, position=position, text=text, embedding=embedding,
                  embedding_dim=len(embedding) if embedding is not None else None)
    db.session.add(chunk)
    db.session.commit()
    return chunk.id


def test_a_384_dimension_embedding_is_stored_and_read_back(database):
    tree = build_tree(database)
    vector = [0.1] * 383 + [-0.5]
    chunk_id = add_chunk(database, tree, 1, "embedded", vector)
    database.session.expire_all()

    chunk = database.session.get(Chunk, chunk_id)
    assert chunk.embedding_dim == 384
    assert len(chunk.embedding) == 384
    assert list(chunk.embedding) == pytest.approx(vector)
    assert database.session.scalar(sa.select(sa.func.vector_dims(Chunk.embedding)).where(Chunk.id == chunk_id)) \
        == 384


def test_cosine_distance_ranks_the_nearest_chunk_first(database):
    tree = build_tree(database)
    near = add_chunk(database, tree, 1, "near", [1.0] * 384)
    far = add_chunk(database, tree, 2, "far", [1.0] * 192 + [-1.0] * 192)
    query = [2.0] * 384

    distance = database.session.scalar(sa.select(Chunk.embedding.cosine_distance(query)).where(Chunk.id == near))
    assert isinstance(distance, float)
    assert distance == pytest.approx(0.0, abs=1e-6)
    ranked = database.session.execute(
        sa.select(Chunk.id, Chunk.embedding.cosine_distance(query).label("distance"))
        .where(Chunk.embedding.is_not(None)).order_by("distance")
    ).all()
    assert [row.id for row in ranked] == [near, far]
    assert ranked[1].distance == pytest.approx(1.0, abs=1e-6)  # orthogonal


def test_embeddings_of_different_sizes_share_the_table(database):
    tree = build_tree(database)
    small = add_chunk(database, tree, 1, "small model", [0.5] * 384)
    large = add_chunk(database, tree, 2, "large model", [0.5] * 768)

    dims = dict(database.session.execute(
        sa.select(Chunk.id, sa.func.vector_dims(Chunk.embedding)).where(Chunk.id.in_([small, large]))
    ).all())
    assert dims == {small: 384, large: 768}
    nearest = database.session.scalar(
        sa.select(Chunk.id).where(Chunk.embedding_dim == 384).order_by(Chunk.embedding.cosine_distance([1.0] * 384))
    )
    assert nearest == small


def test_metadata_attributes_are_stored_in_columns_named_metadata(database):
    tree = build_tree(database)
    tree.document.metadata_ = {"pages": 12, "author": {"name": "Ops"}}
    tree.chunk.metadata_ = {"page": 3}
    database.session.commit()

    assert database.session.execute(sa.text("SELECT metadata FROM documents WHERE id = :id"),
                                    {"id": tree.ids.document}).scalar() == {"pages": 12, "author": {"name": "Ops"}}
    assert database.session.execute(sa.text("SELECT metadata FROM chunks WHERE id = :id"),
                                    {"id": tree.ids.chunk}).scalar() == {"page": 3}


def test_json_columns_default_in_plain_sql_inserts_too(database):
    tree = build_tree(database)
    row = database.session.execute(sa.text(
        "INSERT INTO chatflows (workspace_id, name, public_id) VALUES (:ws, 'raw', 'bot_raw') "
        "RETURNING nodes, edges, variables, config, status, version"
    ), {"ws": tree.ids.workspace}).one()

    assert (row.nodes, row.edges, row.variables, row.config) == ([], [], {}, {})
    assert (row.status, row.version) == ("draft", 0)  # 0: never published


def test_nested_json_round_trips_and_can_be_queried(database):
    tree = build_tree(database)
    config = {
        "system_prompt": "Answer from the handbook only. Ünïcödé ✓",
        "model": {"provider": "openai", "temperature": 0.2, "max_tokens": 512},
        "retrieval": {"top_k": 5, "threshold": 0.75, "rerank": False},
        "lead_capture": {"enabled": True, "fields": [{"name": "email", "required": True}]},
        "allowed_origins": ["https://shop.example"],
        "greeting": None,
    }
    nodes = [
        {"id": "start", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {}},
        {"id": "llm", "type": "llm", "position": {"x": 240, "y": 0},
         "data": {"prompt": "{{input}}", "tools": ["search", "lead"]}},
    ]
    edges = [{"id": "e1", "source": "start", "target": "llm"}]
    chatbot, chatflow = tree.chatbot, tree.chatflow
    chatbot.config = config
    chatflow.nodes, chatflow.edges = nodes, edges
    database.session.commit()
    database.session.expire_all()

    assert database.session.get(Chatbot, tree.ids.chatbot).config == config
    stored = database.session.get(Chatflow, tree.ids.chatflow)
    assert (stored.nodes, stored.edges) == (nodes, edges)
    assert database.session.scalar(
        sa.select(Chatbot.id).where(Chatbot.config["retrieval"]["top_k"].as_integer() == 5)
    ) == tree.ids.chatbot
    assert database.session.scalar(
        sa.select(sa.func.jsonb_array_length(Chatflow.nodes)).where(Chatflow.id == tree.ids.chatflow)
    ) == 2
