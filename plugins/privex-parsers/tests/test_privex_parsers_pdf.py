"""PDF uploads: a page per Document with its number, read from the file without copying it whole, and every way a
PDF can be unreadable (empty, damaged, encrypted, scanned) refused with its reason."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from privex.contracts import UnreadableDocument
from privex_parsers.files import PdfParser


def make_pdf(pages: list[str | None], title: str | None = None) -> bytes:
    """A minimal valid PDF: one page per entry, each showing its text in Helvetica (None: a page with no text
    layer, like a scan). The cross-reference table is computed from the real byte offsets."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: page tree; filled in once the pages exist
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font = len(objects)
    kids = []
    for text in pages:
        escaped = (text or "").replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        operations = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("latin-1") if text is not None else b""
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(operations), operations))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> "
                       b">> /Contents %d 0 R >>" % (font, len(objects)))
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))
    info = b""
    if title is not None:
        objects.append(b"<< /Title (%s) >>" % title.encode("latin-1"))
        info = b" /Info %d 0 R" % len(objects)
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref)
    return bytes(pdf)


def encrypted(pdf: bytes, user_password: str, **options) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password, **options)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class BoundedReads(io.FileIO):
    """A file that refuses to be read whole in one call, as a 50 MB upload should never be."""

    def read(self, size=-1):
        assert size is not None and size >= 0, "the parser read the whole file at once"
        return super().read(size)

    def readall(self):
        raise AssertionError("the parser read the whole file at once")


def test_one_document_per_page_with_page_numbers_and_title():
    pdf = make_pdf(["Hello page one", "Refunds take (at most) 5 days", "Goodbye page three"], title="User Guide")
    documents = PdfParser().parse(io.BytesIO(pdf), "guide.pdf")
    assert [document.text for document in documents] == [
        "Hello page one", "Refunds take (at most) 5 days", "Goodbye page three"]
    assert [document.metadata for document in documents] == [
        {"file_name": "guide.pdf", "source_type": "upload", "page": page, "page_count": 3, "title": "User Guide"}
        for page in (1, 2, 3)]


def test_title_defaults_to_file_name_and_pages_without_text_are_skipped():
    documents = PdfParser().parse(io.BytesIO(make_pdf(["First", None, "Third"])), "scans/Annual Report.pdf")
    assert [(document.metadata["page"], document.text) for document in documents] == [(1, "First"), (3, "Third")]
    assert documents[0].metadata["title"] == "Annual Report"


def test_reads_a_file_on_disk_page_by_page(tmp_path):
    path = tmp_path / "big.pdf"
    path.write_bytes(make_pdf([f"Page {number} body" for number in range(1, 41)]))
    with BoundedReads(path) as stream:
        documents = PdfParser().parse(stream, path.name)
    assert len(documents) == 40 and documents[-1].text == "Page 40 body" and documents[-1].metadata["page"] == 40


def test_reads_a_stream_that_cannot_seek():
    class Unseekable(io.RawIOBase):
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    documents = PdfParser().parse(io.BufferedReader(Unseekable(make_pdf(["Streamed"]))), "s.pdf")
    assert [document.text for document in documents] == ["Streamed"]


def test_pdf_encrypted_only_against_editing_opens_with_the_empty_password():
    pdf = encrypted(make_pdf(["Readable anyway"]), "", owner_password="owner-secret")
    assert [document.text for document in PdfParser().parse(io.BytesIO(pdf), "locked.pdf")] == ["Readable anyway"]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_pdf_with_a_user_password_is_refused_as_encrypted(algorithm):
    pdf = encrypted(make_pdf(["Secret page"]), "secret", algorithm=algorithm)
    with pytest.raises(UnreadableDocument, match="^the PDF is encrypted$"):
        PdfParser().parse(io.BytesIO(pdf), "secret.pdf")


@pytest.mark.parametrize("data", [
    b"This is a Word document renamed to .pdf",
    make_pdf(["Cut short"])[:120],
    b"%PDF-1.4\n" + b"garbage " * 200,
], ids=["not-a-pdf", "truncated", "garbage-after-header"])
def test_damaged_pdf_is_refused(data):
    with pytest.raises(UnreadableDocument, match=r"^the PDF is damaged or not a PDF$"):
        PdfParser().parse(io.BytesIO(data), "broken.pdf")


def test_pdf_without_a_text_layer_is_refused():
    with pytest.raises(UnreadableDocument, match=r"^the PDF has no text layer \(scanned pages need OCR\)$"):
        PdfParser().parse(io.BytesIO(make_pdf([None, None])), "scan.pdf")


def test_empty_pdf_file_is_refused():
    with pytest.raises(UnreadableDocument, match="^the file is empty$"):
        PdfParser().parse(io.BytesIO(b""), "empty.pdf")
