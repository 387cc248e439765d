"""The code, HTTP request, database, question classifier and parameter extractor nodes, run by the engine with the
core's real outbound functions: a local HTTP server, the suite's PostgreSQL, credentials stored in a workspace, the
sandbox, and the offline ``extractive`` provider."""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import socket
import threading

import pytest
from werkzeug import Response

from privex.models import Organization, Workspace
from privex.plugins import load_plugins
from privex.services import credentials
from privex.services.chatflows import engine, graph as graphs, outbound
from privex.services.chatflows.context import NodeContext
from privex.services.errors import Invalid


@pytest.fixture(scope="module")
def registry():
    return load_plugins(allow=["nodes"]).node_types


@pytest.fixture(scope="module")
def extractive():
    """An llm_fn backed by the real offline provider, as a chatflow's llm node calls it (no retrieved context)."""
    provider = load_plugins(allow=["llms"]).llm_providers["extractive"]

    def llm(messages, params):
        return "".join(e["text"] for e in provider.chat(messages, {}) if e["type"] == "delta")
    return llm


@pytest.fixture()
def workspace(app, database):
    organization = Organization(name="Acme")
    space = Workspace(name="main", organization=organization)
    database.session.add_all([organization, space])
    database.session.commit()
    return space


def stored(workspace, secret, provider="custom", name="cred"):
    return str(credentials.create(workspace, None, {"name": name, "provider": provider,
                                                    "credential_type": "custom"}, secret).id)


def one_node(node_type, config, answer="{{ n | tojson }}", **extra):
    return {"nodes": [{"id": "s", "type": "start", "config": {}},
                      {"id": "n", "type": node_type, "config": config, **extra},
                      {"id": "r", "type": "response", "config": {"text": answer}}],
            "edges": [{"source": "s", "source_port": "out", "target": "n", "target_port": "in"},
                      {"source": "n", "source_port": "out", "target": "r", "target_port": "in"}]}


def run(g, registry, ctx, text="hi"):
    graphs.validate(g, registry)
    events = list(engine.run(g, registry, ctx, text))
    errors = [e for e in events if e["type"] == "error"]
    return "".join(e["text"] for e in events if e["type"] == "delta"), errors[0]["message"] if errors else None


def schema_errors(g, registry):
    with pytest.raises(Invalid) as caught:
        graphs.validate(g, registry)
    return json.dumps(caught.value.errors)


# --- code -------------------------------------------------------------------------------------------------------


def test_code_node_runs_main_in_the_sandbox(registry):
    ctx = NodeContext(code_fn=outbound.code_runner())
    g = one_node("code", {"code": "def main(text, items):\n    return {'shout': text.upper(), 'n': len(items),"
                                  " '_port': 'hijack'}\n",
                          "inputs": {"text": "{{ input }}", "items": "[1, 2, 3]"}, "json_inputs": ["items"]},
                 answer="{{ n.shout }} / {{ n.n }} / {{ n._port is defined }}")
    assert run(g, registry, ctx, "hello") == ("HELLO / 3 / False", None)


