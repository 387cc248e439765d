"""Reading one fetched web page: its title, its main text (without navigation and footers), the links it holds and
what its robots meta tag allows; and the URL normalisation the crawler uses to recognise a page it has seen.

Fetching, following and the crawl's limits live in ``web.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from posixpath import splitext
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
import trafilatura

HTML_CONTENT_TYPES = ("text/html", "application/xhtml+xml")

# Links to these are not pages; skipping them before any request keeps the page budget for pages.
NON_HTML_EXTENSIONS = frozenset("""
    .7z .avi .bin .bmp .css .csv .dmg .doc .docx .eot .epub .exe .gif .gz .ico .iso .jar .jpeg .jpg .js .json .m4a
    .mkv .mov .mp3 .mp4 .mpeg .odp .ods .odt .ogg .otf .pdf .png .ppt .pptx .rar .rss .svg .tar .tgz .tif .tiff .ttf
    .txt .wasm .wav .webm .webp .woff .woff2 .xls .xlsx .xml .zip
""".split())

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Elements the fallback text extraction drops: code, and the usual page furniture.
_NOT_TEXT = "//script|//style|//noscript|//template|//svg|//nav|//header|//footer|//aside|//form"


@dataclass
class HtmlPage:
    title: str
    text: str
    links: list[str] = field(default_factory=list)
    noindex: bool = False  # the page asks not to be indexed
    nofollow: bool = False  # the page asks that its links not be followed


def normalise_url(url: str, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL (resolved against ``base``), or None when it is not a web page address.

    Lower-case scheme and host, no default port, no user info, no fragment, "/" for an empty path.
    """
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:  # an invalid port or IPv6 literal
        return None
    if scheme not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != (443 if scheme == "https" else 80):
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port): two URLs are on the same site when these are equal."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def looks_like_a_file(url: str) -> bool:
    """Whether the URL's path ends in an extension that is not a web page."""
    return splitext(urlsplit(url).path)[1].lower() in NON_HTML_EXTENSIONS


def is_html(content_type: str | None, head: bytes) -> bool:
    """Whether a response is an HTML page, by its Content-Type, or by its first bytes when it has none."""
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in HTML_CONTENT_TYPES
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def decode(body: bytes, charset: str | None) -> str:
    """The text of a page: the charset of its Content-Type, else of its <meta> tag, else UTF-8."""
    if not charset:
        found = _META_CHARSET.search(body[:4096])
        charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def read_html(html: str, url: str) -> HtmlPage:
    """Title, main text, links (normalised, absolute) and robots directives of the page at ``url``."""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # an empty document, or an XML declaration in a str
        return HtmlPage(title="", text="")
    robots = {
        directive
        for meta in tree.iter("meta")
        if (meta.get("name") or "").lower() in ("robots", "privexbot")
        for directive in re.split(r"[\s,]+", (meta.get("content") or "").lower())
    }
    page = HtmlPage(
        title=_title(tree),
        text="",
        noindex=bool(robots & {"noindex", "none"}),
        nofollow=bool(robots & {"nofollow", "none"}),
    )
    if not page.nofollow:
        page.links = _links(tree, url)
    if not page.noindex:
        page.text = _main_text(html, tree, url)
    return page


def _title(tree: lxml.html.HtmlElement) -> str:
    for path in (".//title", ".//h1"):
        element = tree.find(path)
        if element is not None:
            title = " ".join(element.text_content().split())
            if title:
                return title
    return ""


def _links(tree: lxml.html.HtmlElement, url: str) -> list[str]:
    base = url
    base_element = tree.find(".//base[@href]")
    if base_element is not None:
        base = urljoin(url, base_element.get("href").strip())
    links = []
    for anchor in tree.iter("a", "area"):
        href = anchor.get("href")
        if href and (link := normalise_url(href, base)):  # mailto:, javascript:, tel: ... give None
            links.append(link)
    return list(dict.fromkeys(links))


def _main_text(html: str, tree: lxml.html.HtmlElement, url: str) -> str:
    text = trafilatura.extract(html, url=url, output_format="txt", include_comments=False)
    if text and text.strip():
        return text.strip()
    # trafilatura found no main content (a page of lists, a tiny page): take what is not page furniture.
    for element in tree.xpath(_NOT_TEXT):
        element.drop_tree()
    body = tree.find("body")
    raw = (body if body is not None else tree).text_content()
    lines = (" ".join(line.split()) for line in raw.splitlines())
    return "\n".join(line for line in lines if line)
