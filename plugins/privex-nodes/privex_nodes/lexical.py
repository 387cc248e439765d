"""Words for the LLM-backed nodes' fallbacks: the offline ``extractive`` provider does not follow instructions, so
the question classifier and the parameter extractor fall back to plain, deterministic word matching."""

from __future__ import annotations

import re

STOPWORDS = frozenset("""a an and are as at be but by can could do does for from has have how i if in into is it its
me my of on or our please should so that the their them then there these this to us was we were what when where
which who why will with would you your""".split())


def stem(word: str) -> str:
    """A light suffix strip, enough for "invoices" to meet "invoice" and "refunding" to meet "refund"."""
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def terms(text: str) -> set[str]:
    return {stem(w) for w in re.findall(r"[^\W_]+", str(text).lower()) if w not in STOPWORDS and len(w) > 1}
