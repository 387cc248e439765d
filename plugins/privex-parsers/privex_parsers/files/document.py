"""What every upload parser shares: reading and decoding the upload, refusing what is not text, and building a
LlamaIndex Document with the metadata every upload carries (``file_name``, ``source_type``).

Format-specific reading lives in the parser modules beside this one.
"""

from __future__ import annotations

import codecs
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath, PureWindowsPath
from typing import IO, Any

from llama_index.core.schema import Document

from privex.contracts import UnreadableDocument

EMPTY = "the file is empty"
NOT_TEXT = "the file is not text (it contains binary data)"
NO_TEXT = "the file has no readable text"

# Metadata that helps a citation but is noise in an embedding or a prompt. Titles, headings and file names stay in
# both: they give a chunk its context.
NOT_EMBEDDED = ["source_type", "page", "page_count", "rows", "columns", "json_path"]
NOT_FOR_LLM = ["source_type", "page_count", "columns"]

TITLE_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
# Spooled uploads stay in memory up to this size, then go to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024


def read_bytes(stream: IO[bytes]) -> bytes:
    """The whole upload, for formats that must be read at once (text, JSON, ...)."""
    data = stream.read()
    if not data or not data.strip():
        raise UnreadableDocument(EMPTY)
    return data


@contextmanager
def seekable(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    """``stream`` itself when it can seek, else a spooled copy, closed on leaving: readers of ZIP and PDF files
    jump around."""
    if getattr(stream, "seekable", lambda: False)():
        yield stream
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as copy:
        shutil.copyfileobj(stream, copy)
        copy.seek(0)
        yield copy


def decode_text(data: bytes) -> str:
    """Text from bytes: UTF-16 when it has a byte-order mark, UTF-8 (with or without one), else Latin-1.

    Raises UnreadableDocument for an empty file and for binary data, which Latin-1 would otherwise accept."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableDocument(NOT_TEXT) from None
    else:
        if b"\x00" in data:
            raise UnreadableDocument(NOT_TEXT)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if not text.strip():
        raise UnreadableDocument(EMPTY)
    sample = text[:65536]
    if len(_CONTROL.findall(sample)) > len(sample) // 20:
        raise UnreadableDocument(NOT_TEXT)
    return text


def file_name(filename: str) -> str:
    """The name without any folder a browser or client may have sent with it."""
    return PureWindowsPath(PurePosixPath(filename or "").name).name or "upload"


def stem(filename: str) -> str:
    """The file name without its extension: the title of last resort."""
    name = file_name(filename)
    return name.rsplit(".", 1)[0] if "." in name.strip(".") else name


def shorten(text: str, limit: int = TITLE_LENGTH) -> str:
    """One line of at most ``limit`` characters: for titles and headings kept in metadata."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def upload_document(text: str, filename: str, **metadata: Any) -> Document:
    """A Document read from an upload. Metadata left as None is dropped; NUL characters, which PostgreSQL text
    cannot hold, are removed."""
    kept = {key: value.replace("\x00", "") if isinstance(value, str) else value
            for key, value in metadata.items() if value is not None}
    return Document(
        text=text.replace("\x00", ""),
        metadata={"file_name": file_name(filename), "source_type": "upload", **kept},
        excluded_embed_metadata_keys=list(NOT_EMBEDDED),
        excluded_llm_metadata_keys=list(NOT_FOR_LLM),
    )
