"""The `privex` command: migrations (up, down, check), create-admin, version."""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask.cli import ScriptInfo

from conftest import rolled_back
from privex.cli import main
from privex.extensions import db
from privex.models import AuthIdentity, User


def invoke(application, *args, **kwargs):
    runner = application.test_cli_runner()
    return runner.invoke(main, list(args), obj=ScriptInfo(create_app=lambda: application), **kwargs)


def table_names(application) -> set[str]:
    with application.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_migrations_go_up_down_and_up_again(make_app, scratch_database):
    application = make_app(SQLALCHEMY_DATABASE_URI=scratch_database)
    assert invoke(application, "db", "upgrade").exit_code == 0
    tables = table_names(application)
    assert {"users", "organizations", "workspaces", "chatbots", "knowledge_bases", "chunks", "leads",
            "credentials", "api_keys", "chatbot_knowledge_bases", "alembic_version"} <= tables
    with application.app_context():
        assert db.session.execute(sa.text("SELECT extname FROM pg_extension WHERE extname = 'vector'")).scalar()
        db.session.remove()
    result = invoke(application, "db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert table_names(application) == {"alembic_version"}
    assert invoke(application, "db", "upgrade").exit_code == 0
    assert table_names(application) == tables
    with application.app_context():
        db.engine.dispose()


def test_db_check_finds_no_drift(app):
    result = invoke(app, "db", "check")
    assert result.exit_code == 0, result.output


def test_db_check_fails_when_a_model_changes_without_a_migration(app, caplog):
    probe = sa.Table("drift_probe", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        result = invoke(app, "db", "check")
    finally:
        db.metadata.remove(probe)
    assert result.exit_code != 0
    assert "New upgrade operations detected" in caplog.text and "drift_probe" in caplog.text


def test_db_migrate_writes_a_revision_of_a_model_change(app, tmp_path):
    # Into a copy of the shipped migrations folder, so the package's own history is left as it is.
    import shutil

    from privex.app import MIGRATIONS

    folder = shutil.copytree(MIGRATIONS, tmp_path / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    before = set((folder / "versions").iterdir())
    probe = sa.Table("drift_probe", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        result = invoke(app, "db", "migrate", "--directory", str(folder), "-m", "add drift probe")
    finally:
        db.metadata.remove(probe)
    assert result.exit_code == 0, result.output
    [revision] = set((folder / "versions").iterdir()) - before
    assert revision.name.endswith("_add_drift_probe.py") and revision.name[:8].isdigit()  # alembic.ini's names
    text = revision.read_text()
    assert '"""add drift probe' in text and "op.create_table('drift_probe'" in text  # script.py.mako's layout
    assert "import pgvector.sqlalchemy" in text


def test_create_admin_creates_a_superuser_who_can_sign_in(app, runner, client):
    result = invoke(app, "create-admin", "Ops@Example.com", "--password", "S3cure-enough!")
    assert result.exit_code == 0, result.output
    assert "Created superuser ops@example.com" in result.output
    identity = db.session.scalar(sa.select(AuthIdentity).where(AuthIdentity.provider_id == "ops@example.com"))
    assert identity.user.is_superuser and identity.password_hash.startswith("$argon2id$")
    client.post("/login", data={"email": "ops@example.com", "password": "S3cure-enough!"})
    assert client.get("/admin/").status_code == 200


def test_create_admin_promotes_an_existing_user(app, runner):
    invoke(app, "create-admin", "ops@example.com", "--password", "S3cure-enough!")
    db.session.scalar(sa.select(User)).is_superuser = False
    db.session.commit()
    result = invoke(app, "create-admin", "ops@example.com")
    assert result.exit_code == 0 and "Promoted superuser" in result.output
    assert db.session.scalar(sa.select(User.is_superuser))


def test_create_admin_refuses_a_weak_password_and_explains_the_rule(app, runner):
    result = invoke(app, "create-admin", "ops@example.com", "--password", "password")
    assert result.exit_code != 0
    assert "upper-case letter" in result.output and "symbol" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_create_admin_without_a_password_and_no_terminal_says_how(app, runner):
    result = invoke(app, "create-admin", "ops@example.com", input="")
    assert result.exit_code != 0 and "--password" in result.output


def test_create_admin_takes_the_password_from_the_environment_setting(make_app):
    application = make_app(ADMIN_PASSWORD="Fr0m-the-env!")
    with rolled_back(application):
        with_env = invoke(application, "create-admin", "env@example.com")
    assert with_env.exit_code == 0, with_env.output
    assert "Created superuser env@example.com" in with_env.output


def test_create_admin_refuses_something_that_is_not_an_email(app, runner):
    result = invoke(app, "create-admin", "not-an-email")
    assert result.exit_code != 0 and "is not an email address" in result.output


def test_version(app):
    result = invoke(app, "--version")
    assert result.exit_code == 0 and "0.1.0" in result.output


def test_create_admin_on_an_unmigrated_database_says_what_to_run(make_app, scratch_database):
    application = make_app(SQLALCHEMY_DATABASE_URI=scratch_database)
    result = invoke(application, "create-admin", "ops@example.com", "--password", "S3cure-enough!")
    assert result.exit_code != 0
    assert "run `privex db upgrade`" in result.output
    with application.app_context():
        db.engine.dispose()


def test_worker_gives_each_child_process_its_share_of_the_cores(app, monkeypatch):
    # Two children each embedding with one PyTorch thread per core would fight over the cores, spinning.
    seen = {}
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(app.extensions["privex"].celery, "worker_main",
                        lambda argv: seen.update(argv=argv, threads=os.environ.get("OMP_NUM_THREADS")))
    result = invoke(app, "worker", "--concurrency", "4")
    assert result.exit_code == 0, result.output
    assert seen == {"argv": seen["argv"], "threads": "2"} and "--concurrency=4" in seen["argv"]
    # The operator's choice stands.
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert invoke(app, "worker", "--concurrency", "4").exit_code == 0
    assert seen["threads"] == "3"
