"""Text, Markdown and HTML uploads: the text, the metadata a citation needs, and the reasons bad files are refused."""

from __future__ import annotations

import codecs
import io

import pytest

from privex.contracts import UnreadableDocument
from privex_parsers.files import HtmlParser, MarkdownParser, TextParser
from privex_parsers.files import html as html_module


def parse(parser, data: bytes, filename: str):
    return parser.parse(io.BytesIO(data), filename)


def test_text_is_one_document_titled_by_its_first_line():
    [document] = parse(TextParser(), b"\n\n  Release notes  \nVersion 2 adds wallets.\n", "uploads/notes.txt")
    assert document.text == "Release notes  \nVersion 2 adds wallets."
    assert document.metadata == {"file_name": "notes.txt", "source_type": "upload", "title": "Release notes"}


def test_text_title_is_truncated():
    [document] = parse(TextParser(), ("word " * 100).encode(), "long.txt")
    assert len(document.metadata["title"]) <= 200 and document.metadata["title"].endswith("…")


@pytest.mark.parametrize("data, expected", [
    (codecs.BOM_UTF8 + "Café ouvert".encode(), "Café ouvert"),
    ("Café ouvert".encode("latin-1"), "Café ouvert"),
    (codecs.BOM_UTF16_LE + "Café ouvert".encode("utf-16-le"), "Café ouvert"),
])
def test_text_is_decoded_from_utf8_utf16_or_latin1(data, expected):
    [document] = parse(TextParser(), data, "a.txt")
    assert document.text == expected and not document.text.startswith("\ufeff")


def test_file_name_drops_windows_folders():
    [document] = parse(TextParser(), b"hello", "C:\\Users\\ann\\notes.txt")
    assert document.metadata["file_name"] == "notes.txt"


@pytest.mark.parametrize("parser", [TextParser(), MarkdownParser(), HtmlParser()], ids=lambda p: p.name)
@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "], ids=["empty", "whitespace"])
def test_empty_files_are_refused(parser, data):
    with pytest.raises(UnreadableDocument, match="^the file is empty$"):
        parse(parser, data, "x")


@pytest.mark.parametrize("data", [b"PK\x03\x04\x14\x00\x00\x00binary\x00zip", bytes(range(1, 32)) * 20],
                         ids=["nul-bytes", "control-characters"])
def test_binary_files_are_refused(data):
    with pytest.raises(UnreadableDocument, match="not text"):
        parse(TextParser(), data, "image.txt")


GUIDE = b"""---
title: From front matter
---
Read this first.

# PrivexBot Guide

Welcome to the guide.

## Install

### Linux
Use apt-get.

```sh
# a comment in code, not a heading
```

### Windows
Run the installer.

#### Silent mode
Pass /S.

Upgrading
---------
Back up first.
"""


def test_markdown_is_split_by_headings_with_their_path():
    documents = parse(MarkdownParser(), GUIDE, "guide.md")
    assert [document.metadata.get("heading") for document in documents] == [
        None,
        "PrivexBot Guide",
        "PrivexBot Guide > Install > Linux",
        "PrivexBot Guide > Install > Windows",
        "PrivexBot Guide > Upgrading",
    ]
    assert {document.metadata["title"] for document in documents} == {"PrivexBot Guide"}
    assert {document.metadata["file_name"] for document in documents} == {"guide.md"}
    assert {document.metadata["source_type"] for document in documents} == {"upload"}
    preamble, intro, linux, windows, upgrading = (document.text for document in documents)
    assert preamble == "Read this first." and "From front matter" not in preamble
    assert intro.startswith("# PrivexBot Guide") and "Welcome to the guide." in intro
    assert "Use apt-get." in linux and "# a comment in code, not a heading" in linux
    assert "#### Silent mode\nPass /S." in windows  # below level 3: kept inside its section
    assert "Back up first." in upgrading


def test_markdown_title_falls_back_to_front_matter_then_file_name():
    [document] = parse(MarkdownParser(), b"---\ntitle: 'Handbook'\n---\n## Only\ntext\n", "hb.md")
    assert document.metadata["title"] == "Handbook" and document.metadata["heading"] == "Only"
    [document] = parse(MarkdownParser(), b"just text", "notes.v2.md")
    assert document.metadata["title"] == "notes.v2" and "heading" not in document.metadata


def test_markdown_with_only_front_matter_has_no_text():
    with pytest.raises(UnreadableDocument, match="no readable text"):
        parse(MarkdownParser(), b"---\ntitle: x\n---\n# Heading only\n", "x.md")


PAGE = b"""<!doctype html>
<html><head><meta charset="windows-1252"><title>Privex \x96 Install</title>
<style>body { color: red }</style><script>var tracking = "SECRET";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article>
<h1>Installation</h1>
<p>Run the installer on your machine. It takes a few minutes and needs administrator rights.</p>
<h2>Linux</h2>
<p>Use apt-get install privex on Debian and Ubuntu, with sudo when you are not root.</p>
<h3>Arch</h3>
<p>Use pacman to install the privex package from the community repository.</p>
<table><tr><th>Port</th><th>Use</th></tr><tr><td>5000</td><td>web server</td></tr></table>
</article>
<footer>Copyright 2025</footer>
</body></html>"""


def test_html_main_text_is_split_by_h1_to_h3_and_titled_by_title_tag():
    documents = parse(HtmlParser(), PAGE, "install.html")
    assert [document.metadata["heading"] for document in documents] == [
        "Installation", "Installation > Linux", "Installation > Linux > Arch"]
    assert {document.metadata["title"] for document in documents} == {"Privex – Install"}  # windows-1252 dash
    text = "\n".join(document.text for document in documents)
    assert "needs administrator rights" in text and "pacman" in text and "5000" in text
    assert "SECRET" not in text and "color: red" not in text


def test_html_falls_back_to_the_visible_text_when_trafilatura_finds_nothing(monkeypatch):
    monkeypatch.setattr(html_module.trafilatura, "extract", lambda *args, **kwargs: None)
    documents = parse(HtmlParser(), PAGE, "install.htm")
    assert [document.metadata.get("heading") for document in documents] == [
        None, "Installation", "Installation > Linux", "Installation > Linux > Arch"]
    assert documents[0].text == "Home | About"
    text = "\n".join(document.text for document in documents)
    assert "Use apt-get install privex" in text and "Copyright 2025" in text
    assert "SECRET" not in text and "color: red" not in text and "Privex – Install" not in text


def test_html_without_title_uses_first_h1():
    [document] = parse(HtmlParser(), b"<html><body><h1>Pricing</h1><p>Free for teams of five.</p></body></html>",
                       "p.html")
    assert document.metadata["title"] == "Pricing" and "Free for teams of five." in document.text


def test_html_with_no_visible_text_is_refused():
    with pytest.raises(UnreadableDocument, match="no readable text"):
        parse(HtmlParser(), b"<html><head><script>x()</script></head><body>  </body></html>", "blank.html")