HOSTILE = {
    "a socket": ("import socket\ndef main():\n    socket.create_connection(('1.1.1.1', 80))\n",
                 "network access is not allowed in code nodes"),
    "reading /etc/passwd": ("def main():\n    return {'p': open('/etc/passwd').read()}\n",
                            "FileNotFoundError: [Errno 2] No such file or directory: '/etc/passwd' (line 2)"),
    "writing outside /tmp": ("def main():\n    open('/usr/lib/x', 'w').write('x')\n",
                             "OSError: [Errno 30] Read-only file system: '/usr/lib/x' (line 2)"),
    "a fork bomb": ("import os\ndef main():\n    while True:\n        os.fork()\n",
                    "starting processes or threads is not allowed in code nodes"),
    "4 GB of memory": ("def main():\n    return {'n': len(bytearray(4 * 1024 ** 3))}\n",
                       "the code used more than 256 MB of memory"),
    "an endless loop": ("def main():\n    while True:\n        pass\n", "the code used more than 1 s of CPU"),
    "the environment": ("import os\ndef main():\n    return {'key': os.environ['PRIVEX_SECRET_KEY']}\n",
                        "KeyError: 'PRIVEX_SECRET_KEY' (line 3)"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_code_is_a_clear_node_error(registry, monkeypatch, case):
    monkeypatch.setenv("PRIVEX_SECRET_KEY", "the-servers-secret")
    source, message = HOSTILE[case]
    ctx = NodeContext(code_fn=outbound.code_runner(limits={"cpu_seconds": 1}))
    text, error = run(one_node("code", {"code": source}), registry, ctx)
    assert text == "" and error == f"Node 'n' failed: CodeFailed: {message}"
    assert run(one_node("code", {"code": "def main():\n    return {'ok': 1}\n"}, answer="{{ n.ok }}"), registry,
               ctx) == ("1", None)


def test_code_needs_the_sandbox_from_the_caller(registry):
    _, error = run(one_node("code", {"code": "def main():\n    return {}\n"}), registry, NodeContext())
    assert "Running code is not available to this chatflow" in error


def test_the_code_itself_is_never_a_template(registry):
    errors = schema_errors(one_node("code", {"code": "def main():\n    return {'x': '{{ input }}'}\n"}), registry)
    assert "should not be valid" in errors


# --- http_request -----------------------------------------------------------------------------------------------


def test_http_request_with_a_stored_bearer_token(registry, workspace, httpserver):
    seen = {}

    def handler(request):
        seen.update(auth=request.headers.get("Authorization"), host=request.headers.get("Host"),
                    body=request.get_data(as_text=True), accept=request.headers.get("Accept"))
        return Response(json.dumps({"orders": [{"id": 7, "status": "shipped"}]}), content_type="application/json")

    httpserver.expect_request("/orders", method="POST").respond_with_handler(handler)
    token = stored(workspace, {"token": "tok-123"})
    # "shop.internal" exists only in this resolver: the request reaching the test server shows the node connects to
    # the address the guard checked, with the name in Host, and never asks the system's resolver again.
    ctx = NodeContext(http_fn=outbound.guarded_http(allow_private=True, resolver=lambda host, port: ["127.0.0.1"]),
                      credential_fn=outbound.credential_reader(workspace))
    url = f"http://shop.internal:{httpserver.port}/orders"
    g = one_node("http_request", {"method": "POST", "url": url, "json": {"customer": "{{ input }}"},
                                  "headers": {"Accept": "application/json"},
                                  "auth": {"type": "bearer", "credential_id": token}},
                 answer="{{ n.status }} {{ n.json.orders[0].status }}")
    assert run(g, registry, ctx, "ada") == ("200 shipped", None)
    assert seen == {"auth": "Bearer tok-123", "host": f"shop.internal:{httpserver.port}",
                    "body": '{"customer": "ada"}', "accept": "application/json"}


def certificate_for(name: str, folder):
    """A CA and a server certificate for ``name`` it signed: (server SSLContext, client SSLContext trusting the CA)."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def make(subject, issuer, key, signer, ca, san=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = make(ca_name, ca_name, ca_key, ca_key, True)
    leaf = make(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key, ca_key, False, san=name)
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "leaf.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def test_https_is_pinned_to_the_checked_address_and_verified_against_the_name(tmp_path):
    from pytest_httpserver import HTTPServer

    server_context, trusted = certificate_for("shop.internal", tmp_path)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_context)
    server.expect_request("/hello").respond_with_data("hello over TLS")
    server.start()
    try:
        http = outbound.guarded_http(allow_private=True, resolver=lambda host, port: ["127.0.0.1"], verify=trusted)
        answer = http("GET", f"https://shop.internal:{server.port}/hello")
        assert (answer["status"], answer["body"]) == (200, "hello over TLS")
        # The same server under another name: the certificate does not match it, so nothing is read.
        with pytest.raises(outbound.OutboundFailed, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            http("GET", f"https://other.internal:{server.port}/hello")
    finally:
        server.clear()
        server.stop()


def test_http_request_basic_and_header_auth_and_a_long_body(registry, workspace, httpserver):
    httpserver.expect_request("/basic").respond_with_handler(
        lambda request: Response(request.headers.get("Authorization", "")))
    httpserver.expect_request("/key").respond_with_handler(
        lambda request: Response("x" * 5000 + request.headers.get("X-Shop-Key", "")))
    basic = stored(workspace, {"username": "ada", "password": "pw"}, name="basic")
    key = stored(workspace, {"api_key": "k-9"}, name="key")
    ctx = NodeContext(http_fn=outbound.guarded_http(allow_private=True),
                      credential_fn=outbound.credential_reader(workspace))
    text, _ = run(one_node("http_request", {"url": httpserver.url_for("/basic"),
                                            "auth": {"type": "basic", "credential_id": basic}},
                           answer="{{ n.body }}"), registry, ctx)
    assert text == "Basic " + base64.b64encode(b"ada:pw").decode()
    text, _ = run(one_node("http_request", {"url": httpserver.url_for("/key"), "max_body_chars": 10,
                                            "auth": {"type": "header", "header": "X-Shop-Key", "credential_id": key}},
                           answer="{{ n.body }} {{ n.truncated }} {{ n.json }}"), registry, ctx)
    assert text == "xxxxxxxxxx True None"


def test_another_workspaces_credential_is_not_found(registry, app, database, workspace, httpserver):
    other = Workspace(name="other", organization=workspace.organization)
    database.session.add(other)
    database.session.commit()
    foreign = stored(other, {"token": "theirs"})
    ctx = NodeContext(http_fn=outbound.guarded_http(allow_private=True),
                      credential_fn=outbound.credential_reader(workspace))
    _, error = run(one_node("http_request", {"url": httpserver.url_for("/"), "auth": {
        "type": "bearer", "credential_id": foreign}}), registry, ctx)
    assert f"the credential {foreign} does not exist in this workspace" in error


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data/",
                                 "http://10.1.2.3/admin", "http://[::1]:8080/", "http://localhost/",
                                 "http://[::ffff:127.0.0.1]/"])
def test_private_targets_are_refused_by_default(registry, url):
    ctx = NodeContext(http_fn=outbound.guarded_http())
    text, error = run(one_node("http_request", {"url": url}), registry, ctx)
    assert text == "" and "OutboundRefused" in error and "private or loopback" in error
    assert "PRIVEX_CHATFLOW_ALLOW_PRIVATE=1" in error


def test_only_http_urls_and_no_redirects(registry, httpserver):
    http = outbound.guarded_http(allow_private=True)
    for url in ("file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1/"):
        with pytest.raises(outbound.OutboundRefused, match="only http and https"):
            http("GET", url)
    httpserver.expect_request("/away").respond_with_data("", status=302,
                                                          headers={"Location": "http://169.254.169.254/"})
    answer = http("GET", httpserver.url_for("/away"))
    assert answer["status"] == 302 and answer["headers"]["location"] == "http://169.254.169.254/"


# --- database ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def tcp_relay(socket_path: str):
    """A port on 127.0.0.1 relaying to a Unix socket: the embedded PostgreSQL listens on a socket only, and a tenant's
    database is reached over TCP (a socket folder in a credential is refused)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source, target):
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            source.close()

    def accept():
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            server = socket.socket(socket.AF_UNIX)
            server.connect(socket_path)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


@pytest.fixture()
def shop_db(scratch_database):
    import psycopg
    from sqlalchemy.engine import make_url
    url = make_url(scratch_database)
    with contextlib.ExitStack() as stack:
        if url.query.get("host"):
            (socket_path,) = [p for p in glob.glob(os.path.join(url.query["host"], ".s.PGSQL.*"))
                              if not p.endswith(".lock")]
            url = url.set(host="127.0.0.1", port=stack.enter_context(tcp_relay(socket_path)), query={})
        url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(8, 2), placed date)")
            conn.execute("INSERT INTO orders SELECT i, 'c' || (i % 3), i * 1.5, date '2026-01-01' + i "
                         "FROM generate_series(1, 50) AS i")
        yield url


