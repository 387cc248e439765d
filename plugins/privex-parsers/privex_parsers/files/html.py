"""HTML uploads: the main text (trafilatura drops menus, footers and ads) split into sections by h1–h3.

trafilatura gives the main text as Markdown, so the Markdown section splitter cuts it. When it finds no main text (a
page that is all navigation, or a fragment), the whole visible text is used, with its headings kept the same way.
"""

from __future__ import annotations

import codecs
import re
from typing import IO

import trafilatura
from llama_index.core.schema import Document
from lxml.html import HtmlElement
from lxml.html.clean import Cleaner

from privex.contracts import UnreadableDocument
from privex_parsers.files.document import (NO_TEXT, NOT_TEXT, decode_text, read_bytes, shorten, stem,
                                           upload_document)
from privex_parsers.files.sections import markdown_sections

_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# Elements after which visible text breaks the line; without this, text_content() runs paragraphs together.
_BLOCKS = ("p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "dt", "dd", "tr",
           "table", "ul", "ol", "dl", "pre", "blockquote", "br", "hr", "form", "figure", "figcaption", "address")
_CLEANER = Cleaner(scripts=True, javascript=True, style=True, comments=True, processing_instructions=True,
                   forms=False, page_structure=False, meta=True, embedded=True, frames=True, links=True)


class HtmlParser:
    """An HTML page, one Document per section (h1–h3), titled by its ``<title>``."""

    name = "html"
    extensions = (".html", ".htm", ".xhtml")
    mime_types = ("text/html", "application/xhtml+xml")

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        data = read_bytes(stream)
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            data = decode_text(data).encode("utf-8")
        elif b"\x00" in data:
            raise UnreadableDocument(NOT_TEXT)
        tree = trafilatura.load_html(data)  # decodes by the page's declared or guessed charset
        if tree is None:
            raise UnreadableDocument(NO_TEXT)
        main_text = trafilatura.extract(data, output_format="markdown", include_formatting=True,
                                        include_tables=True, include_comments=False, favor_recall=True)
        first_h1, sections = markdown_sections(main_text or "")
        if not sections:
            first_h1, sections = markdown_sections(visible_text(tree))
        if not sections:
            raise UnreadableDocument(NO_TEXT)
        title = _title(tree) or first_h1 or _first_h1(tree) or stem(filename)
        return [upload_document(section.text, filename, title=title, heading=section.heading)
                for section in sections]


def _title(tree: HtmlElement) -> str | None:
    title = tree.findtext(".//title")
    return shorten(title) if title and title.strip() else None


def _first_h1(tree: HtmlElement) -> str | None:
    # trafilatura's fallback extraction of short pages drops heading marks, so the page's own h1 is asked too.
    for element in tree.iter("h1"):
        text = element.text_content()
        if text.strip():
            return shorten(text)
    return None


def visible_text(tree: HtmlElement) -> str:
    """The text a reader sees, with headings written as Markdown headings so sections can be cut at them."""
    tree = _CLEANER.clean_html(tree)
    for element in tree.iter(*_HEADINGS):
        level, label, tail = int(element.tag[1]), " ".join(element.text_content().split()), element.tail
        element.clear()  # clear() drops the tail too: the text after the heading is put back
        element.text = f"\n\n{'#' * level} {label}\n\n" if label else ""
        element.tail = tail
    for element in tree.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    for title in tree.iter("title"):
        title.drop_tree()
    lines = (" ".join(line.split()) for line in tree.text_content().splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
