"""CSV and JSON uploads: values written beside their column or path, grouped with metadata a citation can name."""

from __future__ import annotations

import io
import json

import pytest

from privex.contracts import UnreadableDocument
from privex_parsers.files import CsvParser, JsonParser


def parse(parser, data: bytes, filename: str):
    return parser.parse(io.BytesIO(data), filename)


def test_csv_rows_are_grouped_fifty_per_document_as_column_value_lines():
    lines = ["id,name,city"] + [f"{number},Person {number},Paris" for number in range(1, 121)]
    documents = parse(CsvParser(), "\n".join(lines).encode(), "people.csv")
    assert [document.metadata["rows"] for document in documents] == ["2-51", "52-101", "102-121"]
    assert {document.metadata["columns"] for document in documents} == {"id, name, city"}
    assert {document.metadata["file_name"] for document in documents} == {"people.csv"}
    assert {document.metadata["source_type"] for document in documents} == {"upload"}
    assert documents[0].text.startswith("row 2\nid: 1\nname: Person 1\ncity: Paris\n\nrow 3\nid: 2\n")
    assert documents[2].text.endswith("row 121\nid: 120\nname: Person 120\ncity: Paris")


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_csv_delimiter_is_detected_and_quoted_fields_are_kept_whole(delimiter):
    rows = [["product", "note", "price"],
            ["Widget", f'says "hi"{delimiter} twice', "9.50"],
            ["Gadget", "two\nlines", "12"]]
    body = "\r\n".join(delimiter.join('"' + cell.replace('"', '""') + '"' for cell in row) for row in rows)
    [document] = parse(CsvParser(), body.encode(), "products.csv")
    assert f'note: says "hi"{delimiter} twice' in document.text
    assert "row 3\nproduct: Gadget\nnote: two\nlines\nprice: 12" in document.text
    assert document.metadata["columns"] == "product, note, price"


def test_csv_numbers_rows_like_a_spreadsheet_and_names_unnamed_columns():
    data = "\ufeffname,,name\nAnn,x,y,extra\n\n,,\nBob,,z\n".encode()
    [document] = parse(CsvParser(), data, "odd.csv")
    assert document.metadata["rows"] == "2-5"  # the blank line (3) and the empty row (4) count but say nothing
    assert document.metadata["columns"] == "name, column 2, name (3)"
    assert document.text == ("row 2\nname: Ann\ncolumn 2: x\nname (3): y\ncolumn 4: extra\n\n"
                             "row 5\nname: Bob\nname (3): z")


@pytest.mark.parametrize("data, reason", [
    (b"", "^the file is empty$"),
    (b"a,b,c\n", "^the CSV has a header row but no data rows$"),
    (b"a,b\n\x00\x01,\x02\n", "not text"),
], ids=["empty", "header-only", "binary"])
def test_unreadable_csv_is_refused(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        parse(CsvParser(), data, "bad.csv")


def test_json_object_is_flattened_to_paths_one_document_per_top_level_key():
    data = {
        "product": "PrivexBot",
        "plans": [{"name": "Free", "seats": 5, "features": ["widget", "api"]}, {"name": "Team", "seats": None}],
        "limits": {"upload size": "50 MB", "private": True, "extras": {}},
    }
    plans = ("plans[0].name: Free\nplans[0].seats: 5\nplans[0].features[0]: widget\nplans[0].features[1]: api\n"
             "plans[1].name: Team\nplans[1].seats: null")
    parser = JsonParser()
    parser.characters_per_document = len(plans) + 1  # the largest key fits, no two neighbours do
    documents = parse(parser, json.dumps(data).encode(), "catalog.json")
    assert [document.metadata["json_path"] for document in documents] == ["product", "plans", "limits"]
    assert documents[0].text == "product: PrivexBot"
    assert documents[1].text == plans
    assert documents[2].text == 'limits["upload size"]: 50 MB\nlimits.private: true\nlimits.extras: {}'
    assert {(document.metadata["file_name"], document.metadata["source_type"]) for document in documents} == {
        ("catalog.json", "upload")}


def test_json_small_neighbours_are_packed_and_large_values_split_further():
    small = parse(JsonParser(), json.dumps({"a": 1, "b": "two"}).encode(), "small.json")
    assert [(document.metadata["json_path"], document.text) for document in small] == [("a, b", "a: 1\nb: two")]

    records = [{"id": number, "text": "lorem ipsum " * 10} for number in range(100)]
    documents = parse(JsonParser(), json.dumps({"version": 3, "records": records}).encode(), "big.json")
    paths = [document.metadata["json_path"] for document in documents]
    assert paths[0] == "version" and paths[1].startswith("records[0] to records[") and paths[-1].endswith("[99]")
    assert all(len(document.text) <= JsonParser.characters_per_document for document in documents)
    assert "\n".join(document.text for document in documents).count("].id: ") == 100

    wrapped = parse(JsonParser(), json.dumps({"data": {"records": records}}).encode(), "wrapped.json")
    assert len(wrapped) > 1 and wrapped[0].metadata["json_path"].startswith("data.records[0] to data.records[")


def test_json_array_and_scalar_roots():
    documents = parse(JsonParser(), b'[{"q": "How?", "a": "Like this."}, {"q": "Why?"}]', "faq.json")
    assert [(document.metadata["json_path"], document.text) for document in documents] == [
        ("[0] to [1]", "[0].q: How?\n[0].a: Like this.\n[1].q: Why?")]
    [scalar] = parse(JsonParser(), b'"just a string"', "s.json")
    assert (scalar.metadata["json_path"], scalar.text) == ("$", "$: just a string")


def test_deeply_nested_json_is_flattened_without_exhausting_the_stack():
    depth = 500
    data = '{"a":' * depth + '"bottom"' + "}" * depth
    [document] = parse(JsonParser(), data.encode(), "deep.json")
    assert document.text == "a" + ".a" * (depth - 1) + ": bottom"


@pytest.mark.parametrize("data, reason", [
    (b'{"name": "x",\n  "broken": }', r"^the JSON is invalid: Expecting value at line 2, column 13$"),
    (b"{}", "^the JSON has no content$"),
    (b"  ", "^the file is empty$"),
], ids=["invalid", "no-content", "empty"])
def test_unreadable_json_is_refused_with_the_error_position(data, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        parse(JsonParser(), data, "bad.json")
