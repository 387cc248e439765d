"""The ``privex`` command: ``serve``, ``worker``, ``db`` (Flask-Migrate), ``plugins``, ``create-admin``, ``eval``.

It is a Flask CLI group around ``create_app``, so every Flask and Flask-Migrate command works too
(``privex db upgrade|downgrade|check|history``, ``privex routes``, ``privex shell``).
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from privex.app import create_app


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False,
             load_dotenv=False, set_debug_flag=False)
@click.version_option(package_name="privex")
def main():
    """PrivexBot: private, document-grounded chatbots."""


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def plugins_command(as_json: bool):
    """List installed plugins, their versions and what they provide."""
    described = current_app.extensions["privex"].plugins.describe()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    if not described:
        click.echo("No plugins installed.")
        return
    for plugin in described:
        origin = f"{plugin['distribution']} {plugin['version']}" if plugin["distribution"] else "registered in code"
        click.echo(f"{plugin['name']}  ({origin})")
        for registry, names in plugin["provides"].items():
            click.echo(f"    {registry}: {', '.join(names)}")
        if not plugin["provides"]:
            click.echo(f"    hooks: {', '.join(plugin['hooks'])}")


@main.command("eval")
@click.option("--kb", "knowledge_base_id", required=True, help="Id of the knowledge base to search.")
@click.option("--questions", "questions_path", type=click.Path(exists=True, dir_okay=False),
              help="JSONL file of labelled questions (docs/evaluation.md).")
@click.option("--beir", "beir_path", type=click.Path(exists=True, file_okay=False),
              help="BEIR folder: queries.jsonl and qrels (its corpus is the knowledge base's documents).")
@click.option("--split", help="Which qrels split of the BEIR folder, when it has several (e.g. test).")
@click.option("--modes", default="vector,keyword,hybrid", show_default=True, help="Comma-separated retrieval modes.")
@click.option("--k", "ks", default="1,5,10", show_default=True, help="Comma-separated recall cut-offs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (summary and per-question results).")
@click.option("--save", is_flag=True, help="Store the run with the knowledge base, as the API and the builder do.")
@with_appcontext
def eval_command(knowledge_base_id: str, questions_path: str | None, beir_path: str | None, split: str | None,
                 modes: str, ks: str, as_json: bool, save: bool):
    """Measure retrieval quality on labelled questions: nDCG@10, recall@k and MRR@10 for each retrieval mode."""
    from privex.plugins import NotInstalled
    from privex.services import evaluation_runs
    from privex.services.errors import ServiceError

    knowledge_base = _knowledge_base(knowledge_base_id)
    questions, source = _eval_questions(questions_path, beir_path, split)
    try:
        cut_offs = [int(k) for k in ks.split(",") if k.strip()]
    except ValueError as error:
        raise click.BadParameter("comma-separated whole numbers, e.g. 1,5,10", param_hint="--k") from error
    try:
        settings = evaluation_runs.settings_of([m.strip() for m in modes.split(",") if m.strip()], cut_offs)
        if save:
            run = evaluation_runs.start(knowledge_base, None, questions, source, settings, queue=False)
            run = evaluation_runs.execute(run.id)
            if run.status == "failed":
                raise click.ClickException(run.error)
            result = {"run_id": str(run.id), "settings": run.settings, "summary": run.summary}
        else:
            result = evaluation_runs.evaluate_now(knowledge_base, questions, settings)
    except (ServiceError, NotInstalled) as error:
        raise click.ClickException(_said(error)) from error
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    _print_summary(result["summary"], result["settings"])
    if save:
        click.echo(f"Saved as run {result['run_id']}.")


def _knowledge_base(knowledge_base_id: str):
    import uuid

    from privex.extensions import db
    from privex.models import KnowledgeBase

    try:
        knowledge_base = db.session.get(KnowledgeBase, uuid.UUID(knowledge_base_id))
    except ValueError:
        knowledge_base = None
    if knowledge_base is None:
        raise click.ClickException(f"knowledge base {knowledge_base_id} not found")
    return knowledge_base


def _eval_questions(questions_path: str | None, beir_path: str | None, split: str | None) -> tuple[list, str]:
    from privex.services.errors import ServiceError
    from privex.services.evaluation import load_questions
    from privex.services.evaluation_inputs import load_beir

    if bool(questions_path) == bool(beir_path):
        raise click.UsageError("give either --questions FILE.jsonl or --beir FOLDER")
    try:
        if beir_path:
            return load_beir(beir_path, split), f"BEIR: {Path(beir_path).name}"
        return load_questions(questions_path), Path(questions_path).name
    except ValueError as error:
        raise click.ClickException(f"{questions_path}: {error}") from error
    except ServiceError as error:
        raise click.ClickException(f"{beir_path or questions_path}: {_said(error)}") from error


def _said(error) -> str:
    details = "; ".join(f"{field}: {', '.join(map(str, messages))}" for field, messages in
                        getattr(error, "errors", {}).items() if isinstance(messages, list))
    message = getattr(error, "message", str(error))
    return f"{message} ({details})" if details and details not in message else message


def _print_summary(summary: dict, settings: dict) -> None:
    k_rank = settings["k_rank"]
    names = [f"ndcg@{k_rank}", *(f"recall@{k}" for k in settings["ks"]), f"mrr@{k_rank}"]
    labels = [f"nDCG@{k_rank}", *(f"recall@{k}" for k in settings["ks"]), f"MRR@{k_rank}"]
    click.echo(f"{'mode':<8}" + "".join(f"  {label:>9}" for label in labels) + f"  {'questions':>9}")
    for mode in settings["modes"]:
        scores = summary[mode]
        click.echo(f"{mode:<8}" + "".join(f"  {scores[name]:>9.3f}" for name in names)
                   + f"  {scores['questions']:>9}")


@main.command("create-admin")
@click.argument("email")
@click.option("--password", help="Password for a new account (else PRIVEX_ADMIN_PASSWORD, else a prompt).")
@with_appcontext
def create_admin(email: str, password: str | None):
    """Make EMAIL a platform superuser (creating the account if needed). Superusers may open /admin."""
    from privex.services.accounts import create_superuser
    from privex.services.errors import ServiceError

    _require_current_schema()
    password = password or current_app.config.get("ADMIN_PASSWORD")
    try:
        user, created = create_superuser(email, password, ask_password=_ask_password)
    except (ValueError, ServiceError) as error:
        raise click.ClickException(str(error)) from error
    verb = "Created" if created else "Promoted"
    click.echo(f"{verb} superuser {user.email} (user {user.id}). Sign in at /login, then open /admin.")


def _require_current_schema() -> None:
    """Refuse clearly, instead of with a traceback, when the database has not been migrated to the code's head."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from privex.extensions import db, migrate

    config = migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    if current != heads:
        raise click.ClickException("the database schema is not up to date: run `privex db upgrade` "
                                   "(`make run` does it for you) and try again")


