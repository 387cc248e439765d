"""The ``web`` connector against a real HTTP server (pytest-httpserver): robots.txt, sitemaps, depth and page limits,
content types, sizes, redirects and the private-address guard."""

from __future__ import annotations

import gzip
from urllib.parse import urlsplit

import pytest
from werkzeug import Response

from privex.contracts import SourceError
from privex_parsers.connectors.crawl_settings import CrawlSettings
from privex_parsers.connectors.web import WebCrawler

USER_AGENT = "PrivexBot/0.1 (+self-hosted)"
PAGE_LIMIT = 20_000  # bytes; the crawler under test is built with it so "too large" needs no 5 MB page

NAV_TEXT = "Main menu Products Pricing plans Careers"
FOOTER_TEXT = "Copyright Acme Corporation, all rights reserved, legal notices"


def page(title: str, paragraphs: list[str], links: list[str] = ()) -> str:
    """A page with boilerplate around its article: the crawl links sit in the navigation, like a real site's."""
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    article = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<script>var tracking = 'SCRIPT-NOISE';</script></head><body>"
        f"<header><nav>{NAV_TEXT} {anchors}</nav></header>"
        f"<main><article><h1>{title}</h1>{article}</article></main>"
        f"<footer><p>{FOOTER_TEXT}</p></footer></body></html>"
    )


def prose(topic: str) -> list[str]:
    return [
        f"{topic} is explained on this page in enough detail for a reader who has never seen it before today.",
        f"Everything about {topic} that matters to customers is written down here, with examples and caveats.",
        f"Questions about {topic} that this page does not answer can be sent to the support team at any time.",
    ]


def urlset(*urls: str) -> str:
    entries = "".join(
        f"<url><loc>{url}</loc><image:image><image:loc>{url}.png</image:loc></image:image></url>" for url in urls
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">' + entries + "</urlset>"
    )


def html(httpserver, path: str, body: str) -> None:
    httpserver.expect_request(path).respond_with_data(body, content_type="text/html; charset=utf-8")


