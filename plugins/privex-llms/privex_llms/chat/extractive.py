"""The ``extractive`` provider: the offline default, no model. It answers from the retrieved chunks (``context``) by
quoting the sentences most relevant to the last user message, each group followed by the number of the chunk it
comes from ("[2]" is ``context[1]``), and says ``fallback_message`` when nothing relevant was retrieved.

How it chooses, deterministically (the same input always gives the same answer):

1. The question's terms: the content words of the last user message, stemmed (see ``sentences.terms``). No terms
   (a greeting, "what is it?"): the fallback.
2. Every quotable sentence of every chunk (``sentences.sentences``); a sentence repeated by overlapping chunks counts
   once, in the better-ranked chunk.
3. A sentence is relevant when it shares at least one term with the question, and at least a third of them
   (``MIN_COVERAGE``). None relevant: the fallback, with finish reason ``no_answer``.
4. Its score: the rarity (inverse document frequency across the context's sentences) of the question terms it
   holds, plus half that of the terms its heading adds, over the rarity of all question terms the context knows —
   then a small bonus for a better-ranked chunk (``RANK_WEIGHT / (1 + rank)``), which mostly breaks near-ties.
5. The best ``max_sentences`` whose score is within ``KEEP_RATIO`` of the best; a chosen sentence that ends with a
   colon brings the list items that follow it. A very long sentence (a table flattened to text) is cut to the
   ``MAX_QUOTE_WORDS`` around the question term it holds fewest times.
6. Order: the chunks by their best sentence, and within a chunk the sentences in reading order, so quoted
   neighbours read as the document does. Each chunk's sentences end with its marker.

The answer is streamed word by word; the usage is estimated (the question, the conversation and the chunks read,
and the answer written).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from privex_llms.chat.events import ChatEvent, ContextChunk, Message, delta, done
from privex_llms.chat.provider import ChatProvider, last_question
from privex_llms.chat.sentences import Sentence, sentences, terms
from privex_llms.chat.tokens import estimated_usage
from privex_llms.settings import setting

NAME = "extractive"
FALLBACK_MESSAGE = ("I could not find anything about that in the documents I was given. "
                    "Try asking in other words, or about something they cover.")
MAX_SENTENCES = 3
MIN_COVERAGE = 1 / 3  # of the question's terms a sentence must hold to be relevant
KEEP_RATIO = 0.6  # a sentence scoring less than this share of the best one is left out
RANK_WEIGHT = 0.1
HEADING_WEIGHT = 0.5
MAX_LIST_ITEMS = 8  # quoted after a sentence that introduces a list
MAX_QUOTE_WORDS = 60


@dataclass(frozen=True)
class Candidate:
    sentence: Sentence
    score: float


def answer(question: str, context: list[ContextChunk], *, max_sentences: int = MAX_SENTENCES) -> str | None:
    """The extractive answer to ``question`` from ``context`` (best chunk first), or None when nothing in it is
    relevant."""
    wanted = terms(question)
    if not wanted or not context:
        return None
    found = unique(sentence for rank, chunk in enumerate(context) for sentence in sentences(chunk["text"], rank))
    candidates = ranked(wanted, found)
    if not candidates:
        return None
    best = candidates[0].score
    chosen = [c for c in candidates if c.score >= KEEP_RATIO * best][:max_sentences]
    return render(with_lists(chosen, found), wanted)


def unique(found: Iterator[Sentence]) -> list[Sentence]:
    """``found`` without the sentences an earlier (better-ranked) chunk already has: chunks overlap."""
    seen, result = set(), []
    for sentence in found:
        key = " ".join(sentence.text.lower().split())
        if key not in seen:
            seen.add(key)
            result.append(sentence)
    return result


def ranked(wanted: frozenset[str], found: list[Sentence]) -> list[Candidate]:
    """The relevant sentences of ``found``, best first (ties: better chunk, then earlier sentence)."""
    own = [terms(sentence.text) & wanted for sentence in found]
    headings = {heading: terms(heading) & wanted for heading in {sentence.heading for sentence in found}}
    frequency = Counter(term for sentence, held in zip(found, own, strict=True)
                        for term in held | headings[sentence.heading])
    rarity = {term: math.log(1 + len(found) / count) for term, count in frequency.items()}
    known = math.fsum(rarity.values())  # fsum: exact, so the order sets come in (hash seed) cannot tip a tie
    candidates = []
    for sentence, matched in zip(found, own, strict=True):
        if not matched or len(matched) < MIN_COVERAGE * len(wanted):
            continue
        from_heading = headings[sentence.heading] - matched
        weight = math.fsum(rarity[term] for term in matched) + HEADING_WEIGHT * math.fsum(
            rarity[term] for term in from_heading)
        score = weight / known + RANK_WEIGHT / (1 + sentence.chunk)
        candidates.append(Candidate(sentence, score))
    candidates.sort(key=lambda c: (-c.score, c.sentence.chunk, c.sentence.index))
    return candidates


def with_lists(chosen: list[Candidate], found: list[Sentence]) -> list[Candidate]:
    """``chosen`` plus the list items that follow a chosen sentence ending with a colon, scored as it is."""
    result = list(chosen)
    taken = {c.sentence for c in chosen}
    by_place = {(s.chunk, s.index): s for s in found}
    for candidate in chosen:
        if not candidate.sentence.introduces_list:
            continue
        chunk, index = candidate.sentence.chunk, candidate.sentence.index
        for offset in range(1, MAX_LIST_ITEMS + 1):
            following = by_place.get((chunk, index + offset))
            if following is None or not following.item:
                break
            if following not in taken:
                taken.add(following)
                result.append(Candidate(following, candidate.score))
    return result


def render(chosen: list[Candidate], wanted: frozenset[str]) -> str:
    """The chosen sentences grouped by chunk (best group first, reading order inside), each group ending with its
    chunk's marker."""
    groups: dict[int, list[Candidate]] = {}
    for candidate in chosen:
        groups.setdefault(candidate.sentence.chunk, []).append(candidate)
    order = sorted(groups, key=lambda chunk: (-max(c.score for c in groups[chunk]), chunk))
    parts = []
    for chunk in order:
        quoted = sorted(groups[chunk], key=lambda c: c.sentence.index)
        text = " ".join(quote(c.sentence.text, wanted) for c in quoted)
        parts.append(f"{text} [{chunk + 1}]")
    return " ".join(parts)