def _ask_password() -> str:
    if not sys.stdin.isatty():
        raise click.ClickException("no password given: pass --password or set PRIVEX_ADMIN_PASSWORD")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise click.ClickException("the passwords differ")
    return first


@main.command("worker")
@click.option("--concurrency", type=int, help="Worker processes (default PRIVEX_WORKER_CONCURRENCY).")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--replaces", type=int, hidden=True,
              help="Pid of the worker on this host that this one replaces (it died): its reserved tasks are put back "
                   "in the queue at once. Given by `privex serve`'s supervisor.")
@with_appcontext
def worker(concurrency: int | None, loglevel: str, replaces: int | None):
    """Run a Celery worker. Start as many as you like, on as many machines, to scale out."""
    celery = current_app.extensions["privex"].celery
    celery.conf.privex_replaces = replaces
    concurrency = concurrency or current_app.config["WORKER_CONCURRENCY"]
    _share_cores(concurrency)  # the worker's children embed documents at once: one PyTorch thread pool each
    celery.worker_main(["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
                        "--without-gossip", "--without-mingle"])


@main.command("serve")
@click.option("--host", help="Address to bind (default PRIVEX_HOST).")
@click.option("--port", type=int, help="Port to bind (default PRIVEX_PORT).")
@click.option("--no-worker", is_flag=True, help="Do not start a Celery worker beside the web server.")
@click.option("--no-migrate", is_flag=True, help="Do not apply pending migrations first.")
@with_appcontext
def serve(host: str | None, port: int | None, no_worker: bool, no_migrate: bool):
    """Apply migrations, then run the web server (gunicorn, threaded) and a Celery worker together."""
    from flask_migrate import upgrade

    config = current_app.config
    host = host or config["HOST"]
    port = port or config["PORT"]
    if not no_migrate:
        upgrade()
    # Children reach the services this process started (and keeps running) by their URLs.
    env = {**os.environ, "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": config["REDIS_URL"],
           "PRIVEX_SECRET_KEY": config["SECRET_KEY"], "PRIVEX_INSTANCE_PATH": current_app.instance_path}
    os.environ.update(env)
    supervisor = None
    if not no_worker:
        # Under a supervisor, which starts it again if it dies (privex/supervisor.py).
        supervisor = subprocess.Popen([sys.executable, "-m", "privex.supervisor", "Celery worker", "--",
                                       sys.executable, "-m", "privex.cli", "worker"], env=env)
    _print_banner(host, port)
    _share_cores(config["WEB_WORKERS"])
    try:
        _run_gunicorn(host, port, config["WEB_WORKERS"], config["WEB_THREADS"], Path(current_app.instance_path))
    finally:
        if supervisor is not None:
            _stop_supervisor(supervisor)