@pytest.fixture()
def site(httpserver):
    """A small site; returns its root URL (http://localhost:<port>/)."""
    base = httpserver.url_for("/")
    other_host = base.replace("localhost", "127.0.0.1")  # the same server under another host: another site
    # The group for PrivexBot wins over "*", which would forbid everything.
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: PrivexBot\nDisallow: /private/\n\n"
        f"Sitemap: {base}sitemap_index.xml\n",
        content_type="text/plain",
    )
    httpserver.expect_request("/sitemap.xml").respond_with_data(
        urlset(f"{base}from-sitemap", "http://elsewhere.invalid/page", f"{base}private/listed"),
        content_type="application/xml",
    )
    httpserver.expect_request("/sitemap_index.xml").respond_with_data(
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{base}sitemap-posts.xml.gz</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    httpserver.expect_request("/sitemap-posts.xml.gz").respond_with_data(
        gzip.compress(urlset(f"{base}posts/deep").encode()), content_type="application/gzip"
    )
    html(httpserver, "/", page("Acme Widgets", prose("The widget catalogue"), links=[
        "about", "/about#team", "/docs/", "/private/secret", "mailto:sales@acme.test", "javascript:void(0)",
        "tel:+100", f"{other_host}external", "/data", "/big", "/stream-big", "/report.pdf", "/empty", "/moved",
    ]))
    html(httpserver, "/about", page("About Acme", prose("The history of Acme"), links=["/"]))
    html(httpserver, "/docs/", page("Documentation", prose("The documentation index"), links=["intro"]))
    html(httpserver, "/docs/intro", page("Introduction", prose("The introduction"), links=["intro/deeper"]))
    html(httpserver, "/docs/intro/deeper", page("Too deep", prose("A page three links away")))
    html(httpserver, "/from-sitemap", page("Only in the sitemap", prose("The sitemap-only page")))
    html(httpserver, "/posts/deep", page("Only in the sitemap index", prose("The indexed post")))
    html(httpserver, "/private/secret", page("Secret", prose("A disallowed page")))
    html(httpserver, "/private/listed", page("Secret listed", prose("A disallowed page in the sitemap")))
    html(httpserver, "/external", page("External", prose("Another site")))
    html(httpserver, "/empty", "<html><head><title>Empty</title></head><body>  </body></html>")
    html(httpserver, "/big", page("Big", prose("x" * PAGE_LIMIT)))
    httpserver.expect_request("/moved").respond_with_data("", status=301, headers={"Location": "/about"})
    httpserver.expect_request("/data").respond_with_json({"not": "a page"})
    httpserver.expect_request("/report.pdf").respond_with_data(b"%PDF-1.7", content_type="application/pdf")

    def streamed_big_page(request):  # no Content-Length: the limit must hold while reading
        def chunks():
            yield b"<html><head><title>Streamed</title></head><body>"
            for _ in range(50):
                yield b"<p>" + b"streamed text " * 100 + b"</p>"
            yield b"</body></html>"
        return Response(chunks(), content_type="text/html")

    httpserver.expect_request("/stream-big").respond_with_handler(streamed_big_page)
    return base


def crawler(resolver=None) -> tuple[WebCrawler, list[float]]:
    sleeps: list[float] = []
    kwargs = {"resolver": resolver} if resolver else {}
    return WebCrawler(sleep=sleeps.append, max_page_bytes=PAGE_LIMIT, **kwargs), sleeps


def requested_paths(httpserver) -> list[str]:
    return [request.path for request, _response in httpserver.log]


def public_resolver(host: str, port: int) -> list[str]:
    """Every name is a public address, except IP literals, which are themselves: the test server looks public."""
    return [host] if host[0].isdigit() or ":" in host else ["93.184.216.34"]


def test_crawl_reads_pages_of_the_site_with_sitemaps_and_robots(httpserver, site):
    web, _sleeps = crawler()

    documents = list(web.fetch({"url": site, "allow_private": True}, None))

    by_url = {document.metadata["source_url"]: document for document in documents}
    assert set(by_url) == {
        site, f"{site}about", f"{site}docs/", f"{site}docs/intro", f"{site}from-sitemap", f"{site}posts/deep",
    }
    assert len(documents) == len(by_url)  # /moved redirects to /about, read once
    home = by_url[site]
    assert home.metadata == {"source_type": "web", "source_url": site, "title": "Acme Widgets", "depth": 0}
    assert "The widget catalogue is explained on this page" in home.text
    assert NAV_TEXT not in home.text and "Copyright Acme" not in home.text and "SCRIPT-NOISE" not in home.text
    assert by_url[f"{site}about"].metadata["title"] == "About Acme"
    assert by_url[f"{site}docs/intro"].metadata["depth"] == 2
    assert by_url[f"{site}from-sitemap"].metadata["depth"] == 1
    assert "The indexed post" in by_url[f"{site}posts/deep"].text

    paths = requested_paths(httpserver)
    assert "/docs/intro/deeper" not in paths  # three links away, max_depth is 2
    assert not [path for path in paths if path.startswith("/private/")]  # robots.txt
    assert "/external" not in paths  # another host is another site
    assert "/report.pdf" not in paths  # not a page by its name
    assert {"/data", "/big", "/stream-big", "/empty"} <= set(paths)  # fetched, then skipped
    assert paths.count("/about") == 1  # /moved redirects to it: not fetched again
    assert paths.count("/robots.txt") == 1
    for request, _response in httpserver.log:
        assert request.headers["User-Agent"] == USER_AGENT


def test_depth_zero_reads_the_start_page_only(httpserver, site):
    web, _sleeps = crawler()

    documents = list(web.fetch({"url": site, "allow_private": True, "max_depth": 0}, None))

    assert [document.metadata["source_url"] for document in documents] == [site]
    assert "/sitemap.xml" not in requested_paths(httpserver)


def test_depth_one_without_sitemap(httpserver, site):
    web, _sleeps = crawler()

    documents = list(web.fetch({"url": site, "allow_private": True, "max_depth": 1, "use_sitemap": False}, None))

    assert {document.metadata["source_url"] for document in documents} == {site, f"{site}about", f"{site}docs/"}
    assert not {"/sitemap.xml", "/sitemap_index.xml", "/docs/intro"} & set(requested_paths(httpserver))


def test_page_limit_stops_the_crawl(httpserver, site):
    web, _sleeps = crawler()

    documents = list(web.fetch({"url": site, "allow_private": True, "max_pages": 2}, None))

    assert [document.metadata["source_url"] for document in documents] == [site, f"{site}about"]
    assert "/docs/" not in requested_paths(httpserver)


def test_include_and_exclude_patterns_filter_by_path(httpserver, site):
    web, _sleeps = crawler()

    included = list(web.fetch({"url": site, "allow_private": True, "include_patterns": ["^/docs/"]}, None))
    excluded = list(web.fetch({"url": site, "allow_private": True, "exclude_patterns": ["intro$", "^/posts/"]},
                              None))

    # The start page is read for its links but, outside the patterns, is not a document.
    assert {d.metadata["source_url"] for d in included} == {f"{site}docs/", f"{site}docs/intro"}
    assert {d.metadata["source_url"] for d in excluded} == {
        site, f"{site}about", f"{site}docs/", f"{site}from-sitemap",
    }


def test_crawl_delay_is_honoured_up_to_a_cap(httpserver):
    httpserver.expect_request("/robots.txt").respond_with_data("User-agent: *\nCrawl-delay: 600\n")
    html(httpserver, "/", page("Home", prose("The home page"), links=["/a"]))
    html(httpserver, "/a", page("A", prose("Page A")))
    web, sleeps = crawler()

    documents = list(web.fetch({"url": httpserver.url_for("/"), "allow_private": True, "use_sitemap": False}, None))

    assert len(documents) == 2
    assert sleeps == [5.0]


def test_start_page_on_loopback_is_refused_without_allow_private(httpserver, site):
    loopback = site.replace("localhost", "127.0.0.1")

    with pytest.raises(SourceError) as refused:
        WebCrawler().fetch({"url": loopback}, None)  # refused when called, before anything is read

    assert str(refused.value) == "refusing to crawl 127.0.0.1: it resolves to a private or loopback address"
    assert refused.value.transient is False
    assert httpserver.log == []


@pytest.mark.parametrize("url, addresses", [
    ("http://intranet.example/", ["10.1.2.3"]),
    ("http://metadata.example/latest/", ["169.254.169.254"]),
    ("http://mixed.example/", ["93.184.216.34", "192.168.0.10"]),  # one private address is enough
    ("http://v6.example/", ["::1"]),
    ("http://mapped.example/", ["::ffff:127.0.0.1"]),
    ("http://multicast.example/", ["224.0.0.251"]),
    ("http://zero.example/", ["0.0.0.0"]),
    ("http://cgnat.example/", ["100.64.0.1"]),
])
def test_guard_refuses_names_that_resolve_to_private_addresses(url, addresses):
    asked = []

    def resolver(host, port):
        asked.append((host, port))
        return addresses

    with pytest.raises(SourceError, match="it resolves to a private or loopback address"):
        list(WebCrawler(resolver=resolver).fetch({"url": url}, None))
    assert asked == [(urlsplit(url).hostname, 80)]


def test_guard_refuses_a_redirect_to_loopback_unless_allowed(httpserver):
    loopback_landing = httpserver.url_for("/landing").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/go").respond_with_data("", status=302, headers={"Location": loopback_landing})
    html(httpserver, "/landing", page("Landing", prose("The landing page")))
    start = httpserver.url_for("/go")  # on "localhost", which the stubbed resolver calls public
    web, _sleeps = crawler(resolver=public_resolver)

    with pytest.raises(SourceError, match="^refusing to crawl 127.0.0.1: it resolves to a private"):
        list(web.fetch({"url": start}, None))
    assert "/landing" not in requested_paths(httpserver)

    documents = list(web.fetch({"url": start, "allow_private": True}, None))
    assert [d.metadata["source_url"] for d in documents] == [loopback_landing]


def test_guard_checks_every_page_not_only_the_start(httpserver):
    """A name that resolves to a public address for the start page and to loopback afterwards (DNS rebinding)."""
    rebound = []

    def resolver(host, port):
        return ["127.0.0.1"] if rebound else ["93.184.216.34"]

    def home(request):
        rebound.append(True)
        return Response(page("Home", prose("The home page"), links=["/next"]), content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/").respond_with_handler(home)
    html(httpserver, "/next", page("Next", prose("The next page")))

    documents = WebCrawler(resolver=resolver).fetch({"url": httpserver.url_for("/"), "use_sitemap": False}, None)

    assert next(documents).metadata["title"] == "Home"
    with pytest.raises(SourceError, match="refusing to crawl localhost"):
        next(documents)
    assert "/next" not in requested_paths(httpserver)


def test_a_redirect_off_the_site_is_not_followed(httpserver):
    other_site = httpserver.url_for("/elsewhere").replace("localhost", "127.0.0.1")
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    html(httpserver, "/", page("Home", prose("The home page"), links=["/away"]))
    httpserver.expect_request("/away").respond_with_data("", status=302, headers={"Location": other_site})
    html(httpserver, "/elsewhere", page("Elsewhere", prose("Another site")))
    web, _sleeps = crawler()

    documents = list(web.fetch({"url": httpserver.url_for("/"), "allow_private": True, "use_sitemap": False}, None))

    assert [d.metadata["title"] for d in documents] == ["Home"]
    assert "/elsewhere" not in requested_paths(httpserver)


def test_start_page_failures_are_source_errors(httpserver):
    httpserver.expect_request("/robots.txt").respond_with_data("User-agent: *\nDisallow: /closed\n")
    httpserver.expect_request("/missing").respond_with_data("nope", status=404)
    httpserver.expect_request("/file").respond_with_data(b"%PDF-1.7", content_type="application/pdf")
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    html(httpserver, "/huge", page("Huge", prose("y" * PAGE_LIMIT)))
    web, sleeps = crawler()

    def fetch(path):
        with pytest.raises(SourceError) as failed:
            list(web.fetch({"url": httpserver.url_for(path), "allow_private": True}, None))
        return failed.value

    missing = fetch("/missing")
    assert str(missing).endswith("missing: the server answered HTTP 404") and not missing.transient
    assert str(fetch("/file")).endswith("it is not an HTML page (application/pdf)")
    assert str(fetch("/closed")).endswith("robots.txt does not allow PrivexBot to read it")
    assert str(fetch("/huge")).endswith("huge: it is larger than 20 KB")
    down = fetch("/down")
    assert down.transient and "HTTP 503" in str(down)
    assert requested_paths(httpserver).count("/down") == 3  # retried
    assert sleeps == [1.0, 2.0]  # backoff
    assert "/closed" not in requested_paths(httpserver)


def test_unreadable_robots_txt_stops_the_crawl_for_now(httpserver):
    httpserver.expect_request("/robots.txt").respond_with_data("down", status=500)
    web, sleeps = crawler()

    with pytest.raises(SourceError) as failed:
        list(web.fetch({"url": httpserver.url_for("/"), "allow_private": True}, None))

    assert failed.value.transient
    assert "robots.txt" in str(failed.value) and "try again later" in str(failed.value)
    assert requested_paths(httpserver) == ["/robots.txt"] * 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("config, message", [
    ({}, "url is required"),
    ({"url": "ftp://example.com/"}, "url must be an http or https address"),
    ({"url": "javascript:alert(1)"}, "url must be an http or https address"),
    ({"url": "https://example.com/", "max_depth": -1}, "max_depth must be a whole number of at least 0"),
    ({"url": "https://example.com/", "max_pages": 0}, "max_pages must be a whole number of at least 1"),
    ({"url": "https://example.com/", "max_pages": True}, "max_pages must be a whole number"),
    ({"url": "https://example.com/", "use_sitemap": "yes"}, "use_sitemap must be true or false"),
    ({"url": "https://example.com/", "include_patterns": "^/docs"}, "include_patterns must be a list"),
    ({"url": "https://example.com/", "exclude_patterns": ["("]}, "exclude_patterns: '\\(' is not a valid"),
])
def test_settings_are_checked_before_anything_is_fetched(config, message):
    with pytest.raises(SourceError, match=message):
        WebCrawler(resolver=lambda host, port: pytest.fail("nothing may be resolved")).fetch(config, None)


def test_settings_defaults_and_page_cap():
    settings = CrawlSettings.from_config({"url": "HTTPS://Example.COM:443/docs#top", "max_pages": 5000})

    assert settings.url == "https://example.com/docs"
    assert (settings.max_depth, settings.max_pages, settings.use_sitemap, settings.allow_private) == (2, 1000, True,
                                                                                                        False)


def test_config_schema_documents_every_setting():
    schema = WebCrawler.config_schema
    assert schema["required"] == ["url"]
    for key, spec in schema["properties"].items():
        assert spec["description"], key
    defaults = {key: spec.get("default") for key, spec in schema["properties"].items()}
    assert defaults == {"url": None, "max_depth": 2, "max_pages": 50, "use_sitemap": True, "allow_private": False,
                        "include_patterns": [], "exclude_patterns": []}
