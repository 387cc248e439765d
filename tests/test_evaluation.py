"""Retrieval evaluation: the ranking metrics on hand-computed rankings, the question file format, and the sample set
in tests/data/retrieval (a fictional company's handbook and product FAQ) ingested with the real default model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from flask.cli import ScriptInfo

from conftest import rolled_back
from privex.cli import main
from privex.models import Document, KnowledgeBase, Organization, Workspace
from privex.services.evaluation import (Question, evaluate, load_questions, mrr_at_k, ndcg_at_k,
                                        recall_at_k)
from privex.services.ingestion import ingest_document
from privex.services.retrieval import Hit

SAMPLE = Path(__file__).parent / "data" / "retrieval"
QUESTIONS = SAMPLE / "questions.jsonl"


def discount(rank: int) -> float:
    return 1 / math.log2(rank + 1)


# -- metrics ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ranked, relevant, k, expected", [
    (["a", "b", "c"], {"a"}, 5, 1.0),
    (["x", "y", "a"], {"a"}, 5, 1.0),
    (["x", "y", "z"], {"a"}, 5, 0.0),  # nothing relevant retrieved
    (["x", "a", "y", "b"], {"a", "b", "c", "d"}, 5, 0.5),
    (["x", "y", "z", "w", "v", "a"], {"a"}, 5, 0.0),  # found, but past the cut-off
    (["x", "y", "z", "w", "v", "a"], {"a"}, 6, 1.0),
    ([], {"a"}, 5, 0.0),
])
def test_recall_at_k(ranked, relevant, k, expected):
    assert recall_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize("ranked, relevant, k, expected", [
    (["a", "b", "c"], {"a"}, 10, 1.0),
    (["x", "y", "a"], {"a"}, 10, 1 / 3),
    (["x", "b", "a"], {"a", "b"}, 10, 1 / 2),  # the first relevant one counts
    (["x", "y", "z"], {"a"}, 10, 0.0),
    (["x", "y", "a"], {"a"}, 2, 0.0),  # past the cut-off
])
def test_mrr_at_k(ranked, relevant, k, expected):
    assert mrr_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize("ranked, relevant, k, expected", [
    (["a", "x", "y"], {"a"}, 10, 1.0),
    (["x", "y", "a"], {"a"}, 10, discount(3)),  # 0.5: 1 / log2(4)
    (["x", "y", "z"], {"a"}, 10, 0.0),
    # two relevant, found at ranks 1 and 3, ideal is ranks 1 and 2
    (["a", "x", "b"], {"a", "b"}, 10, (1 + discount(3)) / (1 + discount(2))),
    # three relevant but k = 2: the ideal has only two places to fill, so finding two of three is perfect
    (["a", "b", "x"], {"a", "b", "c"}, 2, 1.0),
    (["x", "a", "b"], {"a", "b", "c"}, 2, discount(2) / (1 + discount(2))),
    (["a", "a", "x"], {"a", "b"}, 10, 1 / (1 + discount(2))),  # a repeat earns nothing
])
def test_ndcg_at_k(ranked, relevant, k, expected):
    assert ndcg_at_k(ranked, relevant, k) == pytest.approx(expected)


@pytest.mark.parametrize("metric", [recall_at_k, mrr_at_k, ndcg_at_k])
def test_metrics_refuse_an_empty_relevant_set_and_a_k_below_one(metric):
    with pytest.raises(ValueError, match="at least one relevant"):
        metric(["a"], set(), 5)
    with pytest.raises(ValueError, match="k must be at least 1"):
        metric(["a"], {"a"}, 0)


# -- judging hits -------------------------------------------------------------------------------------------------

def hit(document_id: str, text: str = "", name: str | None = None, chunk: str | None = None) -> Hit:
    return Hit(chunk_id=chunk or f"{document_id}-{text[:8]}", text=text, score=0.0, document_id=document_id,
               document_name=name or f"{document_id}.md")


def test_documents_are_ranked_by_their_best_chunk():
    hits = [hit("d1", "a"), hit("d2", "b"), hit("d1", "c"), hit("d3", "d")]
    ranked, relevant = Question("q", document_ids=frozenset({"d3"})).judge(hits)
    assert ranked == ["d1", "d2", "d3"] and relevant == {"d3"}
    assert mrr_at_k(ranked, relevant, 10) == pytest.approx(1 / 3)
    ranked, relevant = Question("q", document_names=frozenset({"d2.md"})).judge(hits)
    assert ranked == ["d1.md", "d2.md", "d3.md"] and relevant == {"d2.md"}


def test_passages_are_judged_per_hit_ignoring_case_and_whitespace():
    hits = [hit("d1", "Nothing here", chunk="c1"),
            hit("d1", "Each key may make\n  600 REQUESTS per minute.", chunk="c2"),
            hit("d2", "… may make 600 requests per minute (overlap)", chunk="c3"),
            hit("d2", "daily quota of 200,000 requests", chunk="c4")]
    question = Question("q", passages=("may make 600 requests per minute", "quota of 200,000", "not there"))
    ranked, relevant = question.judge(hits)
    assert ranked == ["chunk:c1", "passage:0", "chunk:c3", "passage:1"]
    assert relevant == {"passage:0", "passage:1", "passage:2"}
    assert recall_at_k(ranked, relevant, 5) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, relevant, 10) == pytest.approx(1 / 2)


# -- the question file --------------------------------------------------------------------------------------------

def write_lines(tmp_path, *lines) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_questions_reads_each_kind_of_relevance(tmp_path):
    path = write_lines(tmp_path,
                       '{"question": "a?", "relevant_document_ids": ["1", "2"]}',
                       "",
                       '{"question": "b?", "relevant_passages": ["some text"], "kind": "paraphrase"}',
                       '{"question": "c?", "relevant_document_names": ["shipping.md"]}')
    assert load_questions(path) == [Question("a?", document_ids=frozenset({"1", "2"})),
                                    Question("b?", passages=("some text",)),
                                    Question("c?", document_names=frozenset({"shipping.md"}))]


@pytest.mark.parametrize("bad_line, message", [
    ('{"question": "a?", "relevant_document_ids": ["1"]', "not valid JSON"),
    ('["a?", ["1"]]', "expected a JSON object"),
    ('{"relevant_document_ids": ["1"]}', '"question" must be a non-empty string'),
    ('{"question": "  ", "relevant_document_ids": ["1"]}', '"question" must be a non-empty string'),
    ('{"question": "a?"}', "give exactly one of"),
    ('{"question": "a?", "relevant_documents": ["x.md"]}', "give exactly one of"),
    ('{"question": "a?", "relevant_document_ids": ["1"], "relevant_passages": ["x"]}', "give exactly one of"),
    ('{"question": "a?", "relevant_passages": []}', "non-empty list of non-empty strings"),
    ('{"question": "a?", "relevant_document_ids": "1"}', "non-empty list of non-empty strings"),
    ('{"question": "a?", "relevant_document_ids": [1]}', "non-empty list of non-empty strings"),
])
def test_load_questions_names_the_line_of_a_malformed_question(tmp_path, bad_line, message):
    path = write_lines(tmp_path, '{"question": "fine?", "relevant_document_ids": ["1"]}', "", bad_line)
    with pytest.raises(ValueError, match="line 3: ") as error:
        load_questions(path)
    assert message in str(error.value)


def test_load_questions_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(b'{"question": "a?", "relevant_document_ids": ["1"]}\n{"question": "\xff"}\n')
    with pytest.raises(ValueError, match="line 2: not UTF-8 text"):
        load_questions(path)


def test_load_questions_refuses_an_empty_file(tmp_path):
    with pytest.raises(ValueError, match="no questions"):
        load_questions(write_lines(tmp_path, "", "  "))


def test_the_sample_questions_name_documents_of_the_sample_set():
    questions = load_questions(QUESTIONS)
    names = {path.name for path in SAMPLE.glob("*.md")}
    assert len(questions) >= 30 and len(names) >= 12
    assert set().union(*(question.document_names for question in questions)) == names


# -- the sample set, end to end -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(app):
    """The sample set ingested once for this module, with the defaults a new knowledge base gets, inside a
    transaction rolled back when the module's tests are done."""
    with rolled_back(app) as database:
        organization = Organization(name="Brightloom")
        workspace = Workspace(name="main", organization=organization)
        database.session.add_all([organization, workspace])
        database.session.flush()
        knowledge_base = KnowledgeBase(workspace_id=workspace.id, name="brightloom",
                                       embedding_model="all-MiniLM-L6-v2", embedding_dim=384,
                                       chunking_strategy="sentence",
                                       chunking_config={"chunk_size": 256, "chunk_overlap": 32})
        database.session.add(knowledge_base)
        database.session.commit()
        documents = {}
        for path in sorted(SAMPLE.glob("*.md")):
            document = Document(workspace_id=workspace.id, knowledge_base_id=knowledge_base.id, name=path.name,
                                storage_path=str(path))
            database.session.add(document)
            database.session.commit()
            document = ingest_document(document.id)
            assert document.status == "indexed", f"{path.name}: {document.error}"
            documents[path.name] = str(document.id)
        yield knowledge_base, documents


