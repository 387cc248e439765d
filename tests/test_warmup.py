"""What a starting web or Celery worker loads before its first question (privex/warmup.py)."""

from __future__ import annotations

from privex import hookimpl
from privex.models import KnowledgeBase, Organization, Workspace
from privex.warmup import warm_up


class Model:
    dimension = 8

    def __init__(self, name: str, local: bool, broken: bool = False):
        self.name, self.local, self.broken, self.asked = name, local, broken, []

    def create(self, **config):
        model = self

        class Embedding:
            def get_query_embedding(self, text):
                if model.broken:
                    raise RuntimeError("weights missing")
                model.asked.append(text)
                return [0.0] * 8

        return Embedding()


LOCAL, REMOTE, BROKEN, UNUSED = (Model("test-local", True), Model("test-remote", False),
                                 Model("test-broken", True, broken=True), Model("test-unused", True))


class Models:
    @hookimpl
    def privex_embedding_models(self):
        return [LOCAL, REMOTE, BROKEN, UNUSED]


def test_local_models_in_use_and_the_default_are_run_once_remote_ones_never(app, database, register_plugin, caplog):
    register_plugin(Models(), name="test-warm-models")
    organization = Organization(name="Acme")
    workspace = Workspace(name="main", organization=organization)
    database.session.add_all([organization, workspace])
    database.session.flush()
    for number, name in enumerate(("test-local", "test-local", "test-remote", "test-broken", "no-such-plugin")):
        database.session.add(KnowledgeBase(workspace_id=workspace.id, name=f"kb {number}", embedding_model=name,
                                           embedding_dim=8))
    database.session.commit()

    warmed = warm_up(app, "test worker")

    assert warmed == ["all-MiniLM-L6-v2", "test-local"]  # the default a new knowledge base gets, and the used ones
    assert len(LOCAL.asked) == 1 and REMOTE.asked == [] and UNUSED.asked == []
    warnings = sorted(record.getMessage() for record in caplog.records if record.levelname == "WARNING")
    assert warnings == ["could not warm up embedding model 'no-such-plugin'",
                        "could not warm up embedding model 'test-broken'"]
    assert database.session.query(KnowledgeBase).filter_by(workspace_id=workspace.id).count() == 5  # only read
