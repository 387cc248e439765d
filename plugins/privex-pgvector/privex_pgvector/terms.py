"""Terms for keyword ranking: text to stemmed word ids, and the BM25 weights of a chunk and of a question.

A text is lower-cased, split into word tokens (letters and digits), English stop words are dropped and each word is
reduced to its Snowball English stem ("studies" and "studied" are one term). A term is identified by a 31-bit hash of
its stem (``term_id``), which is both its number in the ``terms int[]`` column (GIN-indexed, to find the chunks
holding a word) and its index in the ``sparsevec`` of BM25 weights (``DIMENSIONS``). Two stems sharing a hash (about
one pair in a million among 50,000 distinct stems) would count as one word: an accepted error.

BM25 (Robertson et al., with Lucene's non-negative IDF):

- chunk side, stored per chunk: ``tf · (k1 + 1) / (tf + k1 · (1 − b + b · dl / avgdl))``;
- question side, per question: ``qtf · ln(1 + (N − df + 0.5) / (df + 0.5))`` from the knowledge base's statistics,
  computed by the search statement itself (``store._QUESTION``, in SQL, so a search is one round trip);

so the inner product of the two vectors is the chunk's BM25 score. Pure functions, no database.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

import snowballstemmer

K1 = 1.2  # term-frequency saturation (Lucene's and bm25s's default)
B = 0.75  # length normalisation (ditto)
DIMENSIONS = 1_000_000_000  # pgvector's largest sparsevec
_MODULUS = 999_999_937  # the largest prime below DIMENSIONS: ids are 0 .. _MODULUS - 1 (SparseVector is 0-based)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# English stop words: the function words of the Snowball project's English list plus common contractions' parts.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself yourselves s t d ll m o re ve y don isn aren wasn weren hasn haven hadn
doesn didn won wouldn shan shouldn can couldn mustn mightn needn
""".split())
_stemmer = snowballstemmer.stemmer("english")
_stems: dict[str, str] = {}  # word -> stem: a vocabulary is a few tens of thousands of words, stemming is the cost


def stem(word: str) -> str:
    cached = _stems.get(word)
    if cached is None:
        if len(_stems) > 500_000:
            _stems.clear()
        cached = _stems[word] = _stemmer.stemWord(word)
    return cached


def tokens(text: str) -> list[str]:
    """The text's stemmed words in order, stop words left out."""
    return [stem(word) for word in _WORD.findall(text.lower()) if word not in STOP_WORDS]


def term_id(token: str) -> int:
    """A stable id (the same in every process, unlike ``hash``) in 0 .. DIMENSIONS - 1."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "big") % _MODULUS


def term_counts(text: str) -> Counter:
    """Term id -> occurrences in ``text``."""
    return Counter(term_id(token) for token in tokens(text))


def chunk_weights(counts: Counter, average_length: float) -> dict[int, float]:
    """The chunk side of BM25 for a chunk with these term counts, in a knowledge base whose chunks have
    ``average_length`` terms on average."""
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / average_length) if average_length > 0 else K1
    return {term: count * (K1 + 1) / (count + norm) for term, count in counts.items()}


def idf(chunks: int, frequency: int) -> float:
    """Inverse document frequency of a term found in ``frequency`` of ``chunks`` chunks (never negative). The search
    computes it in SQL (``store._QUESTION``); this is the same formula for what replays the ranking outside PostgreSQL
    (``benchmarks/scifact_variants.py``): change both together (``test_bm25`` checks the search's scores against
    the formula)."""
    return math.log(1 + (chunks - frequency + 0.5) / (frequency + 0.5))
