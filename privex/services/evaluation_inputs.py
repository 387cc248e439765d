"""Labelled questions from what a user hands over: a JSONL file, a BEIR folder (``queries.jsonl`` + qrels), a .zip
of one, or a JSON list; bounded in size and count before anything is scored.

A BEIR folder holds ``queries.jsonl`` (or ``queries-<split>.jsonl``): ``{"_id", "text"}`` a line; qrels as
``qrels/<split>.tsv`` or ``qrels-<split>.tsv``: ``query-id  corpus-id  score`` (a header line is allowed), a score
above 0 being relevant; and often ``corpus.jsonl(.gz)``, which is ignored: the knowledge base holds the corpus, a
corpus id standing for the document of that name without its extension (or with that ``corpus_id`` / ``beir_id``
metadata). Only queries with at least one relevant document are questions, in the order of the queries file.

Everything here raises ``Invalid`` naming the field (``questions``, ``queries``, ``qrels``, ``file``, ``split``)
and, inside a file, the line.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from privex.services.errors import Invalid, TooLarge
from privex.services.evaluation import Question, parse_questions, question_of

MAX_QUESTIONS = 5_000
MAX_FILE_BYTES = 20 * 1024 * 1024  # a queries or qrels file (SciFact's 809 claims are 94 KB)
MAX_ZIP_MEMBERS = 1_000


@dataclass(frozen=True)
class Upload:
    """A file as the front end received it: its name and bytes (read bounded by the front end)."""

    field: str
    filename: str
    content: bytes


def bounded(questions: list[Question], field: str) -> list[Question]:
    if not questions:
        raise Invalid("there are no questions to evaluate", errors={field: ["no questions found"]})
    if len(questions) > MAX_QUESTIONS:
        raise TooLarge(f"at most {MAX_QUESTIONS:,} questions in one run",
                       errors={field: [f"{len(questions):,} questions; at most {MAX_QUESTIONS:,}"]})
    return questions


def from_json(items, field: str = "questions") -> list[Question]:
    """Questions from a JSON list of objects, each like a JSONL line."""
    if not isinstance(items, list):
        raise Invalid("`questions` must be a list of objects", errors={field: ["a list of objects"]})
    if len(items) > MAX_QUESTIONS:
        bounded([None] * len(items), field)
    questions = []
    for number, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"line {number}: expected a JSON object")
            questions.append(question_of(item, number))
        except ValueError as error:
            message = str(error).replace(f"line {number}", f"item {number}", 1)
            raise Invalid(f"{field}: {message}", errors={field: [message]}) from None
    return bounded(questions, field)


def from_jsonl(content: bytes, field: str = "questions", name: str = "questions.jsonl") -> list[Question]:
    try:
        return bounded(parse_questions(io.BytesIO(content)), field)
    except ValueError as error:
        raise Invalid(f"{name}: {error}", errors={field: [str(error)]}) from None


def from_uploads(uploads: Sequence[Upload], split: str | None = None) -> tuple[list[Question], str]:
    """The questions in what was uploaded, and a label for where they came from: a ``.zip`` of a BEIR folder (any
    field), a JSONL file (``questions`` or ``file``), or ``queries`` with one or more ``qrels`` files."""
    for upload in uploads:
        if upload.filename.lower().endswith(".zip"):
            return from_zip(upload, split)
    by_field = {}
    for upload in uploads:
        by_field.setdefault(upload.field, []).append(upload)
    if "queries" in by_field or "qrels" in by_field:
        if not by_field.get("queries") or not by_field.get("qrels"):
            missing = "queries" if not by_field.get("queries") else "qrels"
            raise Invalid("a BEIR set needs its queries file and at least one qrels file",
                          errors={missing: ["missing"]})
        queries = by_field["queries"][0]
        return (parse_beir(queries.content, [(q.filename, q.content) for q in by_field["qrels"]],
                           queries_name=queries.filename),
                f"BEIR: {queries.filename}, {', '.join(q.filename for q in by_field['qrels'])}")
    jsonl = (by_field.get("questions") or by_field.get("file") or [None])[0]
    if jsonl is None:
        raise Invalid("send a JSONL file as `questions`, a BEIR folder's `queries` and `qrels` files, or a .zip of "
                      "the folder", errors={"questions": ["missing"]})
    return from_jsonl(jsonl.content, jsonl.field, jsonl.filename), jsonl.filename


# -- BEIR ---------------------------------------------------------------------------------------------------------

def parse_beir(queries: bytes, qrels: Sequence[tuple[str, bytes]], queries_name: str = "queries.jsonl"
               ) -> list[Question]:
    relevant: dict[str, set[str]] = {}
    for name, content in qrels:
        for query_id, corpus_id in _qrels_pairs(name, content):
            relevant.setdefault(query_id, set()).add(corpus_id)
    questions = []
    for number, raw in enumerate(io.BytesIO(queries), start=1):
        item = _query(raw, number, queries_name)
        if item and relevant.get(item[0]):
            questions.append(Question(text=item[1], corpus_ids=frozenset(relevant[item[0]])))
    if not questions:
        raise Invalid("no query of the queries file has a relevant document in the qrels",
                      errors={"qrels": ["no query id in the qrels matches a query with a score above 0"]})
    return bounded(questions, "queries")


def _query(raw: bytes, number: int, name: str) -> tuple[str, str] | None:
    def refuse(message: str):
        raise Invalid(f"{name}: line {number}: {message}", errors={"queries": [f"line {number}: {message}"]})

    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        refuse("not UTF-8 text")
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        refuse(f"not valid JSON ({error.msg})")
    if not isinstance(item, dict) or not isinstance(item.get("_id"), (str, int)) or isinstance(item["_id"], bool):
        refuse('expected an object with "_id" and "text"')
    if not isinstance(item.get("text"), str) or not item["text"].strip():
        refuse('"text" must be a non-empty string')
    return str(item["_id"]), item["text"]


def _qrels_pairs(name: str, content: bytes) -> Iterable[tuple[str, str]]:
    def refuse(message: str):
        raise Invalid(f"{name}: line {number}: {message}", errors={"qrels": [f"{name} line {number}: {message}"]})

    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{name}: not UTF-8 text", errors={"qrels": [f"{name}: not UTF-8 text"]}) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != 3:
            refuse("expected three columns: query-id, corpus-id, score")
        try:
            score = float(fields[2])
        except ValueError:
            if number == 1:
                continue  # the header line
            refuse(f"the score {fields[2]!r} is not a number")
        if score > 0:
            yield fields[0].strip(), fields[1].strip()


def beir_files(paths: Sequence[str], split: str | None) -> tuple[str, list[str]]:
    """Which of ``paths`` (a folder's or a zip's, ``/``-separated) are the queries and the qrels of ``split`` (the
    only split there is, when not given)."""
    qrels: dict[str, list[str]] = {}
    queries: dict[str | None, str] = {}
    for path in paths:
        pure = PurePosixPath(path)
        if "__MACOSX" in pure.parts:
            continue
        if pure.suffix == ".tsv" and pure.parent.name == "qrels":
            qrels.setdefault(pure.stem, []).append(path)
        elif pure.suffix == ".tsv" and pure.stem.startswith("qrels-"):
            qrels.setdefault(pure.stem.removeprefix("qrels-"), []).append(path)
        elif pure.name == "queries.jsonl":
            queries[None] = path
        elif pure.suffix == ".jsonl" and pure.stem.startswith("queries-"):
            queries[pure.stem.removeprefix("queries-")] = path
    if not qrels:
        raise Invalid("no qrels found: a BEIR folder holds qrels/<split>.tsv or qrels-<split>.tsv",
                      errors={"qrels": ["missing"]})
    if split is None:
        if len(qrels) > 1:
            raise Invalid(f"the folder has several splits ({', '.join(sorted(qrels))}): choose one",
                          errors={"split": [f"one of {', '.join(sorted(qrels))}"]})
        split = next(iter(qrels))
    if split not in qrels:
        raise Invalid(f"no qrels for the split {split!r}", errors={"split": [f"one of {', '.join(sorted(qrels))}"]})
    chosen = queries.get(split) or queries.get(None)
    if chosen is None:
        raise Invalid("no queries found: a BEIR folder holds queries.jsonl or queries-<split>.jsonl",
                      errors={"queries": ["missing"]})
    return chosen, sorted(qrels[split])


def load_beir(folder: str | Path, split: str | None = None) -> list[Question]:
    """Questions from a BEIR folder on disk (``privex eval --beir``)."""
    folder = Path(folder)
    paths = [path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*")) if path.is_file()]
    queries, qrels = beir_files(paths, split)
    return parse_beir(_read(folder / queries), [(name, _read(folder / name)) for name in qrels], queries_name=queries)


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TooLarge(f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB",
                       errors={"file": [f"{path.name}: too large"]})
    return path.read_bytes()


def from_zip(upload: Upload, split: str | None) -> tuple[list[Question], str]:
    """A .zip of a BEIR folder; members are read only when chosen, each bounded, so a corpus inside costs nothing."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(upload.content))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise Invalid(f"{upload.filename} is not a readable .zip file", errors={upload.field: ["not a zip file"]}) \
            from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise TooLarge(f"{upload.filename} holds more than {MAX_ZIP_MEMBERS} files",
                       errors={upload.field: ["too many files"]})
    files = {member.filename: member for member in members if not member.is_dir()}
    queries, qrels = beir_files(list(files), split)

    def read(name: str) -> bytes:
        if files[name].file_size > MAX_FILE_BYTES:
            raise TooLarge(f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB",
                           errors={upload.field: [f"{name}: too large"]})
        return archive.read(files[name])

    questions = parse_beir(read(queries), [(name, read(name)) for name in qrels],
                           queries_name=PurePosixPath(queries).name)
    return questions, f"BEIR: {upload.filename}"