def orders_left(url):
    import psycopg
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


def test_database_select_with_parameters_and_a_row_limit(registry, workspace, shop_db):
    credential = stored(workspace, {"url": shop_db}, provider="postgres")
    ctx = NodeContext(sql_fn=outbound.sql_runner(outbound.credential_reader(workspace), allow_private=True))
    g = one_node("database", {"credential_id": credential, "max_rows": 3,
                              "query": "SELECT id, total, placed FROM orders WHERE customer = %s AND id > %s "
                                       "ORDER BY id", "params": ["{{ input }}", 10]},
                 answer="{{ n.rows | tojson }} {{ n.row_count }} {{ n.truncated }}")
    text, error = run(g, registry, ctx, "c1")
    assert error is None
    assert text == ('[{"id": 13, "placed": "2026-01-14", "total": 19.5}, {"id": 16, "placed": "2026-01-17", "total": '
                    '24}, {"id": 19, "placed": "2026-01-20", "total": 28.5}] 3 True')
    # The visitor's words stay a value: no row, and the table is still there.
    text, _ = run(g, registry, ctx, "c1'; DROP TABLE orders; --")
    assert text == "[] 0 False" and orders_left(shop_db) == 50


@pytest.mark.parametrize("query, message", [
    ("INSERT INTO orders VALUES (99, 'x', 1, now())", "only read-only queries"),
    ("DELETE FROM orders", "only read-only queries"),
    ("SELECT 1; DROP TABLE orders", "only one statement"),
    ("select 1 /* ; */ ; drop table orders", "only one statement"),
    ("WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone", "read-only transaction"),
    ("SELECT * FROM orders FOR UPDATE", "read-only transaction"),
    ("SELECT set_config('transaction_read_only', 'off', false)", "refused"),
])
def test_database_writes_are_refused(registry, workspace, shop_db, query, message):
    credential = stored(workspace, {"url": shop_db}, provider="postgres")
    ctx = NodeContext(sql_fn=outbound.sql_runner(outbound.credential_reader(workspace), allow_private=True))
    _, error = run(one_node("database", {"credential_id": credential, "query": query}), registry, ctx)
    assert error and message in error, error
    assert orders_left(shop_db) == 50


