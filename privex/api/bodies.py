"""The request boundary: what every request (API, pages, back office) must be before a view, a parser or any
recursive code reads it.

- A JSON body is scanned as bytes, without recursion, and refused (400) when nested deeper than ``MAX_DEPTH``, when
  one object or array holds more than ``MAX_ITEMS`` entries, or when it holds more than ``MAX_VALUES`` in all; only
  then is it parsed, and a body that is not JSON (or holds NaN/Infinity, which no database column takes) is a 400.
- Every string a request carries — JSON keys and values at any depth, query string names and values, and on the
  API form fields and multipart file names — is refused (422, naming the field by its dotted path) when it holds a
  NUL character or a lone UTF-16 surrogate: PostgreSQL stores neither, so they used to surface as 500s deep inside a
  service. The pages' forms are left to the pages, which show the refusal beside the field.
- An API route reads one kind of body: a JSON body sent to an upload, or a form to a JSON route, is a 415 saying
  which one the route takes (it used to reach the route's parser as "no body" and answer 422 "missing field").
- A form over werkzeug's part or field limits answers 413 naming that limit, not the body-size one.

What lives elsewhere: the body-type check for routes that declare no body (``privex.api.errors``), the size limit
(``MAX_CONTENT_LENGTH``, from ``PRIVEX_MAX_UPLOAD_MB``) and every field's own validation (the route's schema).
"""

from __future__ import annotations

import json
import math
import re

from flask import Flask, current_app, request
from werkzeug.exceptions import (BadRequest, NotFound, RequestEntityTooLarge, UnprocessableEntity,
                                 UnsupportedMediaType)

from privex.api.errors import wants_json

# Ample for any real configuration (a chatflow graph is ~6 deep); the bound that keeps recursive code safe.
MAX_DEPTH = 32
MAX_ITEMS = 10_000  # entries in one object or array
MAX_VALUES = 100_000  # objects, arrays and entries in the whole body
MAX_INTEGER_DIGITS = 64  # more than any id, count or amount needs; Python refuses past 4,300 with a confusing hint
MAX_REPORTED = 20  # unstorable strings named in one answer

# A string token (escapes included) or one structural character; everything else (numbers, literals, white space)
# is skipped by the regular expression engine. Unrolled so a long string is matched in one pass.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class ClosingUploads:
    """A request that closes every upload's temporary file even when werkzeug stopped parsing the form half-way
    (a limit hit): the files it had already made were never handed to ``request.files``, so nothing closed them.
    Mixed into whatever request class the app ends up with (htmx-flask sets its own): ``close_uploads``."""

    def _get_file_stream(self, *args, **kwargs):
        stream = super()._get_file_stream(*args, **kwargs)
        self.__dict__.setdefault("_upload_streams", []).append(stream)
        return stream

    def close(self) -> None:
        super().close()
        for stream in self.__dict__.get("_upload_streams", ()):
            stream.close()


def close_uploads(app: Flask) -> None:
    """Give the app's request class (as the extensions left it) the ``ClosingUploads`` behaviour; call it once
    everything that sets a request class has run."""
    if not issubclass(app.request_class, ClosingUploads):
        app.request_class = type("Request", (ClosingUploads, app.request_class), {})


def init_app(app: Flask) -> None:
    close_uploads(app)
    # Uploads are one part per file; the other limits are werkzeug's defaults, named here so 413s can say which.
    app.config["MAX_FORM_PARTS"] = int(app.config["MAX_UPLOAD_FILES"])
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", 500_000)
    app.before_request(guard_request)


def guard_request() -> None:
    _require_the_routes_body_type()
    errors = {}
    parsed = _bounded_json(request.get_data(cache=True)) if request.is_json and request.content_length != 0 else None
    # Every JSON body is bounded (above), wherever it goes. Storable text is the API's rule here; the pages (the
    # builder, the back office, sign-in, the preview's JSON) check their own forms, query strings and bodies and show
    # each refusal where it was made (beside its field, in the chat): a bare 422 page would lose what was typed.
    if wants_json():
        if parsed is not None:
            errors.update(_unstorable(parsed, ()))
        errors.update(_unstorable_pairs(request.args.lists()))
    if request.mimetype in FORM_TYPES and wants_json():
        form, files = _form()
        errors.update(_unstorable_pairs(form.lists()))
        errors.update(_unstorable_filenames(files.lists()))
    if errors:
        refuse(422, "Some text cannot be stored: NUL characters (\\u0000) and unpaired UTF-16 surrogates are not "
                    "accepted in any field; see `errors`.", dict(list(errors.items())[:MAX_REPORTED]))
    _refuse_unstorable_path_arguments()


def refuse(status: int, message: str, errors: dict | None = None):
    """Raise ``status`` with our error body under /api and Flask's HTML page (showing ``message``) elsewhere."""
    error_class = {400: BadRequest, 404: NotFound, 413: RequestEntityTooLarge, 415: UnsupportedMediaType,
                   422: UnprocessableEntity}[status]
    error = error_class(description=message)
    error.data = {"message": message, "errors": errors or {}}
    raise error


# -- JSON bodies ---------------------------------------------------------------------------------------------------