@pytest.fixture(scope="module")
def results(sample):
    return evaluate(sample[0], load_questions(QUESTIONS))


def test_hybrid_does_at_least_as_well_as_the_weaker_single_mode(results):
    vector, keyword, hybrid = results["vector"], results["keyword"], results["hybrid"]
    for metric in ("recall@5", "mrr@10"):
        assert hybrid[metric] >= min(vector[metric], keyword[metric]), results
    for mode, scores in results.items():
        assert scores["questions"] == 32
        assert scores["recall@5"] >= 0.7, (mode, scores)
        assert 0 <= scores["ndcg@10"] <= 1


def test_each_single_mode_has_questions_it_struggles_with(sample):
    """The set is built so that hybrid has a reason to exist: paraphrases (no shared words) defeat keyword search,
    bare codes such as E-4012 defeat the embedding model."""
    kinds = [json.loads(line)["kind"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    questions = load_questions(QUESTIONS)

    def mrr(kind: str, mode: str) -> float:
        chosen = [question for question, label in zip(questions, kinds) if label == kind]
        return evaluate(sample[0], chosen, modes=(mode,))[mode]["mrr@10"]

    assert mrr("paraphrase", "keyword") < mrr("paraphrase", "vector")
    assert mrr("exact", "vector") < mrr("exact", "keyword")


def test_questions_by_document_id_and_by_passage(sample, tmp_path):
    knowledge_base, documents = sample
    path = write_lines(
        tmp_path,
        json.dumps({"question": "How many requests per minute may one API key make?",
                    "relevant_passages": ["each API key may make 600 requests per minute"]}),
        json.dumps({"question": "What do I do when the firmware update fails?",
                    "relevant_document_ids": [documents["troubleshooting.md"]]}))
    results = evaluate(knowledge_base, load_questions(path), modes=("hybrid",), k_recall=3, k_rank=5)
    assert results == {"hybrid": {"recall@3": 1.0, "mrr@5": 1.0, "ndcg@5": 1.0, "questions": 2}}


# -- privex eval ----------------------------------------------------------------------------------------------------

def invoke(application, *args):
    return application.test_cli_runner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: application))


