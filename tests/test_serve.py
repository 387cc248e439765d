"""`privex serve` as an operator runs it: several on one host, warm workers, a supervised Celery worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psutil
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.helpers import PASSWORD
from tests.test_processes import fetch_json, free_port, running, stop, wait_for

pytestmark = pytest.mark.slow


def answering(port: int, process: subprocess.Popen | None = None):
    """The health report's status code once the web server answers at all (503 without a worker is an answer)."""
    if process is not None and process.poll() is not None:
        raise AssertionError(f"the server exited with {process.returncode}")
    return fetch_json(f"http://127.0.0.1:{port}/api/v1/health")[0]


def start_serve(privex_command, env, port, log_path, *options):
    log = log_path.open("w")
    process = subprocess.Popen([*privex_command, "serve", "--port", str(port), *options], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    return process


def test_two_servers_on_one_host_do_not_stop_each_other(app, privex_command, subprocess_env, tmp_path):
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir(mode=0o700)
    servers = {}
    for name in ("first", "second"):
        env = {**subprocess_env, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
               "PRIVEX_INSTANCE_PATH": str(tmp_path / name), "PRIVEX_WEB_WORKERS": "1", "PRIVEX_WEB_THREADS": "2"}
        port = free_port()
        servers[name] = (start_serve(privex_command, env, port, tmp_path / f"{name}.log", "--no-worker",
                                     "--no-migrate"), port)
    try:
        for name, (process, port) in servers.items():
            wait_for(lambda: answering(port, process), 120, interval=0.5, what=f"the {name} server to answer")
        first, _ = servers["first"]
        assert stop(first, signal.SIGTERM, timeout=60) == 0, (tmp_path / "first.log").read_text()[-3000:]
        second, second_port = servers["second"]
        assert answering(second_port) and second.poll() is None
        # Its control socket (gunicornc) is its own, in its instance folder, and still there.
        assert (tmp_path / "second" / "gunicorn.ctl").is_socket()
        assert not (runtime / "gunicorn.ctl").exists() and not (home / ".gunicorn").exists()
        assert stop(second, signal.SIGINT, timeout=60) == 0
    finally:
        for process, _ in servers.values():
            stop(process, timeout=60)
    second_log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in second_log and "Control server error" not in second_log, second_log[-3000:]
    assert not (tmp_path / "second" / "gunicorn.ctl").exists()  # removed by the server that made it


def test_web_workers_load_the_embedding_model_before_they_accept_a_connection(app, privex_command, subprocess_env,
                                                                              tmp_path):
    env = {**subprocess_env, "PRIVEX_INSTANCE_PATH": str(tmp_path / "instance"), "PRIVEX_WEB_WORKERS": "1",
           "PRIVEX_WEB_THREADS": "2"}
    port = free_port()
    server = start_serve(privex_command, env, port, tmp_path / "serve.log", "--no-worker", "--no-migrate")
    try:
        wait_for(lambda: answering(port, server), 120, interval=0.5, what="the server to answer")
        # The first answer came from a worker that had already loaded the model: the line is written before it
        # accepts connections (gunicorn's post_worker_init).
        warmed = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()
                  if '"web worker warmed up"' in line]
        assert len(warmed) == 1 and "all-MiniLM-L6-v2" in warmed[0]["embedding_models"]
    finally:
        assert stop(server, signal.SIGINT, timeout=60) == 0


def log_lines(path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def started_worker_pids(path) -> list[int]:
    return [line["pid"] for line in log_lines(path) if line["message"].startswith("started the Celery worker")]


# Enough that the worker cannot index them all between the test seeing the first ones indexed and killing it: it
# takes them in batches (PRIVEX_INGEST_BATCH) and once indexed 40 tiny notes in that moment.
NOTES = 200


def test_a_killed_worker_is_started_again_and_every_document_it_held_gets_indexed_once(
        privex_command, subprocess_env, scratch_database, tmp_path):
    import httpx

    env = {**subprocess_env, "DATABASE_URL": scratch_database, "PRIVEX_INSTANCE_PATH": str(tmp_path / "instance"),
           "PRIVEX_WEB_WORKERS": "1", "PRIVEX_WEB_THREADS": "4", "PRIVEX_WORKER_CONCURRENCY": "1",
           "PRIVEX_RATELIMIT_DEFAULT": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    port = free_port()
    log = tmp_path / "serve.log"
    server = start_serve(privex_command, env, port, log)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60)
    try:
        wait_for(lambda: answering(port, server) == 200, 180, interval=0.5, what="the server and its worker")
        account = api.post("/auth/email/signup", json={"email": "ops@example.com", "password": PASSWORD,
                                                       "display_name": "Ops"}).json()
        api.headers["Authorization"] = f"Bearer {account['access_token']}"
        kb_id = api.post("/knowledge-bases", json={"name": "Notes"}).json()["id"]
        notes = [(f"note-{number:03}.md", f"# Note {number}\n\nShelf {number} holds the {number}th box of spare "
                                          f"parts. Ask the warehouse desk for shelf {number}.\n".encode())
                 for number in range(NOTES)]
        for start in range(0, NOTES, 100):  # at most 100 files an upload
            batch = notes[start:start + 100]
            uploaded = api.post(f"/knowledge-bases/{kb_id}/documents/upload",
                                files=[("files", (name, body, "text/markdown")) for name, body in batch])
            assert uploaded.status_code == 202, uploaded.text

        def documents():
            listed, page = [], 1
            while True:
                found = api.get(f"/knowledge-bases/{kb_id}/documents",
                                params={"page": page, "page_size": 50}).json()
                listed += found
                if len(found) < 50:
                    return listed
                page += 1

        def statuses():
            return [document["status"] for document in documents()]

        # Kill the worker (its main process, as the OOM killer would) while it is in the middle of the list.
        wait_for(lambda: statuses().count("indexed") >= 3, 180, interval=0.2, what="the first documents indexed")
        [worker_pid] = started_worker_pids(log)
        pool = [child.pid for child in psutil.Process(worker_pid).children()]
        os.kill(worker_pid, signal.SIGKILL)
        assert statuses().count("indexed") < len(notes)  # it died with work left

        final = wait_for(lambda: (lambda listed: all(d["status"] == "indexed" for d in listed) and listed)(
            documents()), 240, interval=1, what="every document indexed after the restart")
        assert len(final) == len(notes) and all(d["chunks_total"] == 1 for d in final)
        with psycopg.connect(make_url(scratch_database).set(drivername="postgresql").render_as_string(
                hide_password=False)) as connection:
            chunks = dict(connection.execute("SELECT document_id::text, count(*) FROM chunks GROUP BY 1").fetchall())
        assert chunks == {d["id"]: 1 for d in final}  # each once: nothing indexed twice side by side

        restarts = [line["message"] for line in log_lines(log) if line["message"].startswith("the Celery worker")]
        assert len(restarts) == 1 and restarts[0].startswith(f"the Celery worker (pid {worker_pid}) was killed by "
                                                             f"SIGKILL after ")
        assert len(started_worker_pids(log)) == 2
        assert not [pid for pid in pool if running(pid)]  # its pool processes went with it
    finally:
        api.close()
        code = stop(server, signal.SIGINT, timeout=90)
    assert code == 0
    assert not [pid for pid in started_worker_pids(log) if running(pid)]
