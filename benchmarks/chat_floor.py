"""The floor under a chat message's CPU: what the same web server costs for a request that does nothing else.

The chat benchmark (``benchmarks.chat``) compares the platform's CPU per message with one naive query embedding. Part
of that CPU is the price of any request through the stack a message takes, whatever PrivexBot does in it. This
measures that price on its own, with the chat benchmark's load generator (``Connection``: keep-alive HTTP/1.1,
closed loop) against gunicorn gthread with the same workers and threads as ``privex serve``
(``PRIVEX_WEB_WORKERS``/``PRIVEX_WEB_THREADS``, else 2 × 8 on two cores):

- ``wsgi``: a bare WSGI function that reads the JSON body and streams the 8 server-sent events a chat answer has
  (6 deltas, citations, done), each written as it is made: gunicorn's own cost;
- ``flask``: the same as a Flask view (``request.get_json()``, a streamed ``Response``): gunicorn and Flask;
- ``flask + 4 statements``: the Flask view also runs four one-row statements on a pooled PostgreSQL connection
  through SQLAlchemy (a read, ``BEGIN``, an insert, ``COMMIT``: the shape of a message's storing), against the
  embedded PostgreSQL in a temporary folder. Its CPU counts PostgreSQL's too.

CPU per request is the gunicorn workers' (and PostgreSQL's) user + system time over the requests answered
(psutil). ``python -m benchmarks.chat_floor`` (about a minute); ``BENCH_FLOOR_SECONDS`` (default 15) per row,
``BENCH_FLOOR_USERS`` (default 100).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.chat import Connection, _free_port, _stop, _wait_for, tree_seconds

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_FLOOR_SECONDS", "15"))
USERS = int(os.environ.get("BENCH_FLOOR_USERS", "100"))
EVENTS = [{"type": "delta", "text": f"word{n} "} for n in range(6)] + [
    {"type": "citations", "citations": [{"n": 1, "document_name": "handbook.md", "text": "x" * 200}]},
    {"type": "done", "message_id": "00000000-0000-0000-0000-000000000000", "usage": {}, "latency_ms": 1}]


def _events():
    for event in EVENTS:
        yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def wsgi(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    json.loads(environ["wsgi.input"].read(length) or b"{}")
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    return _events()


def _flask_app(database_url: str | None):
    from flask import Flask, Response, request

    app = Flask("floor")
    engine = None
    if database_url:
        import sqlalchemy as sa

        engine = sa.create_engine(database_url, pool_size=8, max_overflow=10)  # its table: made by ``run``

    @app.post("/m")
    def message():
        payload = request.get_json()
        if engine is not None:
            import sqlalchemy as sa

            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1")).scalar()
                connection.execute(sa.text("INSERT INTO floor (body) VALUES (:body)"), {"body": payload["message"]})
                connection.commit()
        return Response(_events(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def flask_app():
    return _flask_app(os.environ.get("FLOOR_DATABASE_URL"))


def _serve(target: str, port: int, env: dict, log) -> subprocess.Popen:
    from privex.config import settings_from_env

    settings = settings_from_env({key: value for key, value in os.environ.items()
                                  if key in ("PRIVEX_WEB_WORKERS", "PRIVEX_WEB_THREADS")})
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(settings["WEB_WORKERS"]),
         "--threads", str(settings["WEB_THREADS"]), "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def _load(port: int, users: int, seconds: float) -> int:
    body = json.dumps({"message": "How many days of leave?", "stream": True}).encode()
    deadline = time.perf_counter() + seconds
    answered = 0

    async def user():
        nonlocal answered
        connection = Connection("127.0.0.1", port, "Bearer none")
        try:
            while time.perf_counter() < deadline:
                try:
                    status, _, _ = await connection.post("/m", body, time.perf_counter())
                except OSError:  # a connection refused at the start, when all users connect at once: again
                    await connection.close()
                    await asyncio.sleep(0.05)
                    continue
                answered += status == 200
        finally:
            await connection.close()

    await asyncio.gather(*(user() for _ in range(users)))
    return answered


def measure(target: str, env: dict, extra_processes=()) -> tuple[float, float]:
    """(requests/s, CPU ms per request) of ``target`` under the load."""
    import psutil

    port = _free_port()
    log = tempfile.TemporaryFile()
    server = _serve(target, port, env, log)
    try:
        _wait_for(f"http://127.0.0.1:{port}/m", server, 30, f"gunicorn serving {target}")  # a GET: 405, it answers
        asyncio.run(_load(port, 4, 1.0))  # warm-up
        watched = [psutil.Process(server.pid), *extra_processes]
        before, began = sum(map(tree_seconds, watched)), time.perf_counter()
        answered = asyncio.run(_load(port, USERS, SECONDS))
        elapsed, cpu = time.perf_counter() - began, sum(map(tree_seconds, watched)) - before
        if not answered:
            log.seek(0)
            ending = log.read()[-3000:].decode(errors="replace")
            raise RuntimeError(f"{target} answered no request; its log ends:\n{ending}")
        return answered / elapsed, cpu / answered * 1000
    finally:
        _stop(server)
        log.close()


def run() -> str:
    import psutil

    from privex import embedded

    rows = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows.append(("wsgi", *measure("benchmarks.chat_floor:wsgi", env)))
    rows.append(("flask", *measure("benchmarks.chat_floor:flask_app()", env)))
    with tempfile.TemporaryDirectory(prefix="privex-floor-") as folder:
        pgdata = Path(folder).resolve() / "pgdata"
        url = embedded.postgres_url(pgdata, "floor")
        try:
            # Made once here: each gunicorn worker making it as it started raced the other (CREATE TABLE IF NOT
            # EXISTS is not safe run twice at once), and the loser failed to boot.
            import sqlalchemy as sa

            setup = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with setup.begin() as connection:
                connection.execute(sa.text("CREATE TABLE floor (id bigserial PRIMARY KEY, body text)"))
            setup.dispose()
            postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
            rows.append(("flask + 4 statements", *measure("benchmarks.chat_floor:flask_app()",
                                                          {**env, "FLOOR_DATABASE_URL": url}, [postmaster])))
        finally:
            embedded._handles.pop(f"pg:{pgdata}").cleanup()  # stopped before its folder is removed
    lines = ["### The floor: any request through the same server (`python -m benchmarks.chat_floor`)", "",
             f"gunicorn gthread as `privex serve` runs it, {USERS} users for {SECONDS:.0f} s with the chat "
             "benchmark's load generator; each request reads a JSON body and streams the 8 events of a chat answer. "
             "CPU: the gunicorn workers (and PostgreSQL, in the last row) per request.", "",
             "| request | requests/s | CPU ms per request |", "|---|---|---|"]
    lines += [f"| {name} | {rate:.0f} | {cpu:.2f} |" for name, rate, cpu in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
