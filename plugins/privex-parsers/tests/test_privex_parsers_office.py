"""Word (.docx) uploads: sections by heading style with their heading path, tables as text, bad files refused."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest

from privex.contracts import UnreadableDocument
from privex_parsers.files import DocxParser


def docx_bytes(build, title: str | None = None) -> bytes:
    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def handbook(document):
    document.add_paragraph("Confidential draft")
    document.add_heading("Employee Handbook", level=0)  # the "Title" style
    document.add_heading("Leave", level=1)
    document.add_paragraph("Everyone gets 25 days of paid leave.")
    document.add_heading("Parental leave", level=2)
    document.add_paragraph("Parents get 16 weeks.")
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(table.rows, [("Country", "Weeks", "Paid"), ("France", "16", "yes"), ("Merged", "", "")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    table.cell(2, 0).merge(table.cell(2, 2))
    document.add_heading("Appeals", level=4)  # deeper than 3: stays inside its section
    document.add_paragraph("Write to HR.")
    document.add_heading("Expenses", level=1)
    document.add_heading("Travel", level=2)
    document.add_heading("Trains", level=3)
    document.add_paragraph("Second class only.")


def test_sections_follow_heading_styles_and_include_tables():
    documents = DocxParser().parse(io.BytesIO(docx_bytes(handbook)), "handbook.docx")
    assert [document.metadata.get("heading") for document in documents] == [
        None, "Leave", "Leave > Parental leave", "Expenses > Travel > Trains"]
    preamble, leave, parental, trains = (document.text for document in documents)
    assert "Confidential draft" in preamble and "Employee Handbook" in preamble
    assert leave == "Leave\n\nEveryone gets 25 days of paid leave."
    assert "Country | Weeks | Paid\nFrance | 16 | yes\nMerged" in parental
    assert "Merged | Merged" not in parental  # a merged cell is written once
    assert "Appeals\nWrite to HR." in parental
    assert trains == "Trains\n\nSecond class only."
    assert {document.metadata["title"] for document in documents} == {"Employee Handbook"}
    assert {(document.metadata["file_name"], document.metadata["source_type"]) for document in documents} == {
        ("handbook.docx", "upload")}


def test_title_prefers_document_properties_then_first_heading_then_file_name():
    declared = DocxParser().parse(io.BytesIO(docx_bytes(handbook, title="HR Handbook 2025")), "h.docx")
    assert declared[0].metadata["title"] == "HR Handbook 2025"

    def headings_only(document):
        document.add_heading("Refunds", level=1)
        document.add_paragraph("Within 30 days.")

    assert DocxParser().parse(io.BytesIO(docx_bytes(headings_only)), "r.docx")[0].metadata["title"] == "Refunds"

    def plain(document):
        document.add_paragraph("Just a note.")

    assert DocxParser().parse(io.BytesIO(docx_bytes(plain)), "memo-3.docx")[0].metadata["title"] == "memo-3"


def test_document_without_text_is_refused():
    with pytest.raises(UnreadableDocument, match="no readable text"):
        DocxParser().parse(io.BytesIO(docx_bytes(lambda document: document.add_paragraph("  "))), "blank.docx")


def test_empty_file_is_refused():
    with pytest.raises(UnreadableDocument, match="^the file is empty$"):
        DocxParser().parse(io.BytesIO(b""), "empty.docx")


def zip_without_word_parts() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    return out.getvalue()


@pytest.mark.parametrize("data", [b"plain text, not a zip", zip_without_word_parts(), docx_bytes(handbook)[:500]],
                         ids=["not-a-zip", "zip-without-word-parts", "truncated"])
def test_damaged_files_are_refused(data):
    with pytest.raises(UnreadableDocument, match=r"^the file is damaged or not a Word document \(\.docx\)$"):
        DocxParser().parse(io.BytesIO(data), "broken.docx")


def test_password_protected_or_old_format_is_refused_with_what_to_do():
    ole_file = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
    with pytest.raises(UnreadableDocument, match=r"password-protected or in the old Word format \(\.doc\); save it"):
        DocxParser().parse(io.BytesIO(ole_file), "old.docx")