def check_json_shape(raw: bytes) -> str | None:
    """Why ``raw`` JSON is too deep or too large to parse, or None. Never recurses, never builds the value."""
    open_counts: list[int] = []  # entries seen so far in each open object/array (commas + 1 once non-empty)
    values = 0
    for token in _TOKENS.finditer(raw):
        char = token.group()[:1]
        if char == b'"':
            continue
        if char in b"[{":
            if len(open_counts) >= MAX_DEPTH:
                return f"The JSON body is nested deeper than {MAX_DEPTH} levels."
            open_counts.append(1)
        elif char == b",":
            if open_counts:
                open_counts[-1] += 1
                if open_counts[-1] > MAX_ITEMS:
                    return f"An object or array in the JSON body has more than {MAX_ITEMS:,} entries."
        else:
            if open_counts:
                open_counts.pop()
            continue
        values += 1
        if values > MAX_VALUES:
            return f"The JSON body holds more than {MAX_VALUES:,} values."
    return None


def _bounded_json(raw: bytes):
    problem = check_json_shape(raw)
    if problem:
        refuse(400, f"{problem} Send a smaller body.", {"json": [problem]})
    try:
        return json.loads(raw, parse_constant=_not_json, parse_float=_finite, parse_int=_integer)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, NaN, huge numbers
        message = f"The request body cannot be read as JSON: {error}."
        refuse(400, message, {"json": [message]})


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large for a number")
    return number


# -- strings PostgreSQL cannot store -------------------------------------------------------------------------------

def unstorable_reason(text) -> str | None:
    """Why PostgreSQL cannot store ``text``; None when it can, and for anything but a string (a form field the
    client sent with no value reaches the app as None from some clients: there is nothing in it to refuse)."""
    if not isinstance(text, str):
        return None
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored"
    return f"contains an unpaired UTF-16 surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode"


def _unstorable(value, root: tuple) -> dict[str, list[str]]:
    """Every unstorable key and string in a parsed JSON value, by dotted path (depth is already bounded)."""
    errors = {}
    pending = [(root, value)]
    while pending and len(errors) < MAX_REPORTED:
        path, value = pending.pop()
        if isinstance(value, str):
            reason = unstorable_reason(value)
            if reason:
                errors[_dotted(path)] = [f"This value {reason}."]
        elif isinstance(value, dict):
            for key, item in value.items():
                reason = unstorable_reason(key)
                if reason:
                    errors[_dotted((*path, key))] = [f"This key {reason}."]
                pending.append(((*path, key), item))
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return errors


def _dotted(path: tuple) -> str:
    if not path:
        return "_schema"
    # The path names the field in the answer; the answer itself must stay printable and valid Unicode.
    return ".".join(_UNSTORABLE.sub("\ufffd", str(part)) for part in path)


def _unstorable_pairs(pairs) -> dict[str, list[str]]:
    errors = {}
    for name, values in pairs:
        reasons = [unstorable_reason(name)] + [unstorable_reason(value) for value in values]
        found = [reason for reason in reasons if reason]
        if found:
            errors[_dotted((name,))] = [f"This {'name' if reasons[0] else 'value'} {found[0]}."]
    return errors


def _unstorable_filenames(pairs) -> dict[str, list[str]]:
    errors = {}
    for name, storages in pairs:
        for index, storage in enumerate(storages):
            reason = unstorable_reason(storage.filename or "")
            if reason:
                path = (name, "filename") if len(storages) == 1 else (name, index, "filename")
                errors[_dotted(path)] = [f"The file name {reason}."]
    return errors


def _refuse_unstorable_path_arguments() -> None:
    """An id in the path that no row can hold (``/public/bots/%00``) names nothing: 404, before any query runs."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and unstorable_reason(value):
            refuse(404, f"Not found: the `{name}` in the path {unstorable_reason(value)}.")


# -- which body a route reads, and forms -----------------------------------------------------------------------------

def _body_locations() -> set[str]:
    """Where the matched API view reads its arguments from (flask-smorest's ``@blp.arguments`` records them)."""
    if request.url_rule is None:
        return set()
    view = current_app.view_functions.get(request.url_rule.endpoint)
    view_class = getattr(view, "view_class", None)
    handler = getattr(view_class, request.method.lower(), None) if view_class else view
    parameters = getattr(handler, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return {parameter.get("in") for parameter in parameters} & {"json", "form", "files"}


def _require_the_routes_body_type() -> None:
    if not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    reads = _body_locations()
    if "json" in reads and not request.is_json:
        refuse(415, f"This endpoint reads a JSON body: send it as application/json, not "
                    f"{request.mimetype or 'an untyped body'}.")
    if reads & {"form", "files"} and request.mimetype not in FORM_TYPES:
        refuse(415, f"This endpoint takes files: send them as multipart/form-data, not "
                    f"{request.mimetype or 'an untyped body'}.")


def _form():
    """The parsed form and files; werkzeug's 413s say which of its limits was hit."""
    try:
        return request.form, request.files
    except RequestEntityTooLarge as error:
        refuse(413, _which_form_limit(error))


def _which_form_limit(error: RequestEntityTooLarge) -> str:
    config = current_app.config
    if request.content_length and request.content_length > (request.max_content_length or math.inf):
        return f"The request body is larger than the {config['MAX_UPLOAD_MB']} MB limit."
    # werkzeug raises the same exception for both remaining limits: where it was raised tells them apart.
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    if frame.tb_frame.f_code.co_name == "next_event":
        return (f"The form has more than {config['MAX_FORM_PARTS']:,} parts: send at most "
                f"{config['MAX_FORM_PARTS']:,} files in one upload (PRIVEX_MAX_UPLOAD_FILES), and the rest in "
                f"another request.")
    return (f"A form field other than a file is larger than {config['MAX_FORM_MEMORY_SIZE'] // 1000:,} kB; send "
            f"large content as a file.")