@pytest.fixture()
def few_questions(tmp_path) -> Path:
    """Three sample questions: the command is what is tested here, and every question costs three searches."""
    path = tmp_path / "few.jsonl"
    path.write_text("".join(QUESTIONS.read_text().splitlines(keepends=True)[::12]))
    return path


def test_eval_command_prints_a_row_per_mode(app, sample, few_questions):
    result = invoke(app, "eval", "--kb", str(sample[0].id), "--questions", str(few_questions))
    assert result.exit_code == 0, result.output
    header, *rows = result.output.strip().splitlines()
    assert header.split() == ["mode", "nDCG@10", "recall@1", "recall@5", "recall@10", "MRR@10", "questions"]
    assert [row.split()[0] for row in rows] == ["vector", "keyword", "hybrid"]
    for row in rows:
        assert all(0 <= float(value) <= 1 for value in row.split()[1:6]) and row.split()[6] == "3"


def test_eval_command_prints_json(app, sample, few_questions):
    result = invoke(app, "eval", "--kb", str(sample[0].id), "--questions", str(few_questions), "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert list(printed["summary"]) == printed["settings"]["modes"] == ["vector", "keyword", "hybrid"]
    assert all(set(scores) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "questions"}
               and scores["questions"] == 3 for scores in printed["summary"].values())
    assert len(printed["questions"]) == 3 and set(printed["questions"][0]["results"]) == {"vector", "keyword", "hybrid"}


@pytest.mark.parametrize("kb", ["00000000-0000-0000-0000-000000000000", "not-an-id"])
def test_eval_command_with_an_unknown_knowledge_base(app, sample, kb):
    result = invoke(app, "eval", "--kb", kb, "--questions", str(QUESTIONS))
    assert result.exit_code != 0 and f"knowledge base {kb} not found" in result.output


def test_eval_command_with_a_malformed_question_file(app, sample, tmp_path):
    path = write_lines(tmp_path, '{"question": "a?", "relevant_document_names": ["x.md"]}', '{"question": "b?"}')
    result = invoke(app, "eval", "--kb", str(sample[0].id), "--questions", str(path))
    assert result.exit_code != 0 and "line 2: give exactly one of" in result.output
