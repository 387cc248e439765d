"""Reading sitemaps (https://www.sitemaps.org/protocol.html): XML url sets, sitemap index files, plain-text lists of
URLs, each possibly gzip-compressed. Fetching them, and deciding which listed pages to crawl, is ``web.py``'s job.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import lxml.etree

# Untrusted XML: no entities (no "billion laughs", no reading local files), no network, no huge trees.
_PARSER = lxml.etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Sitemap:
    pages: list[str] = field(default_factory=list)  # page URLs listed by a url set or a text sitemap
    sitemaps: list[str] = field(default_factory=list)  # further sitemaps listed by a sitemap index


class TooLarge(ValueError):
    """A compressed sitemap expands beyond the size allowed."""


def gunzip(body: bytes, limit: int) -> bytes:
    """``body`` decompressed when it is gzip data, else as is; raises TooLarge past ``limit`` bytes."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        return b""
    if len(data) > limit:
        raise TooLarge(f"the sitemap expands to more than {limit} bytes")
    return data


def parse_sitemap(body: bytes) -> Sitemap:
    """The URLs a sitemap lists; an unreadable sitemap lists none."""
    text = body.lstrip()
    if not text:
        return Sitemap()
    if not text.startswith(b"<"):
        lines = text.decode("utf-8", errors="replace").splitlines()
        return Sitemap(pages=[line.strip() for line in lines if line.strip().startswith(("http://", "https://"))])
    try:
        root = lxml.etree.fromstring(text, _PARSER)
    except lxml.etree.XMLSyntaxError:
        return Sitemap()
    if root is None:
        return Sitemap()
    kind = lxml.etree.QName(root).localname
    if kind == "sitemapindex":
        return Sitemap(sitemaps=_locations(root, "sitemap"))
    if kind == "urlset":
        return Sitemap(pages=_locations(root, "url"))
    return Sitemap()


def _locations(root: lxml.etree._Element, entry: str) -> list[str]:
    # Only the entry's own <loc>: <image:loc> and friends inside an entry are not pages.
    return [loc.text.strip() for loc in root.findall(f"{{*}}{entry}/{{*}}loc") if loc.text and loc.text.strip()]
