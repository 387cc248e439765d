"""Where the platform's time goes in one chat message: N streamed messages through the public API, in one process
(the Flask test client, no HTTP server), against a real embedded PostgreSQL and Redis and the fake OpenAI-compatible
LLM of ``benchmarks/fake_llm.py`` in another process, the same bot as ``benchmarks.chat`` sets up.

Per message it prints, from N messages without the profiler: this process's CPU milliseconds (user + system) and
wall milliseconds, PostgreSQL's CPU milliseconds (the server and its backends), the SQL statements (count and time,
and each distinct statement with its count), the Redis round trips (a pipeline is one) and their time; and a
cProfile of N more messages: the CPU time inside chosen stages (retrieval, the query embedding, the provider's
stream, SSE serialisation, prompt fitting, authorization) and the functions that cost most on their own.

Environment: ``BENCH_PROFILE_MESSAGES`` (default 200) measured messages after 20 of warm-up; ``BENCH_PROFILE_TOP``
(default 25) rows of the cProfile table; ``BENCH_PROFILE_DUMP``: a file to write the cProfile statistics to
(for ``pstats``/snakeviz). ``python -m benchmarks.chat_profile``, or within ``make bench`` (about 2 minutes).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import sqlalchemy as sa

from benchmarks.chat import DATA, _free_port, _stop, _wait_for

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("BENCH_PROFILE_MESSAGES", "200"))
TOP = int(os.environ.get("BENCH_PROFILE_TOP", "25"))
WARMUP = 20

# (label, a piece of the file's path, the function's name): cumulative time inside each, per message.
STAGES = [
    ("whole request (test client)", "werkzeug/test.py", "open"),
    ("public route: authorize (key/origin)", "privex/api/public.py", "authorize"),
    ("  api_key_caller (key query; not on the message route)", "privex/tenancy/context.py", "api_key_caller"),
    ("  key_caller (the key's checks; read with the bot)", "privex/tenancy/context.py", "key_caller"),
    ("live_bot_and_session (fingerprint, session, key, history: one query)", "privex/services/conversations.py",
     "live_bot_and_session"),
    ("  _read_bot (the bot not in the cache)", "privex/services/conversations.py", "_read_bot"),
    ("respond (before the stream)", "privex/services/conversations.py", "respond"),
    ("  rate limits (Redis)", "privex/services/conversations.py", "rate_limit"),
    ("  provider_params (credential)", "privex/services/conversations.py", "provider_params"),
    ("  recent_history (read with the session on the public route)", "privex/services/conversations.py",
     "recent_history"),
    ("  gather_context (retrieval)", "privex/services/conversations.py", "gather_context"),
    ("    query embedding", "llama_index/core/base/embeddings/base.py", "get_query_embedding"),
    ("  fit (prompt, tokens)", "privex/services/conversations.py", "fit"),
    ("_stream (deltas, storing the answer)", "privex/services/conversations.py", "_stream"),
    ("  provider stream (HTTP to the fake LLM)", "privex_llms/provider_client.py", "stream"),
    ("    httpx cookie jar (none kept: the jar does nothing)", "httpx/_models.py", "extract_cookies"),
    ("  store (message, usage, session: one statement)", "privex/services/conversations.py", "store"),
    ("SSE lines (json.dumps per event)", "privex/api/answers.py", "lines"),
    ("CORS after_request (bot query)", "privex/api/public.py", "cors"),
    ("SQLAlchemy commit", "sqlalchemy/orm/session.py", "commit"),
]


def _app(folder: Path):
    from privex import embedded
    from privex.app import create_app

    database = embedded.postgres_url(folder / "pgdata", "privex_profile")
    redis_url = embedded.redis_url(folder / "redis")
    app = create_app({"SECRET_KEY": "profile-secret-key-not-for-production", "SQLALCHEMY_DATABASE_URI": database,
                      "REDIS_URL": redis_url, "INSTANCE_PATH": str(folder / "instance"),
                      "CELERY_TASK_ALWAYS_EAGER": True, "WTF_CSRF_ENABLED": False, "TRACE_PLUGINS": False})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    return app


def _set_up(app, llm: str) -> tuple[str, str]:
    """The bot of ``benchmarks.chat`` (13 documents, provider openai on the fake LLM), an API key, a session."""
    from privex.extensions import db

    client = app.test_client()

    def call(method, path, status, **kwargs):
        response = client.open(f"/api/v1{path}", method=method, **kwargs)
        assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[:500])
        return response.get_json()

    account = call("POST", "/auth/email/signup", 201, json={"email": "profile@example.com",
                                                            "password": "Bench-mark-42!", "display_name": "P"})
    auth = {"Authorization": f"Bearer {account['access_token']}"}
    knowledge_base = call("POST", "/knowledge-bases", 201, json={"name": "Handbook"}, headers=auth)
    for path in sorted(DATA.glob("*.md")):
        call("POST", f"/knowledge-bases/{knowledge_base['id']}/documents/upload", 202, headers=auth,
             data={"files": (io.BytesIO(path.read_bytes()), path.name)}, content_type="multipart/form-data")
    bot = call("POST", "/chatbots", 201, headers=auth, json={
        "name": "Bench", "knowledge_base_ids": [knowledge_base["id"]],
        "config": {"provider": "openai", "model_params": {"base_url": f"{llm}/v1", "model": "bench"},
                   "rate_limit_per_minute": 100_000}})
    key = call("POST", f"/workspaces/{account['context']['workspace_id']}/api-keys", 201, headers=auth,
               json={"name": "bench", "permissions": ["chat"]})["key"]
    with app.app_context():
        db.session.execute(sa.text("UPDATE organizations SET subscription_tier = 'enterprise' WHERE id = :id"),
                           {"id": account["context"]["organization_id"]})
        db.session.commit()
    session = call("POST", f"/public/bots/{bot['public_id']}/sessions", 201, json={},
                   headers={"Authorization": f"Bearer {key}"})
    return f"/api/v1/public/bots/{bot['public_id']}/sessions/{session['session_id']}/messages", key


class Counters:
    """SQL statements, PostgreSQL's other round trips and Redis round trips seen while ``on``. The other round trips
    are psycopg's commands (``BEGIN``, ``COMMIT``, ``ROLLBACK``: its private ``_exec_command``, which each one goes
    through) and SQLAlchemy's pings of a pooled connection (``do_ping``); they go through no SQLAlchemy event."""

    def __init__(self, engine):
        import psycopg._connection_base
        import redis.connection

        self.on, self.statements, self.sql_seconds, self.redis_calls, self.redis_seconds = False, Counter(), 0.0, 0, 0.0
        self.commands = Counter()
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)
        counters = self
        command = psycopg._connection_base.BaseConnection._exec_command
        ping = engine.dialect.do_ping

        def exec_command(connection, sent, *args, **kwargs):
            if counters.on:
                text = sent.decode(errors="replace") if isinstance(sent, (bytes, bytearray)) else str(sent)
                counters.commands[(text.split() or ["?"])[0].upper()] += 1
            return command(connection, sent, *args, **kwargs)

        def do_ping(dbapi_connection):
            if counters.on:
                counters.commands["ping"] += 1
            return ping(dbapi_connection)

        psycopg._connection_base.BaseConnection._exec_command = exec_command
        engine.dialect.do_ping = do_ping
        original = redis.connection.AbstractConnection.send_packed_command
        read = redis.connection.AbstractConnection.read_response

        def send(connection, *args, **kwargs):
            if counters.on:
                counters.redis_calls += 1
            return original(connection, *args, **kwargs)

        def read_response(connection, *args, **kwargs):
            began = time.perf_counter()
            try:
                return read(connection, *args, **kwargs)
            finally:
                if counters.on:
                    counters.redis_seconds += time.perf_counter() - began

        redis.connection.AbstractConnection.send_packed_command = send
        redis.connection.AbstractConnection.read_response = read_response

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["profile_began"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.sql_seconds += time.perf_counter() - conn.info.pop("profile_began", time.perf_counter())
            self.statements[re.sub(r"\s+", " ", statement)[:110]] += 1


def _postgres_cpu(folder: Path) -> float:
    total = 0.0
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(str(folder / "pgdata") in part for part in process.info["cmdline"] or []) or (
                    process.name().startswith("postgres") and process.parent() is not None
                    and any(str(folder / "pgdata") in part for part in process.parent().cmdline())):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except (psutil.Error, TypeError):
            continue
    return total


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="privex-chat-profile-") as temporary:
        folder = Path(temporary)
        llm_port = _free_port()
        fake_llm = subprocess.Popen([sys.executable, "-m", "benchmarks.fake_llm", str(llm_port)], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            llm = f"http://127.0.0.1:{llm_port}"
            _wait_for(f"{llm}/health", fake_llm, 30, "the fake LLM")
            app = _app(folder)
            url, key = _set_up(app, llm)
            with app.app_context():
                from privex.extensions import db

                counters = Counters(db.engine)
            client = app.test_client()
            headers = {"Authorization": f"Bearer {key}"}

            def message(number):
                response = client.post(url, headers=headers, json={"message": f"How many days of leave? {number}",
                                                                    "stream": True})
                body = response.get_data(as_text=True)
                assert response.status_code == 200 and "event: done" in body, body[:500]

            for number in range(WARMUP):
                message(number)
            counters.on = True  # first without the profiler: CPU, wall time, statements and round trips
            pg_before, cpu_before, began = _postgres_cpu(folder), time.process_time(), time.perf_counter()
            for number in range(MESSAGES):
                message(number)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu_before
            postgres = _postgres_cpu(folder) - pg_before
            counters.on = False
            profiler = cProfile.Profile(time.process_time)  # then where the CPU goes, not waiting on PostgreSQL
            profiled = time.process_time()
            profiler.enable()
            for number in range(MESSAGES):
                message(number)
            profiler.disable()
            profiled = time.process_time() - profiled
        finally:
            _stop(fake_llm)
        return report(profiler, counters, wall, cpu, postgres, profiled)


def report(profiler, counters: Counters, wall: float, cpu: float, postgres: float, profiled: float) -> str:
    per = 1000 / MESSAGES
    lines = ["### One chat message profiled (`python -m benchmarks.chat_profile`)", "",
             f"{MESSAGES} streamed messages, one at a time, Flask test client in one process, then {MESSAGES} more "
             "under cProfile (timed by time.process_time: stage and function times are this process's CPU, inflated "
             "by the profiler; compare runs of this script with each other).", "",
             f"- this process: CPU {cpu * per:.1f} ms/message, wall {wall * per:.1f} ms/message (profiled: CPU "
             f"{profiled * per:.1f} ms/message)",
             f"- PostgreSQL server CPU: {postgres * per:.1f} ms/message",
             f"- SQL: {sum(counters.statements.values()) / MESSAGES:.1f} statements/message, "
             f"{counters.sql_seconds * per:.1f} ms/message (wall, client side)",
             "- PostgreSQL round trips besides the statements: " + (", ".join(
                 f"{name} {count / MESSAGES:.1f}" for name, count in counters.commands.most_common()) or "none")
             + " per message",
             f"- Redis: {counters.redis_calls / MESSAGES:.1f} round trips/message, "
             f"{counters.redis_seconds * per:.2f} ms/message (wall)", "", "SQL statements per message:", ""]
    for statement, count in counters.statements.most_common():
        lines.append(f"  {count / MESSAGES:5.2f}  {statement}")
    stats = pstats.Stats(profiler)
    if os.environ.get("BENCH_PROFILE_DUMP"):
        stats.dump_stats(os.environ["BENCH_PROFILE_DUMP"])
    lines += ["", "CPU inside stages (cumulative, ms per message):", ""]
    for label, path, name in STAGES:
        total = sum(entry[3] for (filename, _line, function), entry in stats.stats.items()
                    if function == name and path in filename)
        lines.append(f"  {total * per:7.2f}  {label}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(TOP)
    lines += ["", "Functions by own time:", "", out.getvalue().split("\n\n", 2)[-1].rstrip()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
