"""``python -m notebooks [--sample] [--data FOLDER] [--out FOLDER] [name ...]``: execute the notebooks.

``make eval`` runs every notebook in full on SciFact (all 809 training claims over 5,183 abstracts; 1,000 abstracts
for ingestion) and appends the retrieval table to BENCHMARKS.md; ``--sample`` is what the test suite runs. Executed
copies, results (JSON) and charts (PNG) go to ``notebooks/out/`` (git-ignored): outputs are never committed.

``your_knowledge_base.ipynb`` evaluates a running instance over its API. Unless ``PRIVEX_URL`` is set, this runner
provides one: the app of the retrieval notebook's database served on a local port, an API key of the SciFact
workspace, and SciFact's claims as a BEIR folder (queries and qrels).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Jupyter's own folders by the platform's rules now (its old defaults are deprecated, with a warning at import).
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
NOTEBOOKS = ROOT / "notebooks"
ORDER = ("retrieval_quality", "ingestion_performance", "your_knowledge_base")


@contextlib.contextmanager
def environment(values: dict):
    """``os.environ`` with ``values`` while the block runs (a notebook's kernel inherits it)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update({key: str(value) for key, value in values.items()})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(name: str, out: Path, env: dict, timeout: int | None = None) -> Path:
    """Run ``name``.ipynb from the notebooks folder with ``env``; its executed copy is written to ``out``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    with environment({**env, "PRIVEX_EVAL_OUT": str(out), "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}):
        NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.ipynb"
    nbformat.write(notebook, str(path))
    return path


@contextlib.contextmanager
def local_instance(env: dict):
    """A running PrivexBot for ``your_knowledge_base``: the SciFact database's app on a free local port (Celery
    eager), an API key of the SciFact workspace; yields the notebook's environment."""
    from werkzeug.serving import make_server

    with environment(env):
        from benchmarks import scifact
        from privex.extensions import db
        from privex.models import KnowledgeBase, User, Workspace
        from privex.services import api_keys

        sample = int(env.get("PRIVEX_EVAL_SAMPLE", "0")) or None
        distractors = int(env.get("PRIVEX_EVAL_DISTRACTORS", "2000"))
        app = scifact.open_app(scifact.database_name(sample, "default", {}, distractors), scifact.FOLDER)
        with app.app_context():
            kb = db.session.scalars(db.select(KnowledgeBase).where(KnowledgeBase.name == "scifact")).first()
            if kb is None:
                raise RuntimeError("run retrieval_quality first: it builds the SciFact knowledge base")
            owner = db.session.scalars(db.select(User).where(User.username == "notebooks")).first()
            if owner is None:
                owner = User(username="notebooks", display_name="Notebooks")
                db.session.add(owner)
                db.session.commit()
            workspace = db.session.get(Workspace, kb.workspace_id)
            _key, secret = api_keys.create(workspace, owner, "notebooks", ["read", "write"])
            kb_id = str(kb.id)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request of the notebook's
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield {"PRIVEX_URL": f"http://127.0.0.1:{server.server_port}", "PRIVEX_API_KEY": secret,
                   "PRIVEX_KB_ID": kb_id, "PRIVEX_QUESTIONS": str(scifact.DATA)}
        finally:
            server.shutdown()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


def run(names=ORDER, *, sample: bool, out: Path, data: Path | None = None, folder: Path | None = None,
        timeout: int | None = None) -> dict[str, Path]:
    """Execute ``names`` in order; a sample run is every claim of a small data folder (the tests' SciFact sample)."""
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if data:
        env["SCIFACT_DATA"] = str(data)
    if folder:
        env["SCIFACT_FOLDER"] = str(folder)
    env.update({"PRIVEX_EVAL_SAMPLE": "0", "PRIVEX_EVAL_DOCUMENTS": "0" if sample else "1000"})
    executed = {}
    for name in names:
        print(f"[notebooks] {name}", file=sys.stderr, flush=True)
        if name == "your_knowledge_base" and not os.environ.get("PRIVEX_URL"):
            with local_instance(env) as instance:
                executed[name] = execute(name, out, {**env, **instance}, timeout)
        else:
            executed[name] = execute(name, out, env, timeout)
    return executed


def benchmarks_section(results: dict) -> str:
    """The SciFact table for BENCHMARKS.md, from retrieval_quality.json."""
    lines = [f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · `make eval` "
             f"(notebooks/retrieval_quality.ipynb)\n",
             f"SciFact training claims: {results['claims']} over {results['abstracts']} abstracts "
             f"({results['chunks']} chunks; chunker {results['chunker']} {json.dumps(results['chunking_config'])}, "
             f"model {results['model']}, store settings {json.dumps(results['store_settings'])}), through the "
             f"real pipeline.\n",
             "| setting | mode | nDCG@10 | MRR@10 | recall@1 | recall@5 | recall@10 | recall@20 | ms per question |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        lines.append(f"| {row['setting']} | {row['mode']} | {row['ndcg@10']:.3f} | {row['mrr@10']:.3f} | "
                     f"{row['recall@1']:.3f} | {row['recall@5']:.3f} | {row['recall@10']:.3f} | "
                     f"{row['recall@20']:.3f} | {row['ms_per_question']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(ORDER))
    parser.add_argument("--sample", action="store_true", help="the tests' SciFact sample (12 claims), not the set")
    parser.add_argument("--data", type=Path, help="a SciFact (BEIR) folder")
    parser.add_argument("--out", type=Path, default=NOTEBOOKS / "out")
    arguments = parser.parse_args()
    data = arguments.data or (ROOT / "tests" / "data" / "scifact-sample" if arguments.sample else None)
    quality = arguments.out / "retrieval_quality.json"
    started = datetime.datetime.now().timestamp()
    try:
        run(arguments.names, sample=arguments.sample, out=arguments.out, data=data)
    finally:
        # The table is kept even when a later notebook fails, as long as this run wrote the results it comes from.
        if not arguments.sample and "retrieval_quality" in arguments.names and quality.exists() and (
                quality.stat().st_mtime >= started):
            with open(ROOT / "BENCHMARKS.md", "a") as file:
                file.write(benchmarks_section(json.loads(quality.read_text())))
            print(f"[notebooks] the SciFact table is appended to {ROOT / 'BENCHMARKS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
