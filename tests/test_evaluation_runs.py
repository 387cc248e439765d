"""Stored evaluation runs through the API and ``privex eval``, on a tiny knowledge base indexed with the real default
model (Celery eager): starting a run on JSONL, a JSON list, BEIR files or a zipped BEIR folder; progress, summary,
the comparison with the previous run, the failing questions; the CLI giving the very same numbers as the API; and
every kind of bad input answered with a 4xx naming the field and line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from flask.cli import ScriptInfo

from privex.cli import main
from privex.extensions import db
from privex.models import EvaluationQuestion, EvaluationRun, KnowledgeBase
from privex.services import evaluation_inputs, evaluation_runs
from privex.services.evaluation import Question
from tests.helpers import add_member, sign_up
from tests.test_drafts_api import HOURS
from tests.test_knowledge_pages import RETURNS

PLANTS = b"Photosynthesis\nPlants turn sunlight, water and carbon dioxide into sugar and oxygen inside their leaves."
VOLCANO = b"Volcanoes\nMagma rising through the crust erupts from a volcano as lava, ash and hot gas."
QUESTIONS = [
    {"question": "When does the shop open on weekdays?", "relevant_document_names": ["hours.md"]},
    {"question": "Can I get a refund for an unused widget?", "relevant_document_names": ["returns.md"]},
    {"question": "How do plants make sugar from sunlight?", "relevant_document_names": ["101.txt"]},
    # No word in common with any document: keyword search finds nothing, so this question fails.
    {"question": "Which city is Mongolia's capital?", "relevant_document_names": ["202.txt"]},
]
QUERIES = b'{"_id": "q1", "text": "How do plants make sugar from sunlight?"}\n' \
          b'{"_id": "q2", "text": "What comes out of an erupting volcano?"}\n' \
          b'{"_id": "q3", "text": "A query without a judgement"}\n'
QRELS = b"query-id\tcorpus-id\tscore\nq1\t101\t1\nq2\t202\t1\nq2\t101\t0\n"
ALL_METRICS = {"ndcg@10", "recall@1", "recall@5", "recall@10", "mrr@10", "questions"}


def jsonl(items) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@pytest.fixture()
def owner(client):
    return sign_up(client, "olga")


@pytest.fixture()
def kb(owner) -> dict:
    """Four small documents, indexed (eagerly) with the defaults."""
    kb = owner.post("/api/v1/knowledge-bases", json={"name": "tiny"}).get_json()
    for name, content in (("hours.md", HOURS), ("returns.md", RETURNS), ("101.txt", PLANTS), ("202.txt", VOLCANO)):
        response = owner.post(f"/api/v1/knowledge-bases/{kb['id']}/documents/upload",
                              data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")
        assert response.status_code == 202, response.get_json()
    documents = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/documents").get_json()
    assert {document["status"] for document in documents} == {"indexed"}
    return kb


@pytest.fixture()
def empty_kb(owner) -> dict:
    """Enough for refusals, which come before anything is searched."""
    return owner.post("/api/v1/knowledge-bases", json={"name": "empty"}).get_json()


def start(owner, kb, **kwargs):
    return owner.post(f"/api/v1/knowledge-bases/{kb['id']}/evaluations", **kwargs)


def finished(owner, kb, response) -> dict:
    assert response.status_code == 202, response.get_json()
    run = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{response.get_json()['id']}").get_json()
    assert run["status"] == "done", run
    return run


def all_questions(owner, kb, run, **query) -> list[dict]:
    response = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{run['id']}/questions",
                         query_string={"page_size": 100, **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- a run through the API ----------------------------------------------------------------------------------------

def test_a_run_on_json_questions_scores_every_mode_and_finds_the_failing_question(owner, kb):
    run = finished(owner, kb, start(owner, kb, json={"questions": QUESTIONS}))
    assert run["questions_total"] == run["questions_done"] == 4 and run["progress"] == 1.0
    assert run["settings"] == {"modes": ["vector", "keyword", "hybrid"], "ks": [1, 5, 10], "k_rank": 10}
    assert run["created_by_id"] == owner.user_id and run["started_at"] and run["finished_at"] and not run["error"]
    assert set(run["summary"]) == {"vector", "keyword", "hybrid"}  # JSONB keeps no key order: `settings` has it
    for mode, scores in run["summary"].items():
        assert set(scores) == ALL_METRICS and scores["questions"] == 4
        assert all(0 <= scores[name] <= 1 for name in ALL_METRICS - {"questions"})
        assert scores["recall@1"] <= scores["recall@5"] <= scores["recall@10"]
    assert run["summary"]["vector"]["recall@10"] == 1.0  # four documents: all of them are in the first ten
    assert run["summary"]["keyword"]["recall@10"] <= 0.75  # the Mongolia question shares no word with anything
    assert run["comparison"] is None

    questions = all_questions(owner, kb, run)
    assert [item["position"] for item in questions] == [1, 2, 3, 4]
    assert questions[0]["question"] == QUESTIONS[0]["question"]
    assert questions[0]["relevance"] == {"kind": "document_names", "values": ["hours.md"]}
    first = questions[0]["results"]["hybrid"]
    assert first["retrieved"][0] == {"document_id": first["retrieved"][0]["document_id"], "document_name": "hours.md",
                                     "relevant": True}
    assert first["mrr@10"] == 1.0 and first["ndcg@10"] == 1.0
    failing = all_questions(owner, kb, run, failed="true")
    assert [item["position"] for item in failing] == [4]
    assert failing[0]["failed"] is True and failing[0]["results"]["keyword"]["mrr@10"] == 0


def test_runs_are_listed_newest_first_and_compared_with_the_previous_finished_one(owner, kb):
    first = finished(owner, kb, start(owner, kb, json={"questions": QUESTIONS, "modes": ["keyword", "vector"]}))
    second = finished(owner, kb, start(owner, kb, json={"questions": QUESTIONS[:2], "modes": ["vector", "hybrid"],
                                                        "k": [3]}))
    assert second["settings"] == {"modes": ["vector", "hybrid"], "ks": [3], "k_rank": 10}
    comparison = second["comparison"]
    assert comparison["run_id"] == first["id"] and comparison["summary"] == first["summary"]
    assert list(comparison["deltas"]) == ["vector"]  # hybrid was not measured before
    assert set(comparison["deltas"]["vector"]) == {"ndcg@10", "mrr@10"}  # recall@3 was not either
    assert comparison["deltas"]["vector"]["ndcg@10"] == pytest.approx(
        second["summary"]["vector"]["ndcg@10"] - first["summary"]["vector"]["ndcg@10"])
    listed = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations", query_string={"page_size": 1})
    assert [run["id"] for run in listed.get_json()] == [second["id"]]
    assert json.loads(listed.headers["X-Pagination"])["total"] == 2

    assert owner.delete(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{first['id']}").status_code == 204
    assert owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{first['id']}").status_code == 404
    assert owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{second['id']}").get_json()[
        "comparison"] is None
    assert owner.delete(f"/api/v1/knowledge-bases/{kb['id']}").status_code == 204  # runs go with it
    assert db.session.query(EvaluationRun).count() == db.session.query(EvaluationQuestion).count() == 0


def test_a_jsonl_file_and_beir_files_as_multipart(owner, kb):
    run = finished(owner, kb, start(owner, kb, data={"questions": (io.BytesIO(jsonl(QUESTIONS)), "mine.jsonl"),
                                                     "modes": "vector,hybrid", "k": "1,10"},
                                    content_type="multipart/form-data"))
    assert run["source"] == "mine.jsonl" and run["settings"]["modes"] == ["vector", "hybrid"]
    beir = finished(owner, kb, start(owner, kb, data={"queries": (io.BytesIO(QUERIES), "queries.jsonl"),
                                                      "qrels": (io.BytesIO(QRELS), "test.tsv")},
                                     content_type="multipart/form-data"))
    assert beir["questions_total"] == 2  # q3 has no judgement
    questions = all_questions(owner, kb, beir)
    assert questions[1]["relevance"] == {"kind": "corpus_ids", "values": ["202"]}  # score 0 is not relevant
    assert questions[0]["results"]["vector"]["retrieved"][0]["document_name"] == "101.txt"
    assert beir["summary"]["vector"]["mrr@10"] == 1.0


def zipped(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_a_zipped_beir_folder_matches_corpus_ids_by_name_or_metadata(owner, kb):
    documents = {d["name"]: d for d in owner.get(f"/api/v1/knowledge-bases/{kb['id']}/documents").get_json()}
    owner.patch(f"/api/v1/documents/{documents['returns.md']['id']}", json={"metadata": {"beir_id": "R-7"}})
    archive = zipped({"scifact/queries.jsonl": QUERIES + b'{"_id": "q4", "text": "unused widget refund"}\n',
                      "scifact/qrels/test.tsv": QRELS + b"q4\tR-7\t2\n",
                      "scifact/corpus.jsonl": b"not even read",
                      "__MACOSX/scifact/._queries.jsonl": b"junk"})
    run = finished(owner, kb, start(owner, kb, data={"questions": (io.BytesIO(archive), "scifact.zip")},
                                    content_type="multipart/form-data"))
    assert run["source"] == "BEIR: scifact.zip" and run["questions_total"] == 3
    last = all_questions(owner, kb, run)[-1]
    assert last["relevance"] == {"kind": "corpus_ids", "values": ["R-7"]}
    assert last["results"]["keyword"]["retrieved"][0] == {**last["results"]["keyword"]["retrieved"][0],
                                                         "document_name": "returns.md", "relevant": True}


def test_a_second_run_waits_for_the_first_and_a_viewer_reads_but_cannot_start(client, owner, kb, app):
    knowledge_base = db.session.get(KnowledgeBase, kb["id"])
    queued = evaluation_runs.start(knowledge_base, None, [Question("q", document_names=frozenset({"x"}))], "t",
                                   evaluation_runs.settings_of(), queue=False)
    response = start(owner, kb, json={"questions": QUESTIONS})
    assert response.status_code == 409 and "already running" in response.get_json()["message"]
    viewer = add_member(owner, sign_up(client, "vic"), workspace_role="viewer")
    assert viewer.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{queued.id}").get_json()["status"] == "queued"
    assert start(viewer, kb, json={"questions": QUESTIONS}).status_code == 403


def test_a_run_whose_model_is_not_installed_fails_saying_so(owner, kb):
    knowledge_base = db.session.get(KnowledgeBase, kb["id"])
    knowledge_base.embedding_model = "no-such-model"
    db.session.commit()
    response = start(owner, kb, json={"questions": QUESTIONS, "modes": ["vector"]})
    run = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations/{response.get_json()['id']}").get_json()
    assert run["status"] == "failed" and "no-such-model" in run["error"] and run["summary"] == {}


# -- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, field, said", [
    ({}, 422, "questions", "questions"),
    ({"questions": "a?"}, 422, "questions", "list"),
    ({"questions": []}, 422, "questions", "no questions"),
    ({"questions": [QUESTIONS[0], {"question": "b?"}]}, 422, "questions", "item 2: give exactly one of"),
    ({"questions": [QUESTIONS[0], "b?"]}, 422, "questions", "item 2: expected a JSON object"),
    ({"questions": QUESTIONS, "modes": ["telepathy"]}, 422, "modes", "see `errors`"),
    ({"questions": QUESTIONS, "k": [0]}, 422, "k", "see `errors`"),
    ({"questions": QUESTIONS, "k": ["five"]}, 422, "k", "whole numbers"),
    ({"questions": QUESTIONS, "k": [1, 2, 3, 4, 5, 6]}, 422, "k", "see `errors`"),
    ({"questions": [QUESTIONS[0]] * (evaluation_inputs.MAX_QUESTIONS + 1)}, 413, "questions", "at most"),
])
def test_bad_json_bodies_are_refused_naming_the_field(owner, empty_kb, body, status, field, said):
    response = start(owner, empty_kb, json=body)
    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["errors"] and said in response.get_json()["message"]


@pytest.mark.parametrize("files, status, field, said", [
    ({"questions": (b'{"question": "a?", "relevant_document_ids": ["1"]}\n{"question": "b?"\n', "q.jsonl")},
     422, "questions", "line 2: not valid JSON"),
    ({"questions": (b"\xff\xfe", "q.jsonl")}, 422, "questions", "line 1: not UTF-8"),
    ({"queries": (QUERIES, "queries.jsonl")}, 422, "qrels", "qrels"),
    ({"queries": (QUERIES, "queries.jsonl"), "qrels": (b"q1\t101\n", "test.tsv")}, 422, "qrels",
     "test.tsv: line 1: expected three columns"),
    ({"queries": (QUERIES, "queries.jsonl"), "qrels": (b"q1\t101\t1\nq2\t202\thigh\n", "test.tsv")}, 422, "qrels",
     "line 2: the score 'high' is not a number"),
    ({"queries": (b'{"_id": "q1"}\n', "queries.jsonl"), "qrels": (QRELS, "test.tsv")}, 422, "queries",
     'line 1: "text" must be a non-empty string'),
    ({"queries": (QUERIES, "queries.jsonl"), "qrels": (b"nobody\t101\t1\n", "test.tsv")}, 422, "qrels",
     "no query"),
    ({"questions": (b"PK not really", "beir.zip")}, 422, "questions", "not a readable .zip"),
    ({"questions": (zipped({"queries.jsonl": QUERIES}), "beir.zip")}, 422, "qrels", "no qrels found"),
    ({"questions": (zipped({"queries.jsonl": QUERIES, "qrels/train.tsv": QRELS, "qrels/test.tsv": QRELS}),
                    "beir.zip")}, 422, "split", "several splits (test, train)"),
    ({"answers": (b"{}", "a.jsonl")}, 422, "answers", "unknown file field"),
])
def test_bad_uploads_are_refused_naming_the_field_and_line(owner, empty_kb, files, status, field, said):
    data = {name: (io.BytesIO(content), filename) for name, (content, filename) in files.items()}
    response = start(owner, empty_kb, data=data, content_type="multipart/form-data")
    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["errors"], response.get_json()
    assert said in response.get_json()["message"], response.get_json()


def test_a_split_is_chosen_by_name(owner, kb):
    archive = zipped({"queries.jsonl": QUERIES, "qrels/train.tsv": b"q1\t101\t1\n", "qrels/test.tsv": QRELS})
    run = finished(owner, kb, start(owner, kb, data={"questions": (io.BytesIO(archive), "b.zip"), "split": "train"},
                                    content_type="multipart/form-data"))
    assert run["questions_total"] == 1


# -- privex eval gives the API's numbers --------------------------------------------------------------------------

def invoke(application, *args):
    return application.test_cli_runner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: application))


def test_the_cli_and_the_api_give_identical_numbers(app, owner, kb, tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(jsonl(QUESTIONS))
    run = finished(owner, kb, start(owner, kb, data={"questions": (io.BytesIO(path.read_bytes()), "q.jsonl")},
                                    content_type="multipart/form-data"))
    result = invoke(app, "eval", "--kb", kb["id"], "--questions", str(path), "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["summary"] == run["summary"]  # every number, exactly
    assert printed["settings"] == run["settings"]
    api_questions = all_questions(owner, kb, run)
    assert [(q["question"], q["relevance"], q["results"], q["failed"]) for q in printed["questions"]] == [
        (q["question"], q["relevance"], q["results"], q["failed"]) for q in api_questions]

    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_bytes(QUERIES)
    (folder / "qrels" / "test.tsv").write_bytes(QRELS)
    (folder / "corpus.jsonl.gz").write_bytes(b"ignored")
    beir = finished(owner, kb, start(owner, kb, data={"queries": (io.BytesIO(QUERIES), "queries.jsonl"),
                                                      "qrels": (io.BytesIO(QRELS), "test.tsv")},
                                     content_type="multipart/form-data"))
    result = invoke(app, "eval", "--kb", kb["id"], "--beir", str(folder), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"] == beir["summary"]


def test_the_cli_prints_a_table_and_saves_a_run_the_api_lists(app, owner, kb, tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(jsonl(QUESTIONS))
    result = invoke(app, "eval", "--kb", kb["id"], "--questions", str(path), "--modes", "vector,hybrid", "--save")
    assert result.exit_code == 0, result.output
    header, vector, hybrid, saved = result.output.strip().splitlines()
    assert header.split() == ["mode", "nDCG@10", "recall@1", "recall@5", "recall@10", "MRR@10", "questions"]
    assert vector.split()[0] == "vector" and hybrid.split()[-1] == "4"
    listed = owner.get(f"/api/v1/knowledge-bases/{kb['id']}/evaluations").get_json()
    assert saved == f"Saved as run {listed[0]['id']}." and listed[0]["status"] == "done"
    assert listed[0]["source"] == "questions.jsonl" and listed[0]["created_by_id"] is None
    assert f"{listed[0]['summary']['hybrid']['ndcg@10']:.3f}" == hybrid.split()[1]


@pytest.mark.parametrize("args, said", [
    ([], "give either --questions FILE.jsonl or --beir FOLDER"),
    (["--modes", "telepathy"], "modes: each one of vector, keyword, hybrid"),
    (["--k", "five"], "comma-separated whole numbers"),
])
def test_the_cli_refuses_what_it_cannot_run(app, owner, kb, tmp_path, args, said):
    path = tmp_path / "questions.jsonl"
    path.write_bytes(jsonl(QUESTIONS))
    questions = [] if not args else ["--questions", str(path)]
    result = invoke(app, "eval", "--kb", kb["id"], *questions, *args)
    assert result.exit_code != 0 and said in result.output, result.output


def test_the_cli_names_a_beir_folders_problem(app, owner, kb, tmp_path):
    (tmp_path / "qrels-train.tsv").write_bytes(QRELS)
    (tmp_path / "qrels-test.tsv").write_bytes(QRELS)
    (tmp_path / "queries-train.jsonl").write_bytes(QUERIES)
    result = invoke(app, "eval", "--kb", kb["id"], "--beir", str(tmp_path))
    assert result.exit_code != 0 and "several splits (test, train)" in result.output, result.output
    result = invoke(app, "eval", "--kb", kb["id"], "--beir", str(tmp_path), "--split", "train", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["summary"]["hybrid"]["questions"] == 2, result.output
    result = invoke(app, "eval", "--kb", kb["id"], "--beir", str(tmp_path), "--split", "test")
    assert result.exit_code != 0 and "no queries found" in result.output, result.output


def test_the_shared_scifact_folder_reads_as_809_questions():
    folder = Path("/work/shared/data/scifact")
    if not folder.exists():
        pytest.skip("SciFact is not on this machine")
    questions = evaluation_inputs.load_beir(folder)
    assert len(questions) == 809 and all(question.corpus_ids for question in questions)
