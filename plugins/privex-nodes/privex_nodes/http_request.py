"""The HTTP request node: one request through ``ctx.http``, which the core guards (public addresses only unless the
operator allows private ones, the checked address is the one connected to, no redirects followed). Authentication
comes from a stored credential, so no secret sits in the flow's settings."""

from __future__ import annotations

import base64
import json

_STR = {"type": "string", "maxLength": 20000}
MAX_BODY_CHARS = 200_000


class HttpRequestNode:
    """Outputs ``status``, ``headers``, ``body`` (text, at most ``max_body_chars``), ``json`` (the parsed body when
    it is JSON, else null) and ``truncated``. ``fail_on_status`` makes a 4xx/5xx answer a node error (so the retry
    and error policies apply); by default it is data a condition can test."""
    name, version = "http_request", "1"
    config_schema = {"type": "object", "required": ["url"], "additionalProperties": False, "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]},
        "url": {"type": "string", "minLength": 1, "maxLength": 4000},
        "headers": {"type": "object", "maxProperties": 50, "additionalProperties": _STR},
        "body": _STR,
        "json": {},
        "auth": {"type": "object", "additionalProperties": False, "required": ["type"], "properties": {
            "type": {"enum": ["none", "bearer", "basic", "header"]},
            "credential_id": {"type": "string"},
            "header": {"type": "string", "maxLength": 100}}},
        "timeout": {"type": "number", "minimum": 0.1, "maximum": 30},
        "max_body_chars": {"type": "integer", "minimum": 0, "maximum": MAX_BODY_CHARS},
        "fail_on_status": {"type": "boolean"}}}
    inputs, outputs = ("in",), ("out",)

    def run(self, ctx, inputs):
        c = inputs["config"]
        headers = dict(c.get("headers") or {})
        body = c.get("body")
        if "json" in c:
            body = json.dumps(c["json"])
            headers.setdefault("Content-Type", "application/json")
        headers.update(self.auth_headers(ctx, c.get("auth") or {"type": "none"}))
        answer = ctx.http(c.get("method", "GET"), c["url"], headers, body, c.get("timeout", 10))
        if c.get("fail_on_status") and answer["status"] >= 400:
            raise RuntimeError(f"{c['url']} answered HTTP {answer['status']}")
        limit = c.get("max_body_chars", 100_000)
        text = answer["body"]
        parsed = None
        content_type = {k.lower(): v for k, v in answer["headers"].items()}.get("content-type", "")
        if "json" in content_type and not answer.get("truncated"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return {"status": answer["status"], "headers": answer["headers"], "body": text[:limit], "json": parsed,
                "truncated": bool(answer.get("truncated")) or len(text) > limit}

    @staticmethod
    def auth_headers(ctx, auth) -> dict:
        """bearer: the secret's ``token`` (or ``access_token``, ``api_key``); basic: ``username`` and ``password``;
        header: the header ``auth.header`` (default ``X-API-Key``) set to ``value`` (or ``api_key``, ``token``)."""
        kind = auth.get("type", "none")
        if kind == "none":
            return {}
        if not auth.get("credential_id"):
            raise ValueError(f"{kind} authentication needs a credential_id")
        secret = ctx.credential(auth["credential_id"])

        def first(*names):
            for name in names:
                if isinstance(secret.get(name), str) and secret[name]:
                    return secret[name]
            raise ValueError(f"the credential has none of {', '.join(names)} for {kind} authentication")

        if kind == "bearer":
            return {"Authorization": f"Bearer {first('token', 'access_token', 'api_key')}"}
        if kind == "basic":
            pair = f"{first('username', 'user')}:{first('password')}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {auth.get("header") or "X-API-Key": first("value", "api_key", "token")}