def test_the_server_enforces_read_only_even_past_the_statement_check(workspace, shop_db, monkeypatch):
    """The SELECT/one-statement check only gives a clearer message; PostgreSQL itself refuses the rest."""
    monkeypatch.setattr(outbound, "check_read_only", lambda query: None)
    credential = stored(workspace, {"url": shop_db}, provider="postgres")
    sql = outbound.sql_runner(outbound.credential_reader(workspace), allow_private=True)
    with pytest.raises(outbound.OutboundFailed, match="cannot insert multiple commands into a prepared statement"):
        sql(credential, "SELECT 1; DROP TABLE orders")
    with pytest.raises(outbound.OutboundRefused, match="cannot execute DELETE in a read-only transaction"):
        sql(credential, "DELETE FROM orders RETURNING id")
    assert orders_left(shop_db) == 50


def test_database_statement_timeout(registry, workspace, shop_db):
    credential = stored(workspace, {"url": shop_db}, provider="postgres")
    ctx = NodeContext(sql_fn=outbound.sql_runner(outbound.credential_reader(workspace), allow_private=True))
    _, error = run(one_node("database", {"credential_id": credential, "query": "SELECT pg_sleep(5)",
                                         "timeout": 0.3}), registry, ctx)
    assert "the query ran longer than 0.3 s and was cancelled" in error


def test_database_host_is_guarded_and_the_url_cannot_point_at_server_files(registry, workspace, shop_db):
    credential = stored(workspace, {"url": shop_db}, provider="postgres")
    ctx = NodeContext(sql_fn=outbound.sql_runner(outbound.credential_reader(workspace)))
    _, error = run(one_node("database", {"credential_id": credential, "query": "SELECT 1"}), registry, ctx)
    assert "private or loopback" in error
    sneaky = stored(workspace, {"url": shop_db + "?sslmode=require&sslkey=/etc/shadow"}, name="sneaky")
    socket_dir = stored(workspace, {"url": "postgresql:///postgres?host=/var/run/postgresql"}, name="socket")
    ctx = NodeContext(sql_fn=outbound.sql_runner(outbound.credential_reader(workspace), allow_private=True))
    _, error = run(one_node("database", {"credential_id": sneaky, "query": "SELECT 1"}), registry, ctx)
    assert "the connection URL may not set sslkey" in error
    _, error = run(one_node("database", {"credential_id": socket_dir, "query": "SELECT 1"}), registry, ctx)
    assert "must name one database host" in error


def test_the_query_is_never_a_template(registry):
    errors = schema_errors(one_node("database", {"credential_id": "x", "query": "SELECT '{{ input }}'"}), registry)
    assert "should not be valid" in errors


# --- question_classifier ----------------------------------------------------------------------------------------

CLASSES = [{"name": "Billing", "description": "invoices, payments, refunds and prices"},
           {"name": "Shipping", "description": "delivery times, tracking a parcel, couriers"},
           {"name": "Account", "description": "passwords, login, profile settings"}]


def classifier_flow():
    nodes = [{"id": "s", "type": "start", "config": {}},
             {"id": "q", "type": "question_classifier", "config": {"classes": CLASSES}}]
    edges = [{"source": "s", "source_port": "out", "target": "q", "target_port": "in"}]
    for port, answer in (("class1", "billing"), ("class2", "shipping"), ("class3", "account"), ("other", "other")):
        nodes.append({"id": answer, "type": "response", "config": {"text": f"{answer} via {{{{ q.method }}}}"}})
        edges.append({"source": "q", "source_port": port, "target": answer, "target_port": "in"})
    return {"nodes": nodes, "edges": edges}


