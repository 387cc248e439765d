"""`privex serve` as an operator runs it: several on one host, warm workers, a supervised Celery worker."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.test_processes import fetch_json, free_port, stop, wait_for

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
