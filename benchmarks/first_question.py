"""The first questions a freshly started `privex serve` answers: does the first visitor wait longer than the tenth?

Method: a temporary instance folder; ``privex serve`` (its defaults: 2 gunicorn workers, a Celery worker) once to set
up through the API (sign up, a knowledge base of three documents of ``tests/data/retrieval/``, indexed, a bot with
the offline ``extractive`` provider, an API key); then stopped and started again, and as soon as /api/v1/health is
all ok, eight questions are sent one after another through the public API (not streamed), each on a new connection
so gunicorn's workers share them. Reported: each question's time to the full answer.

``BENCH_FIRST_WAIT``: seconds to wait after /api/v1/health is ok before the first question, default 0 (to tell the
web workers' own start from what else the machine does just after a start).

``python -m benchmarks.first_question`` runs it alone (about a minute).
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.chat import (API, DATA, PASSWORD, PRIVEX, _free_port, _stop, _wait_for, api_call, questions,
                             wait_until_indexed)

QUESTIONS = 8
WAIT = float(os.environ.get("BENCH_FIRST_WAIT", "0"))


def _serve(instance: Path, port: int, log: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"PRIVEX_INSTANCE_PATH": str(instance), "PRIVEX_RATELIMIT_DEFAULT": ""})
    with log.open("a") as output:
        process = subprocess.Popen([PRIVEX, "serve", "--port", str(port)], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    _wait_for(f"http://127.0.0.1:{port}{API}/health", process, 300, "privex serve")
    return process


def _set_up(base: str) -> tuple[str, str]:
    import httpx

    with httpx.Client(base_url=base + API, timeout=120) as client:
        call = functools.partial(api_call, client)

        account = call("POST", "/auth/email/signup", 201, json={"email": "first@example.com", "password": PASSWORD,
                                                                 "display_name": "First"})
        client.headers["Authorization"] = f"Bearer {account['access_token']}"
        knowledge_base = call("POST", "/knowledge-bases", 201, json={"name": "Handbook"})
        for path in sorted(DATA.glob("*.md"))[:3]:
            call("POST", f"/knowledge-bases/{knowledge_base['id']}/documents/upload", 202,
                 files=[("files", (path.name, path.read_bytes(), "text/markdown"))])
            wait_until_indexed(call, knowledge_base["id"])
        bot = call("POST", "/chatbots", 201, json={"name": "First", "knowledge_base_ids": [knowledge_base["id"]]})
        key = call("POST", f"/workspaces/{account['context']['workspace_id']}/api-keys", 201,
                   json={"name": "first", "permissions": ["chat"]})["key"]
    return bot["public_id"], key


def _ask_fresh(base: str, public_id: str, key: str) -> list[float]:
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
    asked = questions()
    timings = []
    with httpx.Client(base_url=base + API, timeout=120, headers=headers) as client:
        session = client.post(f"/public/bots/{public_id}/sessions", json={"external_user_id": "first"}).json()
        url = f"/public/bots/{public_id}/sessions/{session['session_id']}/messages"
        for number in range(QUESTIONS):
            started = time.perf_counter()
            response = client.post(url, json={"message": asked[number]})
            timings.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"question {number + 1} answered {response.status_code}: {response.text[:300]}")
    return timings


def measure() -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        instance, log = Path(folder) / "instance", Path(folder) / "serve.log"
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = _serve(instance, port, log)
        try:
            public_id, key = _set_up(base)
        finally:
            _stop(server)
        server = _serve(instance, port, log)
        try:
            time.sleep(WAIT)
            return _ask_fresh(base, public_id, key)
        finally:
            _stop(server)


def run() -> str:
    timings = measure()
    rows = "".join(f"| {number} | {seconds * 1000:.0f} |\n" for number, seconds in enumerate(timings, 1))
    return ("\n### The first questions after `privex serve` starts (2 web workers, a new connection each)\n\n"
            f"| question | ms |\n|---|---|\n{rows}"
            f"\nSlowest of the first four: {max(timings[:4]) * 1000:.0f} ms; median of the last four: "
            f"{statistics.median(timings[4:]) * 1000:.0f} ms.\n")


if __name__ == "__main__":
    print(run())