def quote(text: str, wanted: frozenset[str]) -> str:
    """``text``, or, when it is longer, the ``MAX_QUOTE_WORDS`` of it around the question term it holds fewest
    times (the most telling one: in a flattened price list, the item asked about rather than "costs")."""
    words = text.split()
    if len(words) <= MAX_QUOTE_WORDS:
        return text
    places: dict[str, list[int]] = {}
    for i, word in enumerate(words):
        for term in sorted(terms(word) & wanted):
            places.setdefault(term, []).append(i)
    telling = min(places.values(), key=lambda found: (len(found), found[0]), default=[0])[0]
    start = max(0, min(telling - MAX_QUOTE_WORDS // 3, len(words) - MAX_QUOTE_WORDS))
    end = start + MAX_QUOTE_WORDS
    return ("… " if start else "") + " ".join(words[start:end]) + (" …" if end < len(words) else "")


class ExtractiveProvider(ChatProvider):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("Offline, no model: quotes the retrieved sentences most relevant to the "
                                  "question, with numbered citations")
    properties: ClassVar[dict[str, dict[str, Any]]] = {
        "fallback_message": setting("string", FALLBACK_MESSAGE, "What to answer when nothing relevant was "
                                    "retrieved", minLength=1),
        "max_sentences": setting("integer", MAX_SENTENCES, "Most sentences quoted (list items a quoted "
                                 "sentence introduces come with it)", minimum=1, maximum=10),
    }

    def _answer(self, messages: list[Message], settings: dict[str, Any],
                context: list[ContextChunk]) -> Iterator[ChatEvent]:
        text = answer(last_question(messages), context, max_sentences=settings["max_sentences"])
        finish_reason = "stop"
        if text is None:
            text, finish_reason = settings["fallback_message"], "no_answer"
        for word in re.findall(r"\s*\S+", text):
            yield delta(word)
        read = [chunk["text"] for chunk in context]
        yield done(estimated_usage(messages, text, extra=read), NAME, finish_reason)


PROVIDER = ExtractiveProvider()
