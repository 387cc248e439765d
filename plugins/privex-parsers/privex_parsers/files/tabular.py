"""Structured uploads: CSV (rows grouped, each written as "column: value" lines) and JSON (flattened to
"path.to.key: value" lines, grouped by top-level key or index).

Both write every value next to its column or path, so a chunk cut from the middle still says what each value is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from llama_index.core.schema import Document

from privex.contracts import UnreadableDocument
from privex_parsers.files.document import decode_text, read_bytes, shorten, upload_document

COLUMNS_LENGTH = 500
PATH_LENGTH = 200
SPLIT_DEPTH = 20  # how far down a large JSON value is split; below, its lines stay together


class CsvParser:
    """A CSV file, ``rows_per_document`` rows per Document; the delimiter (, ; tab |) is detected."""

    name = "csv"
    extensions = (".csv", ".tsv")
    mime_types = ("text/csv", "text/tab-separated-values", "application/csv")
    rows_per_document = 50

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        text = decode_text(read_bytes(stream))
        reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
        # Rows are numbered like a spreadsheet's: the header is row 1 and blank lines count.
        rows = enumerate(reader, start=1)
        try:
            header = next((cells for _, cells in rows if any(cell.strip() for cell in cells)), None)
            if header is None:
                raise UnreadableDocument("the CSV has no rows")
            columns = _column_names(header)
            documents: list[Document] = []
            group: list[tuple[int, str]] = []
            for number, cells in rows:
                record = _record(number, columns, cells)
                if record:
                    group.append((number, record))
                if len(group) == self.rows_per_document:
                    documents.append(_row_group(group, columns, filename))
                    group = []
        except csv.Error as error:
            raise UnreadableDocument(f"the CSV is malformed at line {reader.line_num}: {error}") from None
        if group:
            documents.append(_row_group(group, columns, filename))
        if not documents:
            raise UnreadableDocument("the CSV has a header row but no data rows")
        return documents


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:  # one column, or too little to tell: the standard comma-separated form
        return csv.excel


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for index, cell in enumerate(header, start=1):
        name = " ".join(cell.split()) or f"column {index}"
        while name in names:
            name = f"{name} ({index})"
        names.append(name)
    return names


def _record(number: int, columns: list[str], cells: list[str]) -> str:
    names = columns + [f"column {index}" for index in range(len(columns) + 1, len(cells) + 1)]
    lines = [f"{name}: {cell.strip()}" for name, cell in zip(names, cells) if cell.strip()]
    return "\n".join([f"row {number}", *lines]) if lines else ""


def _row_group(group: list[tuple[int, str]], columns: list[str], filename: str) -> Document:
    first, last = group[0][0], group[-1][0]
    return upload_document("\n\n".join(record for _, record in group), filename,
                           rows=f"{first}-{last}", columns=shorten(", ".join(columns), COLUMNS_LENGTH))


class JsonParser:
    """A JSON file flattened to "path: value" lines, one Document per top-level key or index: large ones are split
    further down, small neighbours packed together (their ``json_path`` lists the keys, or spans the indexes)."""

    name = "json"
    extensions = (".json",)
    mime_types = ("application/json",)
    characters_per_document = 4000

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        text = decode_text(read_bytes(stream))
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise UnreadableDocument(
                f"the JSON is invalid: {error.msg} at line {error.lineno}, column {error.colno}") from None
        except RecursionError:
            raise UnreadableDocument("the JSON is nested too deeply to read") from None
        if value in ({}, [], None, ""):
            raise UnreadableDocument("the JSON has no content")
        groups = _groups(value, "", self.characters_per_document) if _children(value, "") else [
            ("$", list(_flatten(value, "")))]
        return [upload_document("\n".join(lines), filename, json_path=path) for path, lines in groups]


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INDEX = re.compile(r"\[\d+\]$")


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _children(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(_child_path(path, key), child) for key, child in value.items()]
    if isinstance(value, list):
        return [(_child_path(path, index), child) for index, child in enumerate(value)]
    return []


def _flatten(value: Any, path: str) -> Iterator[str]:
    """"path: value" lines, depth first; iterative, so deep nesting cannot exhaust the stack."""
    stack = [(path, value)]
    while stack:
        path, value = stack.pop()
        children = _children(value, path)
        if children:
            stack.extend(reversed(children))
        elif isinstance(value, str):
            yield f"{path or '$'}: {value}"
        else:  # numbers, true/false/null, and empty objects and arrays
            yield f"{path or '$'}: {json.dumps(value, ensure_ascii=False)}"


def _groups(value: Any, path: str, budget: int, depth: int = 0) -> Iterator[tuple[str, list[str]]]:
    """(path, lines) for the children of ``value``, neighbours packed together up to ``budget`` characters; a child
    larger than that is grouped on its own children instead (down to ``SPLIT_DEPTH`` levels). Only siblings are
    packed, so a group's path is one path, a list of keys, or a range of indexes of one array."""
    group: list[tuple[str, list[str]]] = []
    size = 0
    for child_path, child in _children(value, path):
        lines = list(_flatten(child, child_path))
        if group and (size + _size(lines) > budget or _size(lines) > budget):
            yield _group_path(group), [line for _, unit in group for line in unit]
            group, size = [], 0
        if _size(lines) > budget and depth < SPLIT_DEPTH and _children(child, child_path):
            yield from _groups(child, child_path, budget, depth + 1)
            continue
        group.append((child_path, lines))
        size += _size(lines)
    if group:
        yield _group_path(group), [line for _, unit in group for line in unit]


def _group_path(group: list[tuple[str, list[str]]]) -> str:
    paths = [path for path, _ in group]
    if len(paths) == 1:
        return shorten(paths[0], PATH_LENGTH)
    if all(_INDEX.search(path) for path in paths):  # neighbouring array items: a range
        return shorten(f"{paths[0]} to {paths[-1]}", PATH_LENGTH)
    return shorten(", ".join(paths), PATH_LENGTH)


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)
