"""Reading retrieved chunks the way the ``extractive`` provider needs them: as sentences that can be quoted alone,
each with the heading it sits under, and as sets of normalised words (stems) that can be compared with a question.

A chunk is plain text or Markdown, as the parsers make it. It is read line by line: Markdown headings, and short
lines without a full stop that introduce what follows ("Refund policy"), become the heading of the sentences
below them and are never quoted themselves (but a short line that ends with a colon and introduces a list is
quotable: it is what the list answers); list items and table rows are units of their own; other lines are
joined into paragraphs (a text file wraps its lines) and split into sentences at ``.``, ``!`` or ``?`` followed by
a capital or a digit, except after a known abbreviation or an initial.

Words are lower-cased, stripped of English stop words (and the words questions are phrased with), and stemmed with
the English Snowball stemmer (the ``snowballstemmer`` package), so "refunds", "refunded" and "refund" are one term.
Nothing here needs downloaded data. (NLTK's copy of the stemmer imported all of NLTK and SciPy with it: 0.8 s of
every web and worker process's start-up.)
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each else
ever few for from further get gets getting got had hadn't has hasn't have haven't having he her here hers herself
him himself his how i i'd i'll i'm i've if in into is isn't it it's its itself just let let's like may me might
more most much must mustn't my myself need needs no nor not now of off on once only or other ought our ours
ourselves out over own please same shall shan't she should shouldn't so some such tell than that that's the their
theirs them themselves then there there's these they they'd they'll they're they've this those through to too
under until up us very want was wasn't we we'd we'll we're we've were weren't what what's whatever when where
where's whether which while who who's whom whose why why's will with won't would wouldn't yes yet you you'd you'll
you're you've your yours yourself yourselves know anyone anything someone something thing things
""".split())

ABBREVIATIONS = frozenset("""
e.g i.e etc vs approx incl excl cf al fig no nos dept est mr mrs ms dr prof sr jr st mt inc ltd co corp jan feb mar
apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun a.m p.m u.s u.k
""".split())

# A snowballstemmer stemmer keeps the word it works on in itself: one per thread (gunicorn serves with threads).
_stemmers = threading.local()

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_SETEXT_RULE = re.compile(r"^\s*(=+|-+)\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•·]|\d{1,3}[.)]|[a-z][.)])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HORIZONTAL_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# The end of a sentence: terminal punctuation, closing quotes or brackets, space, then what may start a sentence.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")
_TERMINAL = re.compile(r"""[.!?:;]["'”’)\]]*$""")

MIN_SENTENCE_WORDS = 4  # shorter units without a full stop are labels or headings, not answers


@dataclass(frozen=True)
class Sentence:
    """A quotable sentence (or list item, or table row) of chunk number ``chunk`` (0-based, in retrieval order),
    the ``index``-th of that chunk, under ``heading`` (the nearest heading above it in the chunk, or "")."""

    text: str
    chunk: int
    index: int
    heading: str = ""
    item: bool = False  # a list item or table row

    @property
    def introduces_list(self) -> bool:
        return self.text.endswith(":")


@lru_cache(maxsize=4096)
def stem(word: str) -> str:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return stemmer.stemWord(word)


def terms(text: str) -> frozenset[str]:
    """The content words of ``text``, normalised: lower case, no stop words, stemmed."""
    found = set()
    for word in _WORD.findall(text.lower()):
        word = word.replace("’", "'")
        if word in STOP_WORDS:
            continue
        word = word.split("'")[0]  # "employee's" -> "employee"
        if (len(word) > 1 or word.isdigit()) and word not in STOP_WORDS:
            found.add(stem(word))
    return frozenset(found)


def sentences(text: str, chunk: int) -> list[Sentence]:
    """The quotable sentences of one chunk's ``text``, in reading order."""
    found: list[Sentence] = []
    heading = ""
    paragraph: list[str] = []
    item = False  # whether the paragraph being read is a list item

    def flush() -> None:
        nonlocal paragraph, heading
        joined = " ".join(paragraph).strip()
        paragraph = []
        if not joined:
            return
        for part in split_sentences(joined):
            if quotable(part):
                found.append(Sentence(part, chunk, len(found), heading, item))
            elif not item:
                heading = part.rstrip(":").strip()  # a label line: it names what follows

    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines):
        stripped = line.strip()
        following = lines[number + 1].strip() if number + 1 < len(lines) else ""
        if len(paragraph) == 1 and not item and _SETEXT_RULE.match(stripped):  # "Title\n=====" is a heading
            heading, paragraph = paragraph[0], []
            continue
        if not stripped or _HORIZONTAL_RULE.match(stripped):
            flush()
            item = False
            continue
        if heading_match := _HEADING.match(line):
            flush()
            heading, item = heading_match.group(1).strip(), False
            continue
        if stripped.startswith("|"):
            flush()
            item = True
            if not _TABLE_RULE.match(stripped):
                paragraph = [" | ".join(cell.strip() for cell in stripped.strip("|").split("|"))]
                flush()
            continue
        if list_match := _LIST_ITEM.match(line):
            flush()
            paragraph, item = [list_match.group(1)], True
            continue
        if not paragraph and not item and following and label(stripped):
            heading = stripped.rstrip(":").strip()  # "Refund policy" above its paragraph
            if stripped.endswith(":") and _LIST_ITEM.match(following):  # "To book travel:" and its list
                found.append(Sentence(stripped, chunk, len(found), heading))
            continue
        paragraph.append(stripped)
    flush()
    return found


def split_sentences(text: str) -> list[str]:
    """``text`` cut at sentence boundaries, not after an abbreviation ("e.g.") or an initial ("J. Smith")."""
    parts, start = [], 0
    for boundary in _BOUNDARY.finditer(text):
        before = text[start:boundary.start() + 1].split()
        last = before[-1].lower().rstrip(".!?") if before else ""
        if text[boundary.start()] == "." and (last in ABBREVIATIONS or (len(last) == 1 and last.isalpha())):
            continue
        parts.append(text[start:boundary.end()].strip())
        start = boundary.end()
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def label(line: str) -> bool:
    """Whether a line names what follows rather than saying something: a few words that do not end like a sentence
    ("Refund policy"), or fewer still ending with a colon ("To apply:")."""
    words = len(line.split())
    if line.endswith(":"):
        return words < MIN_SENTENCE_WORDS
    return words < 2 * MIN_SENTENCE_WORDS and not _TERMINAL.search(line)


def quotable(text: str) -> bool:
    """Whether ``text`` can stand alone in an answer: a few words, or a full sentence."""
    return len(text.split()) >= MIN_SENTENCE_WORDS or bool(re.search(r"[.!?][\"'”’)\]]*$", text))
