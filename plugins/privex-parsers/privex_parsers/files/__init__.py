"""Parsers for uploaded files, one module per family of formats; each turns a file into LlamaIndex Documents, one
per natural unit (page, section, group of rows), with the metadata an answer cites.

Fetching from elsewhere (websites, Notion, Google Docs) is not here: see ``privex_parsers.connectors``.
"""

from __future__ import annotations

from privex_parsers.files.html import HtmlParser
from privex_parsers.files.office import DocxParser
from privex_parsers.files.pdf import PdfParser
from privex_parsers.files.tabular import CsvParser, JsonParser
from privex_parsers.files.text import MarkdownParser, TextParser

PARSERS = (TextParser(), MarkdownParser(), HtmlParser(), PdfParser(), DocxParser(), CsvParser(), JsonParser())

__all__ = ["PARSERS", "CsvParser", "DocxParser", "HtmlParser", "JsonParser", "MarkdownParser", "PdfParser",
           "TextParser"]
