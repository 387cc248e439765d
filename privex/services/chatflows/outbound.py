"""What a chatflow may reach outside the server, as the plain functions the runtime puts on a ``NodeContext``:

- ``guarded_http(...)``  → ``ctx.http``: one HTTP request to a public address (``privex.network_guard``, the same
  guard as the source connectors), connected to the address that was checked (no second DNS answer), no redirects
  followed, no proxy from the environment, the body read up to a limit;
- ``credential_reader(workspace)`` → ``ctx.credential``: a stored credential of the flow's workspace, decrypted and
  written to its audit log;
- ``sql_runner(read_credential, ...)`` → ``ctx.sql``: one parameterised, read-only query on an external PostgreSQL
  whose connection URL a credential holds;
- ``code_runner(...)`` → ``ctx.run_code``: sandbox.py's ``run_code`` with the operator's settings.

Everything a tenant controls (URL, host, query) is checked here, in the core, so a third-party node gets the same
guard a built-in one does.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import os
import re
import uuid
from typing import Callable

import httpx
import psycopg
from psycopg import conninfo as pg_conninfo

from privex.contracts import SourceError
from privex.network_guard import Resolver, refuse_private_host, system_resolver
from privex.services import credentials
from privex.services.chatflows.sandbox import run_code

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_HTTP_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 1_000_000
MAX_SQL_ROWS = 1000
MAX_SQL_SECONDS = 30.0
# The only connection settings a tenant's URL may carry: others (sslkey, sslrootcert, passfile, service, options)
# would make libpq read files on this server or change the session the read-only guard relies on.
PG_SETTINGS = {"host", "port", "dbname", "user", "password", "sslmode", "application_name", "connect_timeout"}
NO_FILE = "/nonexistent/privex-no-file"
ALLOW_HINT = "the operator can allow private addresses with PRIVEX_CHATFLOW_ALLOW_PRIVATE=1"


class OutboundRefused(Exception):
    """The target is not allowed (private address, bad scheme, not a read-only query); nothing was sent."""


class OutboundFailed(Exception):
    """The target could not be reached or answered with an error."""


def _checked_address(host: str, port: int, resolver: Resolver, allow_private: bool, action: str) -> str:
    """The address to connect to: the first one ``host`` resolves to, after the guard refused any private one."""
    try:
        if allow_private:
            addresses = resolver(host, port)
        else:
            addresses = refuse_private_host(host, port, resolver, action=action)
    except SourceError as error:
        hint = f" ({ALLOW_HINT})" if "private" in str(error) else ""
        raise OutboundRefused(f"{error}{hint}") from None
    except OSError as error:
        raise OutboundFailed(f"could not find the host {host}") from error
    if not addresses:
        raise OutboundFailed(f"could not find the host {host}")
    return addresses[0]


def guarded_http(*, allow_private: bool = False, resolver: Resolver = system_resolver,
                 max_bytes: int = MAX_RESPONSE_BYTES, verify=True) -> Callable:
    """``http(method, url, headers=None, body=None, timeout=10) -> {"status", "headers", "body", "truncated"}``.

    ``verify`` is httpx's: True (the system's CAs), or an ``ssl.SSLContext`` trusting an operator's own CA. The
    certificate is checked against the URL's host name, not the address connected to."""

    def http(method: str, url: str, headers: dict | None = None, body: str | bytes | None = None,
             timeout: float = 10.0) -> dict:
        method = str(method).upper()
        if method not in METHODS:
            raise OutboundRefused(f"the HTTP method must be one of {', '.join(METHODS)}")
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as error:
            raise OutboundRefused(f"not a URL: {url!r} ({error})") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise OutboundRefused(f"only http and https URLs can be requested, not {url!r}")
        port = target.port or (443 if target.scheme == "https" else 80)
        address = _checked_address(target.host, port, resolver, allow_private, "connect to")
        sent = {str(k): str(v) for k, v in (headers or {}).items()}
        sent = {k: v for k, v in sent.items() if k.lower() != "host"}
        sent["Host"] = target.netloc.decode("ascii").rpartition("@")[2]
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = max(0.1, min(float(timeout), MAX_HTTP_TIMEOUT))
        try:
            with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, verify=verify) as client:
                request = client.build_request(method, target.copy_with(host=address), headers=sent,
                                               content=body, extensions=extensions)
                response = client.send(request, stream=True)
                try:
                    data, truncated = bytearray(), False
                    for chunk in response.iter_bytes():
                        data += chunk
                        if len(data) > max_bytes:
                            data, truncated = data[:max_bytes], True
                            break
                finally:
                    response.close()
                text = bytes(data).decode(response.encoding or "utf-8", "replace")
                return {"status": response.status_code, "headers": dict(response.headers), "body": text,
                        "truncated": truncated}
        except httpx.TimeoutException:
            raise OutboundFailed(f"{target.host} did not answer within {timeout:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, ValueError) as error:
            raise OutboundFailed(f"the request to {target.host} failed: {error}") from None

    return http


def credential_reader(workspace, purpose: str = "chatflow") -> Callable:
    """``credential(credential_id) -> dict``: the decrypted secret of a credential of ``workspace`` only, refreshed
    when it is an expiring OAuth token, audited (``credentials.use``). The audit entry commits with the caller."""

    def credential(credential_id) -> dict:
        try:
            key = uuid.UUID(str(credential_id))
        except ValueError:
            raise OutboundRefused(f"{credential_id!r} is not a credential id") from None
        found = credentials.in_workspace(workspace.id, key)
        if found is None:
            raise OutboundRefused(f"the credential {credential_id} does not exist in this workspace")
        try:
            return credentials.use(found, purpose)
        except credentials.CredentialUnreadable as error:
            raise OutboundFailed(str(error)) from None
        except SourceError as error:
            raise OutboundFailed(str(error)) from None

    return credential


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/", re.S)


def check_read_only(query: str) -> None:
    """A clear refusal for what is plainly not one read-only statement. Not the guard itself: the read-only
    transaction and the prepared (single-statement) execution are what the server enforces."""
    if not isinstance(query, str) or not query.strip():
        raise OutboundRefused("the query is empty")
    bare = _QUOTED.sub(" ", query).strip().rstrip(";").strip()
    if ";" in bare:
        raise OutboundRefused("only one statement can be run; remove the ';'")
    first = re.match(r"[(\s]*(\w+)", bare)
    if not first or first.group(1).lower() not in ("select", "with"):
        raise OutboundRefused("only read-only queries (SELECT or WITH ... SELECT) can be run")


def _json_value(value):
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _connection_settings(url, resolver, allow_private) -> dict:
    if not isinstance(url, str) or not url.strip():
        raise OutboundRefused('the credential holds no PostgreSQL connection URL (a secret like {"url": '
                              '"postgresql://user:password@host:5432/db"})')
    try:
        settings = pg_conninfo.conninfo_to_dict(url.strip())
    except psycopg.Error:
        raise OutboundRefused("the credential's connection URL is not a PostgreSQL URL") from None
    extra = sorted(set(settings) - PG_SETTINGS)
    if extra:
        raise OutboundRefused(f"the connection URL may not set {', '.join(extra)}")
    host = str(settings.get("host") or "")
    if not host or host.startswith("/") or "," in host:
        raise OutboundRefused("the connection URL must name one database host (no socket folder, no host list)")
    try:
        port = int(settings.get("port") or 5432)
    except ValueError:
        raise OutboundRefused("the connection URL's port is not a number") from None
    settings["hostaddr"] = _checked_address(host, port, resolver, allow_private, "connect to")
    settings["port"] = port
    # libpq would otherwise fill in what the URL leaves out from the server's own files: the operator's ~/.pgpass
    # password and ~/.postgresql client certificate must never go to a tenant's database.
    settings.update(passfile=os.devnull, sslcert=NO_FILE, sslkey=NO_FILE)
    return settings


def sql_runner(read_credential: Callable, *, allow_private: bool = False,
               resolver: Resolver = system_resolver) -> Callable:
    """``sql(credential_id, query, params=None, max_rows=100, timeout=5) -> {"rows", "row_count", "truncated"}``.

    The credential's secret holds ``url`` (or ``dsn``): a PostgreSQL URL. The query runs with ``%s`` / ``%(name)s``
    parameters in a ``READ ONLY`` transaction with ``statement_timeout``, prepared (so one statement only), and is
    rolled back; at most ``max_rows`` rows come back."""

    def sql(credential_id, query: str, params=None, max_rows: int = 100, timeout: float = 5.0) -> dict:
        check_read_only(query)
        if params is not None and not isinstance(params, (list, tuple, dict)):
            raise OutboundRefused("the query parameters must be a list (for %s) or an object (for %(name)s)")
        max_rows = max(1, min(int(max_rows), MAX_SQL_ROWS))
        timeout = max(0.1, min(float(timeout), MAX_SQL_SECONDS))
        secret = read_credential(credential_id)
        settings = _connection_settings(secret.get("url") or secret.get("dsn"), resolver, allow_private)
        settings["connect_timeout"] = max(1, min(int(settings.get("connect_timeout") or timeout), 10))
        try:
            with psycopg.connect(**settings, autocommit=False) as connection:
                connection.read_only = True
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(int(timeout * 1000))])
                        cursor.execute(query, params or None, prepare=True)
                        if cursor.description is None:
                            raise OutboundRefused("the query returned no rows (it is not a SELECT)")
                        names = [column.name for column in cursor.description]
                        fetched = cursor.fetchmany(max_rows + 1)
                finally:
                    connection.rollback()
        except psycopg.errors.QueryCanceled:
            raise OutboundFailed(f"the query ran longer than {timeout:g} s and was cancelled") from None
        except psycopg.errors.ReadOnlySqlTransaction as error:
            raise OutboundRefused(f"only read-only queries can be run ({error.diag.message_primary})") from None
        except psycopg.OperationalError as error:
            raise OutboundFailed(f"could not connect to the database: {str(error).strip().splitlines()[-1]}") \
                from None
        except psycopg.Error as error:
            raise OutboundFailed(f"the database refused the query: {error.diag.message_primary or error}") from None
        rows = [{name: _json_value(value) for name, value in zip(names, row)} for row in fetched[:max_rows]]
        return {"rows": rows, "row_count": len(rows), "truncated": len(fetched) > max_rows, "columns": names}

    return sql


def code_runner(*, allow_unsafe: bool = False, limits: dict | None = None) -> Callable:
    """``run_code(code, inputs) -> dict`` with the operator's settings bound."""
    return functools.partial(run_code, limits=limits, allow_unsafe=allow_unsafe)
