"""Server time of the builder's list pages with 1,000 items (issue 10's aim: p95 under 50 ms).

Each page is requested through the Flask test client, so what is timed is the app's own work for one request —
routing, the session and sign-in, the permission checks, the SQL, the templates — without a network or a web
server in front. Set-up, in a child process against a fresh embedded PostgreSQL and Redis in a temporary folder
(never ``instance/``), with the app built by ``create_app`` and the migrations applied:

- one person signed in through the sign-in page (CSRF off for the benchmark's client), in their own workspace;
- the knowledge area: 1,000 knowledge bases (the list shows 20 a page), one of which holds 1,000 documents (the
  documents page shows 50 a page, each with its status, a progress bar while busy, the reason of a failure and the
  confirm dialogs to reindex or delete it): 900 indexed, 50 failed with a reason, 30 processing (the newest, so the
  first page polls) and 20 pending;
- the chatbots area: 1,000 chatbots, one with 1,000 conversations of four messages (a quarter rated);
- the team area: 1,000 more members of the organization, 1,000 API keys and 1,000 credentials;
  rows inserted in bulk.

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
        f"failed, 30 processing, 20 pending); the chatbots area {ITEMS:,} bots, one with {ITEMS:,} conversations; the "
        f"team area {ITEMS:,} more members, {ITEMS:,} API keys and {ITEMS:,} credentials. Load average before: "
        f"{results['load']}. Aim (issue 10): p95 under "
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


def chatbot_lists(app, client) -> list[Case]:
    """1,000 chatbots, one of them with 1,000 conversations of four messages each (and some ratings)."""
    import sqlalchemy as sa

    from privex.extensions import db
    from privex.models import ChatMessage, ChatSession, Chatbot, MessageFeedback, Workspace
    from privex.services.chatbots import ChatbotConfig

    workspace = db.session.scalars(sa.select(Workspace)).one()
    now = datetime.now(timezone.utc)
    config = ChatbotConfig().load({})
    bots = [{"id": uuid.uuid4(), "workspace_id": workspace.id, "name": f"Helper {number:04d}", "config": config,
             "status": "active" if number % 10 else "paused", "public_id": f"bot_bench{number:06d}",
             "created_at": now - timedelta(seconds=ITEMS - number)} for number in range(ITEMS)]
    db.session.execute(sa.insert(Chatbot), bots)
    busy = bots[-1]["id"]
    sessions, messages, ratings = [], [], []
    for number in range(ITEMS):
        session_id = uuid.uuid4()
        started = now - timedelta(minutes=ITEMS - number)
        sessions.append({"id": session_id, "workspace_id": workspace.id, "chatbot_id": busy, "channel": "widget",
                         "user_metadata": {}, "created_at": started, "last_message_at": started})
        for turn in range(2):
            answer = uuid.uuid4()
            messages += [{"id": uuid.uuid4(), "workspace_id": workspace.id, "session_id": session_id, "role": "user",
                          "content": "How many days of holiday do I get?", "citations": [], "metadata_": {},
                          "created_at": started + timedelta(seconds=2 * turn)},
                         {"id": answer, "workspace_id": workspace.id, "session_id": session_id,
                          "role": "assistant", "content": "Twenty-five days a year [1].", "latency_ms": 40,
                          "citations": [{"n": 1, "document_name": "handbook.md", "text": "25 days"}],
                          "metadata_": {"finish_reason": "stop"}, "created_at": started + timedelta(seconds=2 * turn + 1)}]
            if number % 4 == 0 and turn == 0:
                ratings.append({"id": uuid.uuid4(), "workspace_id": workspace.id, "message_id": answer,
                                "rating": 1 if number % 8 else -1})
    db.session.execute(sa.insert(ChatSession), sessions)
    db.session.execute(sa.insert(ChatMessage), messages)
    db.session.execute(sa.insert(MessageFeedback), ratings)
    db.session.commit()
    db.session.execute(sa.text("ANALYZE chatbots; ANALYZE chat_sessions; ANALYZE chat_messages"))
    db.session.commit()
    return [Case("Chatbots (page 1 of 50)", "/chatbots"),
            Case("A chatbot's conversations and analytics card (1,000 conversations)", f"/chatbots/{busy}/conversations")]


def team_lists(app, client) -> list[Case]:
    """1,000 members of the organization, 1,000 API keys and 1,000 credentials in the workspace."""
    import sqlalchemy as sa

    from privex.extensions import db
    from privex.models import APIKey, AuthIdentity, Credential, OrganizationMember, User, Workspace
    from privex.services import credentials

    workspace = db.session.scalars(sa.select(Workspace)).one()
    users = [{"id": uuid.uuid4(), "username": f"member{number:04d}", "display_name": f"Member {number:04d}"}
             for number in range(ITEMS)]
    db.session.execute(sa.insert(User), users)
    db.session.execute(sa.insert(AuthIdentity), [{"id": uuid.uuid4(), "user_id": user["id"], "provider": "email",
                                                  "provider_id": f"{user['username']}@example.com",
                                                  "credentials": {}} for user in users])
    db.session.execute(sa.insert(OrganizationMember), [
        {"id": uuid.uuid4(), "organization_id": workspace.organization_id, "user_id": user["id"],
         "role": "member" if number % 20 else "admin"} for number, user in enumerate(users)])
    db.session.execute(sa.insert(APIKey), [
        {"id": uuid.uuid4(), "workspace_id": workspace.id, "name": f"Key {number:04d}", "prefix": f"pk_{number:010x}",
         "key_hash": "0" * 64, "permissions": ["chat"]} for number in range(ITEMS)])
    secret = credentials.encrypt({"token": "secret_bench_value_0123456789"})
    db.session.execute(sa.insert(Credential), [
        {"id": uuid.uuid4(), "workspace_id": workspace.id, "name": f"Credential {number:04d}", "provider": "notion",
         "credential_type": "token", "encrypted_data": secret, "metadata_": {"hints": {"token": "…6789"}}}
        for number in range(ITEMS)])
    db.session.commit()
    db.session.execute(sa.text("ANALYZE users; ANALYZE organization_members; ANALYZE api_keys; ANALYZE credentials"))
    db.session.commit()
    return [Case("Team members (1,001 members)", "/team"), Case("API keys (1,000 keys)", "/team/api-keys"),
            Case("Credentials (1,000 credentials)", "/team/credentials")]


AREAS = [knowledge_lists, chatbot_lists, team_lists]


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
