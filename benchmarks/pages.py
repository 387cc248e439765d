"""Server time of the builder's list pages with 1,000 items (issue 10's aim: p95 under 50 ms).

Each page is requested through the Flask test client, so what is timed is the app's own work for one request —
routing, the session and sign-in, the permission checks, the SQL, the templates — without a network or a web
server in front. Set-up, in a child process against a fresh embedded PostgreSQL and Redis in a temporary folder
(never ``instance/``), with the app built by ``create_app`` and the migrations applied:

- one person signed in through the sign-in page (CSRF off for the benchmark's client), in their own workspace;
- the knowledge area: 1,000 knowledge bases (the list shows 20 a page), one of which holds 1,000 documents (the
  documents page shows 50 a page, each with its status, a progress bar while busy, the reason of a failure and the
  confirm dialogs to reindex or delete it): 900 indexed, 50 failed with a reason, 30 processing (the newest, so the
  first page polls) and 20 pending; rows inserted in bulk.

Measured per page: ``REQUESTS`` timed requests after ``WARM_UP``; p50, p95 and mean in milliseconds, the statements
the request ran and the size of the answer. Other areas add their lists by appending a set-up function to ``AREAS``
(it receives the app and the signed-in client and returns ``Case`` values).

Environment variables: ``BENCH_PAGES_REQUESTS`` (default 200), ``BENCH_PAGES_FOLDER`` (a folder to work in and keep).
``python -m benchmarks.pages`` runs it alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks import child_env

REQUESTS = int(os.environ.get("BENCH_PAGES_REQUESTS", "200"))
WARM_UP = 20
ITEMS = 1000
AIM_MS = 50
PASSWORD = "Bench-passw0rd!"


@dataclass
class Case:
    """One page to time: what it shows, its address and request headers."""

    label: str
    path: str
    headers: dict | None = None


# -- the parent ----------------------------------------------------------------------------------------------------

def run() -> str:
    started = time.perf_counter()
    kept = os.environ.get("BENCH_PAGES_FOLDER")
    with tempfile.TemporaryDirectory(prefix="privex-bench-pages-") as temporary:
        folder = Path(kept or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "benchmarks.pages", "--child", str(folder)], check=True,
                       env=child_env(), cwd=Path(__file__).resolve().parent.parent)
        results = json.loads((folder / "result.json").read_text())
    return _markdown(results, time.perf_counter() - started)


def _markdown(results: dict, seconds: float) -> str:
    lines = [
        f"\n### Builder list pages with {ITEMS:,} items (server time through the Flask test client)\n\n",
        f"Method: one signed-in person; {REQUESTS} timed requests per page after {WARM_UP} warm-up requests, each "
        f"through Flask's test client (routing, session, permission checks, SQL and templates; no network). The "
        f"knowledge area holds {ITEMS:,} knowledge bases, one of them with {ITEMS:,} documents (900 indexed, 50 "
        f"failed, 30 processing, 20 pending). Load average before: {results['load']}. Aim (issue 10): p95 under "
        f"{AIM_MS} ms. *App CPU* is the Python process's own CPU time per request (the database's is not in it): "
        f"unlike the wall-clock figures it hardly moves with other load on the machine.\n\n",
        "| page | p50 ms | p95 ms | mean ms | app CPU ms (mean) | statements | answer |\n"
        "|---|---|---|---|---|---|---|\n",
    ]
    for case in results["cases"]:
        lines.append(f"| {case['label']} | {case['p50']:.1f} | {case['p95']:.1f} | {case['mean']:.1f} | "
                     f"{case['cpu']:.1f} | {case['statements']} | {case['bytes'] / 1024:.0f} KB |\n")
    lines.append(f"\nPostgreSQL {results['postgres']}; {seconds:.0f} s in all, set-up included.\n")
    return "".join(lines)


def _ms(values: list[float]) -> dict:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"p50": statistics.median(ordered) * 1000, "p95": p95 * 1000, "mean": statistics.mean(ordered) * 1000}


# -- the child -----------------------------------------------------------------------------------------------------

def knowledge_lists(app, client) -> list[Case]:
    """1,000 knowledge bases, one with 1,000 documents of every status."""
    import sqlalchemy as sa

    from privex.extensions import db
    from privex.models import Document, KnowledgeBase, Workspace

    workspace = db.session.scalars(sa.select(Workspace)).one()
    now = datetime.now(timezone.utc)
    bases = [{"id": uuid.uuid4(), "workspace_id": workspace.id, "name": f"Knowledge base {number:04d}",
              "description": "Handbooks, answers to common questions and product pages of one team.",
              "chunking_config": {}, "retrieval_config": {}} for number in range(ITEMS)]
    db.session.execute(sa.insert(KnowledgeBase), bases)
    full = bases[0]["id"]
    statuses = ["indexed"] * 900 + ["failed"] * 50 + ["pending"] * 20 + ["processing"] * 30  # busy ones newest
    documents = []
    for number, status in enumerate(statuses):
        documents.append({
            "id": uuid.uuid4(), "workspace_id": workspace.id, "knowledge_base_id": full,
            "name": f"document-{number:04d}.pdf", "source_type": "upload", "status": status, "size_bytes": 48_000,
            "created_at": now - timedelta(seconds=ITEMS - number), "source_config": {}, "metadata_": {},
            "error": "no text could be extracted from the file" if status == "failed" else None,
            "chunks_done": 40 if status == "indexed" else (12 if status == "processing" else 0),
            "chunks_total": 40 if status in ("indexed", "processing") else 0})
    db.session.execute(sa.insert(Document), documents)
    for kb_id in (bases[1]["id"], bases[2]["id"]):  # a few more with documents, for the list's counts
        db.session.execute(sa.insert(Document), [
            {"id": uuid.uuid4(), "workspace_id": workspace.id, "knowledge_base_id": kb_id, "name": f"d{n}.md",
             "source_type": "upload", "status": "indexed", "source_config": {}, "metadata_": {}} for n in range(5)])
    db.session.commit()
    db.session.execute(sa.text("ANALYZE documents; ANALYZE knowledge_bases"))
    db.session.commit()
    busy = ",".join(str(document["id"]) for document in documents if document["status"] in ("pending", "processing"))
    return [
        Case("Knowledge bases (page 1 of 50)", "/knowledge"),
        Case("A knowledge base's documents (page 1 of 20, 50 busy polled)", f"/knowledge/{full}"),
        Case("A knowledge base's documents (page 20 of 20)", f"/knowledge/{full}?page=20"),
        Case("The documents list alone (htmx, after uploads)", f"/knowledge/{full}", {"HX-Request": "true"}),
        Case("The progress poll (50 documents and the summary)", f"/knowledge/{full}/progress?ids={busy}&summary=1",
             {"HX-Request": "true"}),
    ]


AREAS = [knowledge_lists]


def child(folder: Path) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from privex import embedded
    from privex.app import create_app
    from privex.extensions import db
    from privex.services import registration

    embedded.postgres_url(folder / "pgdata", "bench_pages")
    embedded.drop_database(folder / "pgdata", "bench_pages")
    url = embedded.postgres_url(folder / "pgdata", "bench_pages")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": embedded.redis_url(folder / "redis"),
                      "INSTANCE_PATH": str(folder / "instance"), "SECRET_KEY": "benchmark-secret-key",
                      "LOG_LEVEL": "WARNING", "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    result = {"load": " ".join(f"{value:.2f}" for value in os.getloadavg()), "cases": []}
    with app.app_context():
        upgrade()
        result["postgres"] = db.session.scalar(sa.text("SHOW server_version"))
        registration.sign_up("bench@example.com", PASSWORD, "Bench")
        db.session.commit()
    client = app.test_client()
    signed_in = client.post("/login", data={"email": "bench@example.com", "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:500]
    cases = []
    with app.app_context():
        for area in AREAS:
            cases += area(app, client)
        db.session.remove()
    statements = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(1))
    for case in cases:
        for _ in range(WARM_UP):
            client.get(case.path, headers=case.headers)
        times, cpu = [], []
        for _ in range(REQUESTS):
            statements.clear()
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(case.path, headers=case.headers)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            if response.status_code != 200:
                raise RuntimeError(f"{case.path} answered {response.status_code}")
        result["cases"].append({"label": case.label, "statements": len(statements), "bytes": len(response.data),
                                "cpu": statistics.mean(cpu) * 1000, **_ms(times)})
        print(f"{case.label}: p95 {result['cases'][-1]['p95']:.1f} ms", file=sys.stderr, flush=True)
    (folder / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        print(run())
