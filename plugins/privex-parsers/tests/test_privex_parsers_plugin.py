"""The plugin as the core sees it: loaded through its real entry point, listed by the app, and every parser and
chunker shaped as the hooks promise."""

from __future__ import annotations

import io

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import Document

import privex_parsers
from privex.plugins import load_plugins

PARSER_NAMES = {"text", "markdown", "html", "pdf", "docx", "csv", "json"}
CHUNKER_NAMES = {"token", "sentence", "semantic", "parent_child"}


def test_entry_point_registers_the_parsers_and_chunkers():
    plugins = load_plugins(allow=["parsers"])
    assert PARSER_NAMES <= set(plugins.document_parsers)
    assert CHUNKER_NAMES <= set(plugins.chunkers)
    assert plugins.document_parsers.owner("pdf") == "parsers" and plugins.chunkers.owner("sentence") == "parsers"
    assert set(plugins.source_connectors) == {"web", "notion", "google_docs"}
    assert plugins.source_connectors.owner("web") == "parsers"


def test_app_lists_the_plugin_with_its_distribution(make_app):
    application = make_app(LOAD_PLUGINS=["parsers"])
    listed = {plugin["name"]: plugin for plugin in application.test_client().get("/api/v1/plugins").get_json()}
    parsers = listed["parsers"]
    assert parsers["distribution"] == "privex-parsers" and parsers["version"] == "0.1.0"
    assert {"privex_document_parsers", "privex_chunkers"} <= set(parsers["hooks"])
    assert set(parsers["provides"]["document_parsers"]) == PARSER_NAMES
    assert set(parsers["provides"]["chunkers"]) == CHUNKER_NAMES


def test_parsers_have_the_attributes_the_hook_promises():
    parsers = privex_parsers.privex_document_parsers()
    assert {parser.name for parser in parsers} == PARSER_NAMES
    extensions = [extension for parser in parsers for extension in parser.extensions]
    assert len(extensions) == len(set(extensions))  # one parser per extension
    for parser in parsers:
        assert isinstance(parser.extensions, tuple) and all(e.startswith(".") and e == e.lower()
                                                             for e in parser.extensions)
        assert isinstance(parser.mime_types, tuple) and all("/" in mime for mime in parser.mime_types)
        assert callable(parser.parse)


def test_chunkers_create_llama_index_node_parsers():
    for chunker in privex_parsers.privex_chunkers():
        if chunker.name == "semantic":
            continue  # needs an embedding model: covered in test_privex_parsers_chunkers
        assert isinstance(chunker.create(), NodeParser)


def test_every_upload_document_carries_file_name_and_source_type():
    samples = {
        "text": b"Hello", "markdown": b"# Hi\n\nthere", "html": b"<html><body><p>Hello there</p></body></html>",
        "csv": b"a,b\n1,2\n", "json": b'{"a": 1}',
    }
    parsers = {parser.name: parser for parser in privex_parsers.privex_document_parsers()}
    for name, data in samples.items():
        documents = parsers[name].parse(io.BytesIO(data), f"folder/sample{parsers[name].extensions[0]}")
        assert documents and all(isinstance(document, Document) for document in documents)
        for document in documents:
            assert document.metadata["file_name"] == f"sample{parsers[name].extensions[0]}"
            assert document.metadata["source_type"] == "upload"
            assert all(isinstance(value, (str, int)) for value in document.metadata.values())  # flat, storable
