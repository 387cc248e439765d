"""The ``extractive`` provider on what retrieval hands it for an employee handbook: its answer quotes the passage that
answers the question and cites the chunk it comes from, it says its fallback message when nothing relevant was
retrieved, and the same input always gives the same answer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from privex_llms.chat.extractive import FALLBACK_MESSAGE, PROVIDER

# Chunks as retrieval returns them, best first, for some question about the handbook; not the same order as the
# document, and the answer is not always in the first one.
HANDBOOK = [
    {"text": "## Paid time off\n"
             "Full-time employees receive 25 days of paid vacation per calendar year. Part-time employees receive "
             "vacation in proportion to their contracted hours. Up to 5 unused days may be carried over to the next "
             "year; the rest expire on 31 March.\n\n"
             "## Sick leave\n"
             "If you are ill, tell your manager before 10:00 on the first day. A doctor's note is required for "
             "absences longer than three consecutive days.",
     "document_name": "employee-handbook.md", "position": "Paid time off", "score": 0.82},
    {"text": "# Acme Employee Handbook\n\n"
             "## Working hours\n"
             "Our office is open from 8:00 to 18:00, Monday to Friday. Core hours, when everyone is expected to be\n"
             "available, are 10:00 to 16:00. You may work from home up to two days per week with your manager's\n"
             "agreement.",
     "document_name": "employee-handbook.md", "position": "Working hours", "score": 0.74},
    {"text": "## Expenses\n"
             "Submit expense claims in the finance portal within 30 days of purchase, with a photo of each receipt. "
             "Claims are reimbursed with the next monthly salary payment.\n\n"
             "To book business travel:\n"
             "- Use the company travel desk at travel@acme.example.\n"
             "- Economy class is required for flights under six hours.\n"
             "- Hotels up to 150 EUR per night need no approval.",
     "document_name": "employee-handbook.md", "position": "Expenses", "score": 0.61},
    {"text": "## Equipment\n"
             "Every employee gets a laptop and a headset on their first day. Report lost or stolen equipment to IT "
             "within 24 hours, e.g. by writing to it-help@acme.example.",
     "document_name": "employee-handbook.md", "position": "Equipment", "score": 0.55},
]


def ask(question: str, context=HANDBOOK, **params) -> list[dict]:
    return list(PROVIDER.chat([{"role": "user", "content": question}], params, context=context))


def text_of(events: list[dict]) -> str:
    return "".join(event["text"] for event in events if event["type"] == "delta")


def citations(answer: str) -> list[tuple[str, int]]:
    """(quoted text, chunk number) for each "... [n]" group of an answer."""
    parts = re.split(r"\s*\[(\d+)\]\s*", answer)
    return [(parts[i], int(parts[i + 1])) for i in range(0, len(parts) - 1, 2)]


@pytest.mark.parametrize(("question", "sentence", "chunk"), [
    ("How many vacation days do I get per year?",
     "Full-time employees receive 25 days of paid vacation per calendar year.", 1),
    ("When do I need a doctor's note?",
     "A doctor's note is required for absences longer than three consecutive days.", 1),
    ("What are the core hours?",
     "Core hours, when everyone is expected to be available, are 10:00 to 16:00.", 2),  # wrapped lines rejoined
    ("How long do I have to submit an expense claim?",
     "Submit expense claims in the finance portal within 30 days of purchase, with a photo of each receipt.", 3),
    ("What should I do if my laptop is stolen?",
     "Report lost or stolen equipment to IT within 24 hours, e.g. by writing to it-help@acme.example.", 4),
])
def test_the_answer_quotes_the_sentence_that_answers_and_cites_its_chunk(question, sentence, chunk):
    events = ask(question)
    answer = text_of(events)
    assert any(sentence in quoted and cited == chunk for quoted, cited in citations(answer)), answer
    assert events[-1]["finish_reason"] == "stop"


def test_the_answer_is_short_and_leaves_unrelated_sections_out():
    answer = text_of(ask("How many vacation days do I get per year?"))
    assert "laptop" not in answer and "expense" not in answer and "doctor" not in answer
    assert len(citations(answer)) <= 2


def test_a_sentence_that_introduces_a_list_comes_with_the_list():
    answer = text_of(ask("How do I book business travel?"))
    assert citations(answer) == [("To book business travel: Use the company travel desk at travel@acme.example. "
                                  "Economy class is required for flights under six hours. "
                                  "Hotels up to 150 EUR per night need no approval.", 3)]


def test_the_last_user_message_is_the_question():
    messages = [{"role": "system", "content": "Answer from the handbook."},
                {"role": "user", "content": "How many vacation days do I get per year?"},
                {"role": "assistant", "content": "Full-time employees receive 25 days of paid vacation. [1]"},
                {"role": "user", "content": "And when do I need a doctor's note?"}]
    answer = text_of(PROVIDER.chat(messages, {}, context=HANDBOOK))
    assert "A doctor's note is required" in answer and "vacation" not in answer


def test_a_sentence_repeated_by_overlapping_chunks_is_quoted_once():
    overlapping = [HANDBOOK[0], {"text": "A doctor's note is required for absences longer than three consecutive "
                                         "days. Sick days do not reduce your vacation."}]
    answer = text_of(ask("When is a doctor's note required?", overlapping))
    assert answer.count("A doctor's note is required") == 1


def test_the_answer_streams_word_by_word_and_ends_with_an_estimated_usage():
    events = ask("How many vacation days do I get per year?")
    *deltas, last = events
    assert len(deltas) > 5 and all(event["type"] == "delta" and event["text"].strip() for event in deltas)
    assert all(len(event["text"].split()) == 1 for event in deltas)
    answer = text_of(deltas)
    assert answer.startswith("Full-time employees receive 25 days")
    assert last["type"] == "done" and last["model"] == "extractive"
    usage = last["usage"]
    assert usage["estimated"] is True
    # It read the question and all four chunks, and wrote a sentence or two.
    assert usage["prompt_tokens"] > sum(len(chunk["text"].split()) for chunk in HANDBOOK)
    assert len(answer.split()) <= usage["completion_tokens"] < 3 * len(answer.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("question", ["What is the capital of France?", "Who won the football match yesterday?",
                                      "hello!", "What is it?"])
def test_a_question_the_context_says_nothing_about_gets_the_fallback(question):
    events = ask(question)
    assert text_of(events) == FALLBACK_MESSAGE
    assert events[-1]["finish_reason"] == "no_answer"


@pytest.mark.parametrize("context", [[], None], ids=["empty", "none"])
def test_no_context_gets_the_fallback_message_it_is_given(context):
    events = ask("How many vacation days do I get?", context, fallback_message="Sorry, I don't know that yet.")
    assert text_of(events) == "Sorry, I don't know that yet."
    assert events[-1]["finish_reason"] == "no_answer" and events[-1]["usage"]["completion_tokens"] > 0


QUESTIONS = ["How many vacation days do I get per year?", "How do I book business travel?",
             "When do I need a doctor's note?", "Can I work from home?", "What is the capital of France?"]


def test_the_same_input_gives_the_same_answer_in_this_and_another_process():
    first = [ask(question) for question in QUESTIONS]
    assert [ask(question) for question in QUESTIONS] == first
    # Another process hashes strings differently, so sets iterate in another order: the answers must not care.
    script = ("import json, sys; from privex_llms.chat.extractive import PROVIDER; "
              "questions, context = json.load(sys.stdin); "
              "print(json.dumps([list(PROVIDER.chat([{'role': 'user', 'content': q}], {}, context=context)) "
              "for q in questions]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_HUB_OFFLINE": "1"}
    other = subprocess.run([sys.executable, "-c", script], input=json.dumps([QUESTIONS, HANDBOOK]), env=env,
                           capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(other.stdout) == first


def test_max_sentences_bounds_the_answer():
    answer = text_of(ask("How many days of vacation, and which days are carried over to the next year?",
                         max_sentences=1))
    assert len(re.findall(r"[.!?](?=\s|$)", re.sub(r"\s*\[\d+\]", "", answer))) == 1


def test_plain_text_with_wrapped_lines_and_a_label_heading_is_quoted_whole():
    text_file = [{"text": "Parental leave\n"
                          "New parents may take up to 16 weeks of leave at full pay, which must\n"
                          "start within a year of the birth or adoption.\n\n"
                          "Jury duty\n"
                          "Time spent on jury duty is paid as normal working time."}]
    answer = text_of(ask("How much parental leave can new parents take?", text_file))
    assert answer == ("New parents may take up to 16 weeks of leave at full pay, which must start within a year of "
                      "the birth or adoption. [1]")


def test_a_sentence_without_end_is_quoted_around_the_words_asked_about():
    rows = " ".join(f"item{i} costs {i} EUR" for i in range(80))  # a price list flattened without punctuation
    answer = text_of(ask("What does item57 cost?", [{"text": rows + " and shipping is free"}]))
    assert "item57 costs 57 EUR" in answer
    assert answer.startswith("… ") and answer.endswith(" … [1]")
    assert len(answer.split()) <= 60 + 3


def test_stems_are_right_when_many_threads_stem_at_once():
    # gunicorn answers with threads; a Snowball stemmer object keeps the word it works on in itself.
    import threading

    from privex_llms.chat import sentences

    words = [f"{base}{suffix}" for base in ("refund", "deliver", "organiz", "holiday", "employ", "process", "connect")
             for suffix in ("", "s", "ed", "ing", "ation", "ations", "er", "ers", "ment")]
    expected = {}
    for word in words:
        sentences.stem.cache_clear()
        expected[word] = sentences.stem(word)
    wrong = []

    def stem_all():
        for _ in range(30):
            sentences.stem.cache_clear()
            wrong.extend(word for word in words if sentences.stem(word) != expected[word])

    threads = [threading.Thread(target=stem_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
