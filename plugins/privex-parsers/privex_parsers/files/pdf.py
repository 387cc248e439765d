"""PDF uploads, read page by page with pypdf straight from the upload's file (never copied whole into memory).

One Document per page that has text, with its 1-based ``page``, so an answer can cite "page 12 of 40". Pages
without a text layer are skipped; a PDF with none at all is refused, since scanned pages need OCR, which this
parser does not do.
"""

from __future__ import annotations

import logging
import re
from typing import IO

from llama_index.core.schema import Document
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

from privex.contracts import UnreadableDocument
from privex_parsers.files.document import EMPTY, seekable, shorten, stem, upload_document

log = logging.getLogger(__name__)

ENCRYPTED = "the PDF is encrypted"
DAMAGED = "the PDF is damaged or not a PDF"
NO_TEXT_LAYER = "the PDF has no text layer (scanned pages need OCR)"

# pypdf reports a malformed file through more than its own exception classes.
_MALFORMED = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError)


class PdfParser:
    """A PDF, one Document per page with text."""

    name = "pdf"
    extensions = (".pdf",)
    mime_types = ("application/pdf",)

    def parse(self, stream: IO[bytes], filename: str) -> list[Document]:
        with seekable(stream) as pdf:
            return self._pages(pdf, filename)

    def _pages(self, stream: IO[bytes], filename: str) -> list[Document]:
        head = stream.read(1024)
        stream.seek(0)
        if not head.strip():
            raise UnreadableDocument(EMPTY)
        if b"%PDF-" not in head:  # checked here, so a Word file renamed .pdf does not fill the log with pypdf noise
            raise UnreadableDocument(DAMAGED)
        reader = _open(stream)
        page_count = len(reader.pages)
        title = _title(reader) or stem(filename)
        documents, failed = [], 0
        for number, page in enumerate(reader.pages, start=1):
            try:
                text = page.extract_text()
            except Exception as error:  # noqa: BLE001 - pypdf's content interpreter raises anything on a bad page;
                # one unreadable page must not lose the others.
                log.warning("skipping unreadable PDF page", extra={"file_name": filename, "page": number,
                                                                   "error": repr(error)})
                failed += 1
                continue
            text = _tidy(text)
            if text:
                documents.append(upload_document(text, filename, page=number, page_count=page_count, title=title))
        if not documents:
            raise UnreadableDocument(DAMAGED if failed else NO_TEXT_LAYER)
        return documents


def _open(stream: IO[bytes]) -> PdfReader:
    try:
        reader = PdfReader(stream)
        # Many PDFs are encrypted only to restrict printing or copying: they open with an empty password.
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise UnreadableDocument(ENCRYPTED)
        len(reader.pages)  # reads the page tree: a broken one fails here, not halfway through
    except UnreadableDocument:
        raise
    except DependencyError:  # the encryption needs a cryptography library that is not installed
        raise UnreadableDocument(ENCRYPTED) from None
    except _MALFORMED:
        raise UnreadableDocument(DAMAGED) from None
    return reader


def _title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except _MALFORMED:
        return None
    return shorten(str(title)) if title and str(title).strip() else None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\x00", "").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