def _stop_supervisor(supervisor: subprocess.Popen) -> None:
    """Stop the worker's supervisor, which gives the worker GRACE seconds to finish its tasks, then kills it."""
    from privex.supervisor import GRACE

    supervisor.terminate()
    try:
        supervisor.wait(timeout=GRACE + 15)
    except subprocess.TimeoutExpired:
        supervisor.kill()


def _print_banner(host: str, port: int) -> None:
    from privex.extensions import db
    from privex.models import User

    url = f"http://{host}:{port}"
    has_admin = db.session.scalar(
        sa.select(sa.func.count()).select_from(User).where(User.is_superuser)
    )
    click.echo(f"\nPrivexBot is running at {url}\n"
               f"  Builder:      {url}/  (create an account, or sign in at {url}/login)\n"
               f"  API docs:     {url}/api/docs\n"
               f"  Health:       {url}/api/v1/health\n"
               f"  Back office:  {url}/admin  (sign in at {url}/login)\n")
    if not has_admin:
        click.echo("  No operator account yet. Create one with:\n"
                   "    .venv/bin/privex create-admin you@example.com\n")


def _share_cores(workers: int) -> None:
    """Give each worker process's PyTorch (the local embedding model embeds every chat question and every ingested
    chunk) its share of the cores, unless the operator chose with OMP_NUM_THREADS. By default every process would run
    one PyTorch thread per core: under load the processes' threads then wait for each other's cores, spinning, and one
    question's embedding took 100-180 ms instead of 13 ms on two busy cores. Called before gunicorn or Celery forks
    its workers, which read it when they first import PyTorch."""
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))


def _control_socket(instance_path: Path) -> dict:
    """gunicorn's control socket (for ``gunicornc``) in the instance folder. Its default is one path per user
    ($XDG_RUNTIME_DIR or ~/.gunicorn), which every server re-creates as it forks a worker and deletes as it stops:
    a second `privex serve` on the host took the first one's socket, and stopping either removed the other's.
    A path too long for a Unix socket (108 bytes) turns it off rather than falling back to the shared one."""
    path = instance_path / "gunicorn.ctl"
    if len(os.fsencode(path)) >= 108:
        return {"control_socket_disable": True}
    return {"control_socket": str(path)}


def _warm_web_worker(worker) -> None:
    """gunicorn's ``post_worker_init``: a worker loads the embedding models and the tokenizer before it accepts its
    first connection, instead of during its first visitor's question (privex/warmup.py)."""
    from privex.warmup import warm_up

    warm_up(worker.wsgi, "web worker")


def _run_gunicorn(host: str, port: int, workers: int, threads: int, instance_path: Path) -> None:
    from gunicorn.app.base import BaseApplication

    class WebServer(BaseApplication):
        def load_config(self):
            settings = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                        "worker_class": "gthread", "timeout": 120, "graceful_timeout": 20,
                        "accesslog": None, "errorlog": "-", "post_worker_init": _warm_web_worker,
                        **_control_socket(instance_path)}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return create_app()

    WebServer().run()


if __name__ == "__main__":
    main()
