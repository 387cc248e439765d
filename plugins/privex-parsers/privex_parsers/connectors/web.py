"""The ``web`` source connector: a polite, breadth-first crawl of one web site, one Document per page.

Same site only (scheme, host and port of the start page after its redirects), robots.txt respected for the user
agent ``PrivexBot``, sitemaps read, limits on depth, pages and bytes, and every address checked against the
server-side request forgery guard before it is requested. Reading a page's HTML is ``html_page.py``'s job; reading
sitemaps, ``sitemaps.py``'s.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
from llama_index.core.schema import Document

from privex.contracts import SourceError
from privex_parsers.connectors.crawl_settings import CONFIG_SCHEMA, CrawlSettings
from privex_parsers.connectors.html_page import (
    decode,
    is_html,
    looks_like_a_file,
    normalise_url,
    origin,
    read_html,
)
from privex_parsers.connectors.http_retries import Sleep, is_transient, new_client, send
from privex_parsers.connectors.network_guard import Resolver, refuse_private_host, system_resolver
from privex_parsers.connectors.sitemaps import TooLarge, gunzip, parse_sitemap

log = logging.getLogger(__name__)

ROBOTS_AGENT = "PrivexBot"
MAX_PAGE_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_ROBOTS_BYTES = 512 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemap protocol's own limit, uncompressed
MAX_SITEMAPS = 20
MAX_CRAWL_DELAY_SECONDS = 5.0  # a longer Crawl-delay would make a 50-page crawl take hours
# Every page of the budget may cost one more request that yields nothing (a 404, a PDF without an extension).
ATTEMPTS_PER_PAGE = 2

# Metadata that says where a page came from but is noise in an embedding or a prompt.
_NOT_FOR_EMBEDDING = ["source_type", "source_url", "depth"]
_NOT_FOR_LLM = ["source_type", "depth"]


class _Skip(Exception):
    """This address is not crawled. The reason is logged, or shown to the user when it is the start page."""

    def __init__(self, reason: str, *, transient: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class WebCrawler:
    """Crawls a web site from a start page; ``fetch`` yields one Document per page with text."""

    name = "web"
    version = "0.1"
    config_schema = CONFIG_SCHEMA

    def __init__(self, *, resolver: Resolver = system_resolver, sleep: Sleep = time.sleep,
                 max_page_bytes: int = MAX_PAGE_BYTES):
        self._resolver = resolver
        self._sleep = sleep
        self._max_page_bytes = max_page_bytes

    def fetch(self, config: Mapping, credential: Mapping | None = None) -> Iterator[Document]:
        """Crawl the site ``config`` names; settings (and the start page's address) are checked now, pages are
        fetched as the iterator is read."""
        settings = CrawlSettings.from_config(config)
        if not settings.allow_private:
            _scheme, host, port = origin(settings.url)
            refuse_private_host(host, port, self._resolver)
        return self._documents(settings)

    def _documents(self, settings: CrawlSettings) -> Iterator[Document]:
        with new_client() as client:
            crawl = _Crawl(client, settings, resolver=self._resolver, sleep=self._sleep,
                           max_page_bytes=self._max_page_bytes)
            yield from crawl.documents()


@dataclass
class _Fetched:
    url: str  # after redirects
    body: bytes
    charset: str | None


class _Crawl:
    """The state of one crawl: the site, its robots.txt, the queue and what has been seen."""

    def __init__(self, client: httpx.Client, settings: CrawlSettings, *, resolver: Resolver, sleep: Sleep,
                 max_page_bytes: int):
        self.client = client
        self.settings = settings
        self.resolver = resolver
        self.sleep = sleep
        self.max_page_bytes = max_page_bytes
        self.site: tuple[str, str, int] = origin(settings.url)
        self.site_url = settings.url  # the start page, after its redirects
        self.robots: dict[tuple[str, str, int], RobotFileParser] = {}
        self.seen: set[str] = set()  # queued or fetched addresses
        self.read: set[str] = set()  # final addresses of pages read, so a redirect does not read one twice

    def documents(self) -> Iterator[Document]:
        settings = self.settings
        try:
            start = self._fetch(settings.url, start=True)
        except _Skip as skip:
            raise SourceError(f"could not read {settings.url}: {skip.reason}", transient=skip.transient) from None
        # A start page moved to https:// or to www. moves the whole site.
        self.site, self.site_url = origin(start.url), start.url
        self.seen.update((settings.url, start.url))
        self.read.add(start.url)
        delay = min(self._robots_for(start.url).crawl_delay(ROBOTS_AGENT) or 0.0, MAX_CRAWL_DELAY_SECONDS)

        queue: deque[tuple[str, int]] = deque()
        document, links = self._read(start, depth=0)
        if document is not None:
            yield document
        if settings.max_depth >= 1:
            self._enqueue(links, 1, queue)
            if settings.use_sitemap:
                self._enqueue(self._sitemap_pages(), 1, queue)

        pages, attempts = 1, 1
        while queue and pages < settings.max_pages and attempts < settings.max_pages * ATTEMPTS_PER_PAGE:
            url, depth = queue.popleft()
            attempts += 1
            if delay:
                self.sleep(float(delay))
            try:
                fetched = self._fetch(url, start=False)
            except _Skip as skip:
                log.info("page skipped", extra={"url": url, "reason": skip.reason})
                continue
            if fetched.url in self.read:
                continue
            self.read.add(fetched.url)
            self.seen.add(fetched.url)
            pages += 1
            document, links = self._read(fetched, depth)
            if document is not None:
                yield document
            if depth < settings.max_depth:
                self._enqueue(links, depth + 1, queue)

    def _enqueue(self, urls: list[str], depth: int, queue: deque[tuple[str, int]]) -> None:
        for url in urls:
            if (url in self.seen or origin(url) != self.site or looks_like_a_file(url)
                    or not self.settings.wants(url) or not self._allowed(url)):
                continue
            self.seen.add(url)
            queue.append((url, depth))

    def _read(self, fetched: _Fetched, depth: int) -> tuple[Document | None, list[str]]:
        """The page's Document (None when it has no text or does not want indexing) and its links."""
        page = read_html(decode(fetched.body, fetched.charset), fetched.url)
        if page.noindex or not page.text or not self.settings.wants(fetched.url):
            return None, page.links
        document = Document(
            id_=f"web:{fetched.url}",
            text=page.text,
            metadata={"source_type": "web", "source_url": fetched.url, "title": page.title or fetched.url,
                      "depth": depth},
            excluded_embed_metadata_keys=list(_NOT_FOR_EMBEDDING),
            excluded_llm_metadata_keys=list(_NOT_FOR_LLM),
        )
        return document, page.links

    # -- fetching ------------------------------------------------------------------------------------------------

    def _fetch(self, url: str, *, start: bool) -> _Fetched:
        """The HTML of the page at ``url``; raises _Skip when it is not an HTML page within the limits."""
        response, final_url = self._request(url, same_site_only=not start)
        with closing(response):
            status = response.status_code
            if not response.is_success:
                raise _Skip(f"the server answered HTTP {status}", transient=is_transient(status))
            content_type = response.headers.get("Content-Type")
            if content_type and not is_html(content_type, b""):
                raise _Skip(f"it is not an HTML page ({content_type.split(';')[0].strip()})")
            body = self._body(response, self.max_page_bytes)
            if body is None:
                raise _Skip(f"it is larger than {_size(self.max_page_bytes)}")
            if not content_type and not is_html(None, body[:256]):
                raise _Skip("it is not an HTML page")
            return _Fetched(url=final_url, body=body, charset=response.charset_encoding)

    def _request(self, url: str, *, same_site_only: bool, check_robots: bool = True) -> tuple[httpx.Response, str]:
        """GET ``url``, following redirects by hand so every hop passes the guard (and robots.txt); returns the
        open streamed response and its URL. A refused address raises SourceError and ends the crawl."""
        for _ in range(MAX_REDIRECTS + 1):
            self._guard(url)
            if check_robots and not self._allowed(url):
                raise _Skip("robots.txt does not allow PrivexBot to read it")
            try:
                response = send(self.client, self.client.build_request("GET", url), sleep=self.sleep, stream=True)
            except SourceError as error:  # unreachable after retries
                raise _Skip(str(error), transient=True) from error
            if not response.is_redirect:
                return response, url
            response.close()
            target = normalise_url(response.headers["Location"], url)
            if target is None:
                raise _Skip("it redirects to something that is not a web page")
            if same_site_only and origin(target) != self.site:
                raise _Skip(f"it redirects off the site, to {target}")
            if target in self.read:  # /old -> /new, which the crawl has read already
                raise _Skip(f"it redirects to {target}, which is read already")
            url = target
        raise _Skip(f"it redirects more than {MAX_REDIRECTS} times")

    def _guard(self, url: str) -> None:
        if self.settings.allow_private:
            return
        _scheme, host, port = origin(url)
        refuse_private_host(host, port, self.resolver)

    def _body(self, response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes | None:
        """The response body; past ``limit`` bytes, its first ``limit`` bytes when ``truncate``, else None."""
        declared = response.headers.get("Content-Length", "")
        if not truncate and declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    return b"".join(chunks)[:limit] if truncate else None
        except (httpx.TransportError, httpx.DecodingError) as error:
            raise _Skip(f"reading it failed ({type(error).__name__})", transient=True) from error
        return b"".join(chunks)

    # -- robots.txt and sitemaps ---------------------------------------------------------------------------------

    def _allowed(self, url: str) -> bool:
        return self._robots_for(url).can_fetch(ROBOTS_AGENT, url)

    def _robots_for(self, url: str) -> RobotFileParser:
        key = origin(url)
        if key not in self.robots:
            self.robots[key] = self._load_robots(url)
        return self.robots[key]

    def _load_robots(self, url: str) -> RobotFileParser:
        """robots.txt of ``url``'s site, read as RFC 9309 says: a 4xx allows everything; a site whose robots.txt
        cannot be read (5xx, unreachable) must not be crawled, and that is worth trying again later."""
        parts = urlsplit(url)
        robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
        parser = RobotFileParser(robots_url)
        try:
            response, _ = self._request(robots_url, same_site_only=False, check_robots=False)
        except _Skip as skip:
            raise SourceError(f"could not read {robots_url}: {skip.reason}; try again later",
                              transient=True) from None
        with closing(response):
            status = response.status_code
            if status >= 500:
                raise SourceError(f"could not read {robots_url}: the server answered HTTP {status}; "
                                  f"try again later", transient=True)
            if not response.is_success:
                parser.parse([])
                return parser
            try:
                body = self._body(response, MAX_ROBOTS_BYTES, truncate=True) or b""
            except _Skip as skip:
                raise SourceError(f"could not read {robots_url}: {skip.reason}; try again later",
                                  transient=True) from None
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser

    def _sitemap_pages(self) -> list[str]:
        """Same-site pages listed by the sitemaps robots.txt names and by /sitemap.xml (following index files)."""
        root = urljoin(self.site_url, "/sitemap.xml")
        named = self._robots_for(root).site_maps() or []
        candidates = deque(url for url in (normalise_url(u) for u in [*named, root]) if url)
        done: set[str] = set()
        pages: list[str] = []
        while candidates and len(done) < MAX_SITEMAPS and len(pages) < self.settings.max_pages:
            sitemap_url = candidates.popleft()
            if sitemap_url in done or origin(sitemap_url) != self.site:
                continue
            done.add(sitemap_url)
            sitemap = parse_sitemap(self._sitemap_body(sitemap_url))
            pages.extend(url for url in map(normalise_url, sitemap.pages) if url and origin(url) == self.site)
            candidates.extend(url for url in map(normalise_url, sitemap.sitemaps) if url)
        return pages[: self.settings.max_pages]

    def _sitemap_body(self, url: str) -> bytes:
        """The sitemap at ``url``, decompressed; empty when it cannot be read."""
        try:
            response, _ = self._request(url, same_site_only=True, check_robots=False)
        except _Skip as skip:
            log.info("sitemap skipped", extra={"url": url, "reason": skip.reason})
            return b""
        with closing(response):
            if not response.is_success:
                return b""
            try:
                body = self._body(response, MAX_SITEMAP_BYTES)
                return gunzip(body or b"", MAX_SITEMAP_BYTES)
            except (_Skip, TooLarge):
                return b""


def _size(count: int) -> str:
    return f"{round(count / 1024 / 1024, 1):g} MB" if count >= 1024 * 1024 else f"{round(count / 1024)} KB"
