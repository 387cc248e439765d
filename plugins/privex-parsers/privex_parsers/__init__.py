"""PrivexBot's first-party knowledge plugin ``parsers``: document parsers for uploads and the chunkers ingestion
uses.

- ``privex_parsers.files``: one parser per file format (text, Markdown, HTML, PDF, DOCX, CSV, JSON), each turning
  an upload into LlamaIndex Documents with the metadata an answer cites (page, heading, rows, JSON path).
- ``privex_parsers.chunkers``: token, sentence, semantic and parent-child node parser factories.
- ``privex_parsers.connectors``: source connectors (web crawl, Notion, Google Docs).

Parsers and chunkers touch neither the database nor the network; the core runs them inside ingestion. Connectors
reach the network only through their guarded HTTP client (no private addresses unless the config allows it).
"""

from __future__ import annotations

from privex import hookimpl
from privex_parsers.chunkers import CHUNKERS
from privex_parsers.connectors import CONNECTORS
from privex_parsers.files import PARSERS


@hookimpl
def privex_document_parsers():
    return list(PARSERS)


@hookimpl
def privex_chunkers():
    return list(CHUNKERS)


@hookimpl
def privex_source_connectors():
    return list(CONNECTORS)
