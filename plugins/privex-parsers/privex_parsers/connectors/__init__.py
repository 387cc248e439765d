"""PrivexBot's first-party source connectors: a web crawler, Notion and Google Docs.

Each has ``name``, ``config_schema`` and ``fetch(config, credential) -> Iterator[Document]`` (see
``privex.hookspecs.privex_source_connectors``) and raises ``privex.contracts.SourceError`` with a message for the user
when it cannot fetch. ``CONNECTORS`` is what the plugin's ``privex_source_connectors`` hook returns.
"""

from __future__ import annotations

from privex_parsers.connectors.google_docs import GoogleDocs
from privex_parsers.connectors.notion import Notion
from privex_parsers.connectors.web import WebCrawler

CONNECTORS = [WebCrawler(), Notion(), GoogleDocs()]

__all__ = ["CONNECTORS", "GoogleDocs", "Notion", "WebCrawler"]
