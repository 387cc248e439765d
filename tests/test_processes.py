"""End-to-end: real processes. A Celery worker round-trip, `privex serve` from nothing, shared embedded servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest
from sqlalchemy.engine import make_url

from privex import embedded
from privex.extensions import get_redis
from privex.tasks.heartbeat import HOUSEKEEPING_KEY, live_workers

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode


def running(pid: int) -> bool:
    """Alive and not a zombie (in a container, nobody may reap the daemonized postmaster)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_real_worker_runs_tasks_in_the_app_context(app, make_app, privex_command, subprocess_env, services, tmp_path):
    application = make_app(CELERY_TASK_ALWAYS_EAGER=False)
    # A draft that expired a day ago left its uploads behind: the worker's housekeeping removes them.
    abandoned = Path(application.instance_path) / "drafts" / str(uuid.uuid4()) / str(uuid.uuid4())
    abandoned.mkdir(parents=True)
    (abandoned / "hours.md").write_text("# Hours")
    old = time.time() - 25 * 3600
    os.utime(abandoned, (old, old))
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([*privex_command, "worker", "--concurrency", "1"], env=subprocess_env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        with application.app_context():
            from privex.tasks.smoke import ping

            result = ping.delay("round-trip").get(timeout=60)
            assert result["echo"] == "round-trip"
            assert result["app"] == "privex"
            assert result["pid"] != os.getpid()
            assert result["database"] == make_url(services["database_url"]).database
            wait_for(lambda: live_workers(get_redis()), 30, what="the worker's heartbeat")
            health = application.test_client().get("/api/v1/health").get_json()
            assert health["status"] == "ok" and health["worker"]["ok"]
            wait_for(lambda: not abandoned.exists(), 30, what="the housekeeping to remove an expired draft's files")
            assert get_redis().get(HOUSEKEEPING_KEY).startswith("celery@")  # the worker that ran it
    finally:
        stop(worker)
        log.close()
    with application.app_context():
        assert live_workers(get_redis()) == []  # a worker that shut down says so at once


def fetch_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except OSError:
        return None, None


def test_serve_starts_everything_from_nothing_and_stops_it(privex_command, tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PRIVEX_INSTANCE_PATH": str(instance), "PRIVEX_WEB_WORKERS": "1", "PRIVEX_WEB_THREADS": "4",
                "PRIVEX_WORKER_CONCURRENCY": "1", "PYTHONUNBUFFERED": "1"})
    output = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([*privex_command, "serve", "--port", str(port)], env=env, stdout=output,
                              stderr=subprocess.STDOUT)
    try:
        status, body = wait_for(
            lambda: (lambda r: r if r[0] == 200 else None)(fetch_json(f"http://127.0.0.1:{port}/api/v1/health")),
            120, interval=0.5, what="/api/v1/health to answer 200")
        assert body["status"] == "ok"
        assert all(body[part]["ok"] for part in ("database", "redis", "worker"))
        assert (instance / "pgdata" / "PG_VERSION").exists()
        postmaster_pid = int((instance / "pgdata" / "postmaster.pid").read_text().split()[0])
        redis_socket = json.loads((instance / "redis" / "redis.db.settings").read_text())["unixsocket"]
        assert Path(redis_socket).exists()
        printed = (tmp_path / "serve.log").read_text()
        assert f"PrivexBot is running at http://127.0.0.1:{port}" in printed
        assert "privex create-admin" in printed
    finally:
        code = stop(server, signal.SIGINT, timeout=60)
        output.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-3000:]
    assert not (instance / "pgdata" / "postmaster.pid").exists()
    assert not running(postmaster_pid)
    wait_for(lambda: not Path(redis_socket).exists(), 15, what="the embedded Redis to stop")


SHARER = textwrap.dedent("""
    import json, sys
    import sqlalchemy as sa
    from privex.app import create_app
    from privex.extensions import db, get_redis

    app = create_app()
    with app.app_context():
        pid = open(app.instance_path + "/pgdata/postmaster.pid").read().split()[0]
        buffers = db.session.execute(sa.text(  # in MB (the setting counts 8 kB pages)
            "SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'")).scalar()
        db.session.rollback()
        print(json.dumps({"postgres": pid, "redis": app.config["REDIS_URL"], "shared_buffers": buffers}), flush=True)
        sys.stdin.readline()
        db.session.execute(sa.text("SELECT 1"))
        get_redis().ping()
        db.session.remove()
        db.engine.dispose()
        print("still-working", flush=True)
""")


