"""Splitting a document into sections by its headings, keeping each section's heading path ("Install > Linux").

Used by the Markdown, HTML (whose main text trafilatura gives as Markdown) and DOCX parsers. Only headings of level
1 to ``SPLIT_LEVEL`` start a section; deeper ones stay inside their section's text, so sections do not shrink to a
line or two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from privex_parsers.files.document import shorten

SPLIT_LEVEL = 3
HEADING_LENGTH = 100


@dataclass
class Section:
    path: tuple[str, ...]  # headings from the top level down; empty for text before the first heading
    text: str              # includes the section's own heading line

    @property
    def heading(self) -> str | None:
        return " > ".join(self.path) or None


class SectionBuilder:
    """Collects lines and headings in document order and cuts them into sections."""

    def __init__(self, split_level: int = SPLIT_LEVEL):
        self.split_level = split_level
        self._stack: list[tuple[int, str]] = []
        self._heading_line: str | None = None
        self._body: list[str] = []
        self._sections: list[Section] = []

    def heading(self, level: int, text: str, line: str | None = None) -> None:
        """A heading of ``level`` (1 = top); ``line`` is how it appears in the section text."""
        text = shorten(text, HEADING_LENGTH)
        if level > self.split_level or not text:
            self.line(line if line is not None else text)
            return
        self._close()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self._heading_line = line if line is not None else text

    def line(self, text: str) -> None:
        self._body.append(text)

    def retract_last_line(self) -> None:
        """Take back the last line: it turned out to be a heading (Markdown's underlined headings)."""
        if self._body:
            self._body.pop()

    def sections(self) -> list[Section]:
        self._close()
        return self._sections

    def _close(self) -> None:
        # A heading directly followed by a subheading makes no section of its own: the subsection's path names it.
        if any(line.strip() for line in self._body):
            lines = ([self._heading_line, ""] if self._heading_line is not None else []) + self._body
            self._sections.append(Section(tuple(heading for _, heading in self._stack), _tidy("\n".join(lines))))
        self._heading_line = None
        self._body = []


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_NOT_A_PARAGRAPH = re.compile(r"^ {0,3}(?:[-*+>]|\d+[.)]|#|\||```|~~~)|^\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"[*_`]+")


def heading_text(markdown: str) -> str:
    """A heading's plain text: links become their label, emphasis and code marks go."""
    return _EMPHASIS.sub("", _LINK.sub(r"\1", markdown)).strip()


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the ``title:`` of a YAML front matter block, the text without that block)."""
    match = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", text, re.S)
    if not match:
        return None, text
    title = re.search(r"^title:[ \t]*(.+?)[ \t]*$", match.group(1), re.M)
    return (title.group(1).strip("'\"") if title else None), text[match.end():]


def markdown_sections(text: str) -> tuple[str | None, list[Section]]:
    """(the first H1, the sections) of a Markdown text. ATX (``## x``) and setext (underlined) headings count;
    ``#`` lines inside fenced code blocks do not."""
    builder = SectionBuilder()
    first_h1: str | None = None
    fence: str | None = None
    previous: str | None = None  # the last line, when it could be the text of a setext heading
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            builder.line(line)
            previous = None
            continue
        if opening:
            fence = opening.group(1)
            builder.line(line)
            previous = None
            continue
        atx = _ATX.match(line)
        setext = _SETEXT.match(line)
        if atx:
            level, label = len(atx.group(1)), heading_text(atx.group(2) or "")
            builder.heading(level, label, line)
            previous = None
        elif setext and previous is not None:
            level, label = (1 if setext.group(1)[0] == "=" else 2), heading_text(previous)
            builder.retract_last_line()
            builder.heading(level, label, f"{previous}\n{line}")
            previous = None
        else:
            builder.line(line)
            previous = None if _NOT_A_PARAGRAPH.match(line) else line
            continue
        if level == 1 and first_h1 is None and label:
            first_h1 = shorten(label)
    return first_h1, builder.sections()