@pytest.mark.parametrize("llm_answer, routed", [
    ("Shipping", "shipping via llm"), ("  account.", "account via llm"), ("2", "shipping via llm"),
    ("The question is about Billing.", "billing via llm"), ("other", "other via llm"),
])
def test_classifier_follows_the_class_the_llm_names(registry, llm_answer, routed):
    asked = []
    ctx = NodeContext(llm_fn=lambda messages, provider: asked.append(messages) or llm_answer)
    assert run(classifier_flow(), registry, ctx, "Where is my parcel?") == (routed, None)
    assert "2. Shipping: delivery times" in asked[0][0]["content"] and asked[0][1]["content"] == "Where is my parcel?"


@pytest.mark.parametrize("question, routed", [
    ("I was charged twice, I need a refund on my invoice", "billing via lexical"),
    ("How do I track my parcel?", "shipping via lexical"),
    ("I forgot my password", "account via lexical"),
    ("What is the meaning of life?", "other via lexical"),
])
def test_classifier_with_the_offline_provider_falls_back_to_word_overlap(registry, extractive, question, routed):
    ctx = NodeContext(llm_fn=extractive)
    assert run(classifier_flow(), registry, ctx, question) == (routed, None)
    assert run(classifier_flow(), registry, ctx, question) == (routed, None)  # deterministic


# --- parameter_extractor ----------------------------------------------------------------------------------------

PARAMETERS = [{"name": "email", "type": "string", "description": "the customer's email address", "required": True},
              {"name": "tickets", "type": "number", "required": True},
              {"name": "breakfast", "type": "boolean"},
              {"name": "city", "type": "string", "required": True}]


def extract(registry, ctx, text):
    g = one_node("parameter_extractor", {"parameters": PARAMETERS})
    answer, error = run(g, registry, ctx, text)
    assert error is None, error
    return json.loads(answer)


def test_extractor_reads_the_llms_json(registry):
    reply = 'Sure! ```json\n{"email": "ada@example.com", "tickets": "3", "breakfast": "yes", "city": null}\n```'
    ctx = NodeContext(llm_fn=lambda messages, provider: reply)
    out = extract(registry, ctx, "anything")
    assert out == {"email": "ada@example.com", "tickets": 3, "breakfast": True, "city": None, "missing": ["city"],
                   "method": "llm"}


def test_extractor_falls_back_to_rules_when_the_llm_gives_no_json(registry, extractive):
    ctx = NodeContext(llm_fn=extractive)
    out = extract(registry, ctx, "Book 2 tickets for ada.l@example.org, city: Paris, no breakfast please")
    assert out == {"email": "ada.l@example.org", "tickets": 2, "breakfast": False, "city": "Paris", "missing": [],
                   "method": "rules"}
    out = extract(registry, ctx, "hello there")
    assert out["missing"] == ["email", "tickets", "city"] and out["breakfast"] is None and out["method"] == "none"


# --- the runtime's context --------------------------------------------------------------------------------------


def test_the_runtime_context_gives_flows_the_sandbox_the_guard_and_the_workspaces_credentials(
        app, registry, workspace, httpserver, monkeypatch):
    from privex.services.chatflows import runtime

    httpserver.expect_request("/me").respond_with_handler(
        lambda request: Response(json.dumps({"auth": request.headers.get("Authorization")}),
                                 content_type="application/json"))
    token = stored(workspace, {"token": "t-1"})
    g = one_node("http_request", {"url": httpserver.url_for("/me"), "auth": {"type": "bearer", "credential_id": token}},
                 answer="{{ n.json.auth }}")
    _, error = run(g, registry, runtime.context_for(workspace, config={}))
    assert "private or loopback" in error  # the operator has not allowed private addresses
    monkeypatch.setitem(app.config, "CHATFLOW_ALLOW_PRIVATE", True)
    assert run(g, registry, runtime.context_for(workspace, config={})) == ("Bearer t-1", None)
    code = one_node("code", {"code": "def main(x):\n    return {'y': x + 1}\n", "inputs": {"x": 41}},
                    answer="{{ n.y }}")
    assert run(code, registry, runtime.context_for(workspace, config={})) == ("42", None)