def test_processes_of_one_install_share_the_embedded_servers(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env["PRIVEX_INSTANCE_PATH"] = str(tmp_path / "instance")

    log_path = tmp_path / "sharers.log"

    def start(log):
        return subprocess.Popen([sys.executable, "-c", SHARER], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log, text=True)

    def line(process):
        text = process.stdout.readline()
        assert text, f"a sharer exited early ({process.poll()}):\n" + log_path.read_text()[-4000:]
        return text

    # A new install: both processes create the data folders at once (gunicorn workers and a Celery worker do).
    with log_path.open("w") as log, start(log) as first, start(log) as second:
        first_info = json.loads(line(first))
        second_info = json.loads(line(second))
        assert first_info == second_info  # one PostgreSQL and one Redis, not two
        # A new install's server starts with our settings, not PostgreSQL's 128 MB of shared buffers.
        assert f"{first_info['shared_buffers']}MB" == embedded.settings()["shared_buffers"]

        first.stdin.write("\n")
        first.stdin.flush()
        assert line(first).strip() == "still-working"
        assert first.wait(timeout=30) == 0
        # The first process is gone; the servers stay up for the second.
        second.stdin.write("\n")
        second.stdin.flush()
        assert line(second).strip() == "still-working"
        assert second.wait(timeout=30) == 0
    assert not Path(tmp_path / "instance" / "pgdata" / "postmaster.pid").exists()  # the last one out stopped it
    socket_path = first_info["redis"][len("unix://"):].split("?")[0]
    wait_for(lambda: not Path(socket_path).exists(), 15, what="the embedded Redis to stop")


def test_an_existing_data_folder_gets_the_settings_once_at_its_next_start(tmp_path):
    conf = tmp_path / "postgresql.conf"
    conf.write_text("max_connections = 100\n")
    embedded._write_settings(tmp_path)
    embedded._write_settings(tmp_path)
    assert conf.read_text().count("include_if_exists = 'privex.conf'") == 1
    assert conf.read_text().startswith("max_connections = 100\n")
    written = (tmp_path / "privex.conf").read_text()
    assert f"shared_buffers = '{embedded.settings()['shared_buffers']}'" in written


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:  # the connection dropped: the worker died under it
        return None, repr(error)


def test_hostile_bodies_cannot_kill_a_web_worker(app, privex_command, subprocess_env, tmp_path):
    """Bodies nested 100,000 deep (~200 KB) used to crash the gunicorn worker with SIGSEGV (py_ecc had raised the
    recursion limit, so the json decoder overflowed the thread's stack), taking every request on its threads down.
    Now each is a 400 and the workers, and a normal request in flight beside them, carry on."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**subprocess_env, "PRIVEX_WEB_WORKERS": "2", "PRIVEX_WEB_THREADS": "4"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([*privex_command, "serve", "--port", str(port), "--no-worker", "--no-migrate"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: fetch_json(f"{base}/api/v1/plugins")[0] == 200, 120, interval=0.5,
                 what="the web server to answer")
        workers = {child.pid for child in psutil.Process(server.pid).children()}
        assert len(workers) == 2, workers
        deep = b"[" * 100_000 + b"]" * 100_000
        some = str(uuid.uuid4())
        hostile = [
            ("/api/v1/auth/email/login", b'{"email": ' + deep + b', "password": "x"}'),
            ("/api/v1/auth/email/login", deep),  # a top-level array
            ("/api/v1/knowledge-bases", b'{"name": "kb", "chunking_config": ' + deep + b"}"),
            (f"/api/v1/chatbots/{some}", b'{"config": ' + deep + b"}"),
            (f"/api/v1/workspaces/{some}", b'{"settings": ' + deep + b"}"),
            ("/api/v1/credentials", b'{"name": "n", "provider": "notion", "secret": ' + deep + b"}"),
            (f"/api/v1/knowledge-bases/{some}/query", b'{"query": "q", "filters": ' + deep + b"}"),
            (f"/api/v1/knowledge-bases/{some}/query", b'{"query": "q", "filters": ' + b'{"a": ' * 1000 + b"1"
             + b"}" * 1000 + b"}"),
            ("/login", deep),  # a page, not the API
        ]
        normal_answers = []
        hostile_done = threading.Event()

        def normal_traffic():  # a few hundred requests at most, until the hostile ones are answered
            for _ in range(500):
                normal_answers.append(fetch_json(f"{base}/api/v1/plugins")[0])
                if hostile_done.is_set():
                    return

        with ThreadPoolExecutor(max_workers=5) as pool:
            beside = pool.submit(normal_traffic)
            try:
                answers = list(pool.map(lambda call: (call[0], *post(base + call[0], call[1])), hostile * 3))
            finally:
                hostile_done.set()
            beside.result(timeout=120)
        for path, status, text in answers:
            assert status == 400 and "nested deeper than 32" in text, (path, status, text[:300])
            if path.startswith("/api/"):
                assert json.loads(text)["code"] == 400
        assert normal_answers and set(normal_answers) == {200}, normal_answers
        assert {child.pid for child in psutil.Process(server.pid).children()} == workers  # none died or restarted
        assert "SIGSEGV" not in (tmp_path / "serve.log").read_text()
    finally:
        stop(server, signal.SIGINT, timeout=60)
        log.close()
