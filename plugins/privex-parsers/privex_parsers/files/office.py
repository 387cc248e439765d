"""Word (.docx) uploads: one Document per section, cut at paragraphs styled Heading 1–3, tables included as text.

The old binary Word format (.doc) is not read; it and password-protected .docx files (both OLE compound files)
are refused with a reason the user can act on.
"""

from __future__ import annotations

import re
import zipfile
from typing import IO

import docx
from docx.opc.exceptions import OpcError
from docx.table import Table
from docx.text.paragraph import Paragraph
from llama_index.core.schema import Document
from lxml.etree import LxmlError

from privex.contracts import UnreadableDocument
from privex_parsers.files.document import EMPTY, NO_TEXT, seekable, shorten, stem, upload_document
from privex_parsers.files.sections import SectionBuilder

DAMAGED = "the file is damaged or not a Word document (.docx)"
PROTECTED = "the document is password-protected or in the old Word format (.doc); save it as .docx without a password"

_OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Built-in heading styles: the English name in most files, the style id ("Heading1") in localized ones.
_HEADING_NAME = re.compile(r"^heading ?([1-9])$", re.I)


class DocxParser:
    """A Word document, one Document per section (Heading 1–3), with its heading path."""

    name = "docx"
    extensions = (".docx",)
    mime_types = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        with seekable(stream) as package:
            head = package.read(8)
            package.seek(0)
            if not head:
                raise UnreadableDocument(EMPTY)
            if head == _OLE_SIGNATURE:
                raise UnreadableDocument(PROTECTED)
            try:
                document = docx.Document(package)  # reads every part of the package: the file is done with after
            except (zipfile.BadZipFile, OpcError, KeyError, ValueError, LxmlError):
                raise UnreadableDocument(DAMAGED) from None

        builder = SectionBuilder()
        styled_title = first_h1 = None
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                builder.line(table_text(block))
                continue
            text = block.text.strip()
            level = heading_level(block)
            if level is not None and text:
                builder.heading(level, text)
                first_h1 = first_h1 or (shorten(text) if level == 1 else None)
            else:
                if text and styled_title is None and _style_name(block) == "title":
                    styled_title = shorten(text)
                builder.line(block.text)
        sections = builder.sections()
        if not sections:
            raise UnreadableDocument(NO_TEXT)
        declared = (document.core_properties.title or "").strip()
        title = (shorten(declared) if declared else None) or styled_title or first_h1 or stem(filename)
        return [upload_document(section.text, filename, title=title, heading=section.heading)
                for section in sections]


def _style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "").lower() if style is not None else ""


def heading_level(paragraph: Paragraph) -> int | None:
    """1–9 for a paragraph styled as a heading, else None."""
    style = paragraph.style
    if style is None:
        return None
    for label in (style.name or "", style.style_id or ""):
        match = _HEADING_NAME.match(label)
        if match:
            return int(match.group(1))
    return None


def table_text(table: Table) -> str:
    """A table as lines of cells joined by " | " (a merged cell is written once per row)."""
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)
