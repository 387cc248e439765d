"""The settings of the ``web`` connector: their JSON Schema, and their validation into ``CrawlSettings``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from privex.contracts import SourceError
from privex_parsers.connectors.html_page import normalise_url

MAX_PAGES_CAP = 1000

CONFIG_SCHEMA = {
    "type": "object",
    "title": "Web site",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "title": "Start page",
            "description": "The first page to crawl (http or https). Only pages of the same site (same scheme, "
                           "host and port) are followed.",
        },
        "max_depth": {
            "type": "integer", "minimum": 0, "default": 2, "title": "Link depth",
            "description": "How many links away from the start page to go; 0 reads the start page only.",
        },
        "max_pages": {
            "type": "integer", "minimum": 1, "maximum": MAX_PAGES_CAP, "default": 50, "title": "Page limit",
            "description": f"The most pages to read (at most {MAX_PAGES_CAP}).",
        },
        "use_sitemap": {
            "type": "boolean", "default": True, "title": "Use the sitemap",
            "description": "Also read the pages listed in the site's sitemaps (/sitemap.xml and those named "
                           "in robots.txt).",
        },
        "allow_private": {
            "type": "boolean", "default": False, "title": "Allow private addresses",
            "description": "Allow a site on a private network or on this machine (an intranet). Off by "
                           "default, so that a URL cannot make the server reach internal services.",
        },
        "include_patterns": {
            "type": "array", "items": {"type": "string", "format": "regex"}, "default": [],
            "title": "Only paths matching",
            "description": "Only read pages whose URL path matches one of these regular expressions "
                           "(e.g. ^/docs/). The start page is always read for its links.",
        },
        "exclude_patterns": {
            "type": "array", "items": {"type": "string", "format": "regex"}, "default": [],
            "title": "Skip paths matching",
            "description": "Never read pages whose URL path matches one of these regular expressions.",
        },
    },
}


@dataclass(frozen=True)
class CrawlSettings:
    url: str
    max_depth: int
    max_pages: int
    use_sitemap: bool
    allow_private: bool
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]

    @classmethod
    def from_config(cls, config: Mapping) -> CrawlSettings:
        """Validated settings from the connector's config; raises SourceError naming the setting at fault."""
        if not isinstance(config, Mapping):
            raise SourceError("the crawl settings must be an object")
        url = config.get("url")
        if not isinstance(url, str) or not url.strip():
            raise SourceError("url is required: the address of the first page to crawl")
        start = normalise_url(url)
        if start is None:
            raise SourceError(f"url must be an http or https address, not {url!r}")
        return cls(
            url=start,
            max_depth=_integer(config, "max_depth", default=2),
            max_pages=min(_integer(config, "max_pages", default=50, minimum=1), MAX_PAGES_CAP),
            use_sitemap=_boolean(config, "use_sitemap", default=True),
            allow_private=_boolean(config, "allow_private", default=False),
            include=_patterns(config, "include_patterns"),
            exclude=_patterns(config, "exclude_patterns"),
        )

    def wants(self, url: str) -> bool:
        """Whether the include/exclude patterns let the page at ``url`` in."""
        path = urlsplit(url).path
        if self.include and not any(pattern.search(path) for pattern in self.include):
            return False
        return not any(pattern.search(path) for pattern in self.exclude)


def _integer(config: Mapping, key: str, *, default: int, minimum: int = 0) -> int:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceError(f"{key} must be a whole number of at least {minimum}")
    return value


def _boolean(config: Mapping, key: str, *, default: bool) -> bool:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SourceError(f"{key} must be true or false")
    return value


def _patterns(config: Mapping, key: str) -> tuple[re.Pattern[str], ...]:
    value = config.get(key) or []
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise SourceError(f"{key} must be a list of regular expressions")
    compiled = []
    for pattern in value:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise SourceError(f"{key}: {pattern!r} is not a valid regular expression ({error})") from None
    return tuple(compiled)
