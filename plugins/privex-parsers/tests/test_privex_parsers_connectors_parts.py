"""The pieces the connectors share: Retry-After, the private-address test, URL normalisation, page reading and
sitemap parsing."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import jsonschema
import pytest

from privex_parsers.connectors import CONNECTORS, html_page
from privex_parsers.connectors.html_page import decode, is_html, normalise_url, read_html
from privex_parsers.connectors.http_retries import retry_after_seconds
from privex_parsers.connectors.network_guard import is_public_address
from privex_parsers.connectors.sitemaps import TooLarge, gunzip, parse_sitemap


def test_connectors_list_names_and_schemas():
    assert [connector.name for connector in CONNECTORS] == ["web", "notion", "google_docs"]
    for connector in CONNECTORS:
        jsonschema.Draft202012Validator.check_schema(connector.config_schema)
        for key, spec in connector.config_schema["properties"].items():
            assert spec.get("description"), f"{connector.name}.{key} has no description"
        assert callable(connector.fetch)


@pytest.mark.parametrize("config, valid", [
    ({"page_ids": ["a"]}, True),
    ({"database_id": "d"}, True),
    ({"page_ids": [], "database_id": "d"}, True),
    ({"page_ids": []}, False),
    ({}, False),
    ({"page_ids": ["a"], "pages": ["typo"]}, False),
])
def test_notion_schema_wants_a_page_or_a_database(config, valid):
    notion = next(connector for connector in CONNECTORS if connector.name == "notion")
    assert jsonschema.Draft202012Validator(notion.config_schema).is_valid(config) is valid


def test_retry_after_reads_seconds_and_dates():
    later = datetime.now(timezone.utc) + timedelta(seconds=120)
    assert retry_after_seconds("7") == 7.0
    assert 100 < retry_after_seconds(format_datetime(later, usegmt=True)) <= 120
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("100.64.0.1", False), ("224.0.0.1", False),
    ("240.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("::", False), ("fe80::1%eth0", False),
    ("fc00::1", False), ("::ffff:10.0.0.1", False), ("ff02::1", False),
])
def test_public_addresses(address, public):
    assert is_public_address(address) is public


@pytest.mark.parametrize("url, base, expected", [
    ("HTTP://Example.COM:80", None, "http://example.com/"),
    ("https://example.com:443/a?b=1#frag", None, "https://example.com/a?b=1"),
    ("https://user:pw@example.com:8443/x", None, "https://example.com:8443/x"),
    ("../up", "https://example.com/a/b/c", "https://example.com/a/up"),
    ("  /spaced  ", "https://example.com/", "https://example.com/spaced"),
    ("//cdn.example.com/x", "https://example.com/", "https://cdn.example.com/x"),
    ("http://[::1]:8000/", None, "http://[::1]:8000/"),
    ("mailto:someone@example.com", "https://example.com/", None),
    ("javascript:void(0)", "https://example.com/", None),
    ("http://example.com:99999/", None, None),
    ("ftp://example.com/", None, None),
])
def test_normalise_url(url, base, expected):
    assert normalise_url(url, base) == expected


def test_read_html_honours_base_href_and_robots_meta():
    page = read_html(
        "<html><head><title> Spaced \n Title </title><base href='/docs/'>"
        "<meta name='robots' content='noindex, follow'></head>"
        "<body><a href='intro'>i</a><a href='intro'>again</a><a href='#top'>top</a><p>Some text.</p></body></html>",
        "https://example.com/start",
    )
    assert page.title == "Spaced Title"
    assert page.links == ["https://example.com/docs/intro", "https://example.com/docs/"]  # "#top" is the base
    assert page.noindex and not page.nofollow and page.text == ""

    closed = read_html("<html><head><meta name='PrivexBot' content='none'></head><body><a href='/x'>x</a>"
                       "<p>Text.</p></body></html>", "https://example.com/")
    assert closed.noindex and closed.nofollow and closed.links == []


def test_read_html_falls_back_to_the_page_text_without_furniture(monkeypatch):
    monkeypatch.setattr(html_page.trafilatura, "extract", lambda *args, **kwargs: None)
    page = read_html(
        "<html><head><title>T</title><style>p {}</style></head><body><nav>Menu</nav><script>x()</script>"
        "<ul><li>First   item</li>\n<li>Second item</li></ul><footer>Legal</footer></body></html>",
        "https://example.com/",
    )
    assert page.text == "First item\nSecond item"


def test_read_html_of_nothing():
    assert read_html("", "https://example.com/").text == ""


def test_decode_uses_the_declared_charset():
    body = "<html><head><meta charset='iso-8859-1'></head><body>café</body></html>".encode("latin-1")
    assert "café" in decode(body, None)
    assert "café" in decode("café".encode(), "utf-8")
    assert decode(b"ok", "no-such-charset") == "ok"


def test_is_html():
    assert is_html("text/html; charset=utf-8", b"")
    assert is_html("application/xhtml+xml", b"")
    assert not is_html("application/json", b"<html>")
    assert is_html(None, b"  <!DOCTYPE html><html>")
    assert not is_html(None, b"%PDF-1.7")


def test_parse_sitemap_kinds():
    urlset = parse_sitemap(
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"><url><loc> https://example.com/a </loc>'
        b"<image:image><image:loc>https://example.com/a.png</image:loc></image:image></url>"
        b"<url><loc>https://example.com/b</loc></url></urlset>"
    )
    assert urlset.pages == ["https://example.com/a", "https://example.com/b"] and urlset.sitemaps == []
    index = parse_sitemap(b"<sitemapindex><sitemap><loc>https://example.com/s1.xml</loc></sitemap></sitemapindex>")
    assert index.sitemaps == ["https://example.com/s1.xml"] and index.pages == []
    text = parse_sitemap(b"https://example.com/a\n\nnot a url\nhttps://example.com/b\n")
    assert text.pages == ["https://example.com/a", "https://example.com/b"]
    assert parse_sitemap(b"<urlset><url><loc>broken").pages == []
    assert parse_sitemap(b"<html><body>not a sitemap</body></html>").pages == []


def test_parse_sitemap_does_not_expand_entities():
    body = (b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
            b"<urlset><url><loc>https://example.com/&secret;</loc></url></urlset>")
    assert parse_sitemap(body).pages in ([], ["https://example.com/"])


def test_gunzip_limits_what_it_expands():
    data = gzip.compress(b"a" * 10_000)
    assert gunzip(data, 10_000) == b"a" * 10_000
    assert gunzip(b"plain", 10) == b"plain"
    with pytest.raises(TooLarge):
        gunzip(data, 9_999)
