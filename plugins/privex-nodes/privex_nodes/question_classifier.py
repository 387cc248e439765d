"""The question classifier node: an LLM picks which of up to eight classes a question belongs to, and the flow
follows that class's port (``class1`` .. ``class8``, or ``other``).

The LLM's answer counts when it names a class: it is a class's number or name, or starts with a name, or is short
(at most 20 words) and names exactly one class. Otherwise, as with the offline ``extractive`` provider, which answers
from documents and does not follow instructions, the node falls back to word overlap: each class scores the question
words (lower-cased, light suffix strip, common words dropped) found in its name (2 points each) and description (1
point each); the highest score wins, a tie goes to the class listed first, no overlap at all goes to ``other``. The
same question and classes always give the same class.
"""

from __future__ import annotations

import re

from privex_nodes.lexical import terms

PORTS = tuple(f"class{i}" for i in range(1, 9))
_CLASS = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "description": {"type": "string", "maxLength": 2000}}}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", str(text).lower()))


def named_class(answer: str, classes: list[dict]) -> int | None:
    """The index of the class the LLM's answer names, or None."""
    said = _norm(answer)
    if not said:
        return None
    names = [_norm(c["name"]) for c in classes]
    number = re.fullmatch(r"(?:class |category )?(\d)", said)
    if number and 1 <= int(number.group(1)) <= len(classes):
        return int(number.group(1)) - 1
    for i, name in enumerate(names):
        if said == name:
            return i
    # "billing because ..." but not "billing questions" when another class is called "billing questions"
    starting = [i for i, name in enumerate(names) if name and (said + " ").startswith(name + " ")]
    if starting:
        return max(starting, key=lambda i: (len(names[i]), -i))
    if len(said.split()) <= 20:
        found = [i for i, name in enumerate(names) if name and re.search(rf"\b{re.escape(name)}\b", said)]
        if len(found) == 1:
            return found[0]
    return None


def lexical_class(question: str, classes: list[dict]) -> int | None:
    asked = terms(question)
    best, best_score = None, 0
    for i, c in enumerate(classes):
        name_terms = terms(c["name"])
        score = 2 * len(asked & name_terms) + len(asked & (terms(c.get("description", "")) - name_terms))
        if score > best_score:
            best, best_score = i, score
    return best


class QuestionClassifierNode:
    name, version = "question_classifier", "1"
    config_schema = {"type": "object", "required": ["classes"], "additionalProperties": False, "properties": {
        "question": {"type": "string", "maxLength": 20000},
        "classes": {"type": "array", "minItems": 1, "maxItems": 8, "items": _CLASS},
        "instruction": {"type": "string", "maxLength": 4000},
        "provider": {"type": "object"}}}
    inputs, outputs = ("in",), (*PORTS, "other")

    def run(self, ctx, inputs):
        c = inputs["config"]
        question = c.get("question") or str(inputs.get("input") or "")
        classes = c["classes"]
        listing = "\n".join(f"{i}. {k['name']}" + (f": {k['description']}" if k.get("description") else "")
                            for i, k in enumerate(classes, 1))
        system = ("Classify the user's question into exactly one of these classes. Answer with the class name "
                  "only, or 'other' if none fits.\n" + listing + (f"\n{c['instruction']}" if c.get("instruction")
                                                                   else ""))
        answer = ctx.llm([{"role": "system", "content": system}, {"role": "user", "content": question}],
                         c.get("provider"))
        index, method = named_class(answer, classes), "llm"
        if index is None and _norm(answer) != "other":
            index, method = lexical_class(question, classes), "lexical"
        if index is None:
            return {"_port": "other", "class": "other", "index": None, "method": method}
        return {"_port": PORTS[index], "class": classes[index]["name"], "index": index + 1, "method": method}
