"""Each app keeps the live bots its messages read (``conversations.bot_cache``): the very next message after any edit
of a bot — through the service, the API or the builder's pages, in this app or in another one on the same database —
answers with the bot as edited, never with the one kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from privex.extensions import db as _db
from privex.models import Chatbot, KnowledgeBase, Workspace
from privex.services import chatbots
from tests.test_chatbots_api import kb, make_bot  # noqa: F401 (fixture)
from tests.test_public_api import API, SITE, ask, bot, owner, start  # noqa: F401 (fixtures)
from tests.test_web_shell import sign_in

OTHER_SITE = "https://other.example"


def answered(client, bot, session_id, origin=SITE):  # noqa: F811
    response = ask(client, bot, session_id, "How many days of holiday do I get?", origin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_edit_through_the_api_is_seen_by_the_next_message(client, owner, bot, kb):  # noqa: F811
    session_id = start(client, bot)
    first = answered(client, bot, session_id)
    assert first["citations"] and "twenty-five days" in first["answer"]
    assert answered(client, bot, session_id)["citations"]  # read again from the cache: the same bot

    assert owner.patch(f"{API}/chatbots/{bot['id']}", json={"config": {"citations": False}}).status_code == 200
    assert answered(client, bot, session_id)["citations"] == []

    assert owner.patch(f"{API}/chatbots/{bot['id']}",
                       json={"config": {"allowed_origins": [OTHER_SITE]}}).status_code == 200
    assert ask(client, bot, session_id, "holiday days?").status_code == 403
    assert answered(client, bot, session_id, OTHER_SITE)["citations"] == []

    assert owner.delete(f"{API}/chatbots/{bot['id']}/kb/{kb['id']}").status_code in (200, 204)
    assert "twenty-five days" not in answered(client, bot, session_id, OTHER_SITE)["answer"]

    assert owner.patch(f"{API}/chatbots/{bot['id']}", json={"status": "paused"}).status_code == 200
    assert ask(client, bot, session_id, "holiday days?", OTHER_SITE).status_code == 404


def test_an_edit_through_the_service_is_seen_by_the_next_message(client, owner, bot, database):
    session_id = start(client, bot)
    assert answered(client, bot, session_id)["citations"]
    chatbot = database.session.get(Chatbot, bot["id"])
    chatbots.update(database.session.get(Workspace, chatbot.workspace_id), chatbot, {"config": {"citations": False}})
    assert answered(client, bot, session_id)["citations"] == []


def test_an_edit_of_a_knowledge_base_or_the_plan_by_sql_is_seen_by_the_next_message(client, owner, bot, kb,
                                                                                     database):  # noqa: F811
    """Not only the bot's row: its knowledge bases and its organization are part of what a message reads, however
    they were changed (here plain SQL, which bumps no timestamp)."""
    session_id = start(client, bot)
    assert answered(client, bot, session_id)["citations"]
    database.session.execute(sa.update(KnowledgeBase).where(KnowledgeBase.id == kb["id"]).values(
        retrieval_config={"threshold": 0.99}))
    database.session.commit()
    kept = database.session.get(KnowledgeBase, kb["id"])
    database.session.refresh(kept)
    assert kept.retrieval_config == {"threshold": 0.99}
    database.session.execute(sa.text("UPDATE organizations SET subscription_tier = 'enterprise' WHERE id = "
                                     "(SELECT organization_id FROM workspaces WHERE id = :id)"),
                             {"id": owner.workspace_id})
    database.session.commit()
    cached = client.application.extensions["privex.bot_cache"].entries
    version_before = cached[kept.chatbots[0].id][0]
    assert answered(client, bot, session_id)["answer"]
    assert cached[kept.chatbots[0].id][0] != version_before
    assert cached[kept.chatbots[0].id][2].organization.subscription_tier == "enterprise"
    assert cached[kept.chatbots[0].id][2].knowledge_bases[0].retrieval_config == {"threshold": 0.99}


def test_an_edit_in_the_builder_is_seen_by_the_next_message(client, owner, bot):
    session_id = start(client, bot)
    assert answered(client, bot, session_id)["citations"]
    sign_in(client, owner.email)
    saved = client.post(f"/chatbots/{bot['id']}/origins", data={"allowed_origins": OTHER_SITE})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert ask(client, bot, session_id, "holiday days?").status_code == 403
    assert answered(client, bot, session_id, OTHER_SITE)["citations"]


@pytest.fixture()
def second_app(make_app, app, database):
    """Another app instance (another gunicorn worker or host) on the same database, inside this test's transaction."""
    other = make_app()
    engines = _db._app_engines[other]
    engine, engines[None] = engines[None], _db._app_engines[app][None]
    try:
        yield other
    finally:
        with other.app_context():
            _db.session.remove()
        engines[None] = engine


def test_an_edit_in_one_app_instance_is_seen_by_the_next_message_in_another(client, owner, bot, second_app):
    other = second_app.test_client()
    session_id = start(client, bot)
    assert answered(client, bot, session_id)["citations"] and answered(other, bot, session_id)["citations"]

    edited = other.patch(f"{API}/chatbots/{bot['id']}", headers=owner.headers, json={"config": {"citations": False}})
    assert edited.status_code == 200, edited.get_json()
    assert answered(client, bot, session_id)["citations"] == []

    assert owner.patch(f"{API}/chatbots/{bot['id']}", json={"config": {"citations": True}}).status_code == 200
    assert answered(other, bot, session_id)["citations"]
