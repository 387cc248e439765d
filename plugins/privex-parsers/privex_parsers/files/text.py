"""Plain text and Markdown uploads."""

from __future__ import annotations

from typing import IO

from llama_index.core.schema import Document

from privex.contracts import UnreadableDocument
from privex_parsers.files.document import NO_TEXT, decode_text, read_bytes, shorten, stem, upload_document
from privex_parsers.files.sections import markdown_sections, split_front_matter


class TextParser:
    """A ``.txt`` file as one Document titled by its first non-empty line."""

    name = "text"
    extensions = (".txt", ".text")
    mime_types = ("text/plain",)

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        text = decode_text(read_bytes(stream))
        title = next(line for line in text.splitlines() if line.strip())
        return [upload_document(text.strip(), filename, title=shorten(title))]


class MarkdownParser:
    """A Markdown file, one Document per section (headings of level 1 to 3), with its heading path."""

    name = "markdown"
    extensions = (".md", ".markdown")
    mime_types = ("text/markdown", "text/x-markdown")

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        front_title, text = split_front_matter(decode_text(read_bytes(stream)))
        first_h1, sections = markdown_sections(text)
        if not sections:
            raise UnreadableDocument(NO_TEXT)
        title = first_h1 or (shorten(front_title) if front_title else None) or stem(filename)
        return [upload_document(section.text, filename, title=title, heading=section.heading)
                for section in sections]
