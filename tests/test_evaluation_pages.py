"""The Quality tab of a knowledge base through the test client (CSRF off, Celery eager): the empty state with an
example line, starting a run from a JSONL file or a zipped BEIR folder, the results per mode with the change since
the previous run, the chart and its text alternative, the questions (the failing ones alone), the progress section
htmx polls while a run is under way, refusals beside the field, viewers read-only, deleting a run."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from privex.extensions import db
from privex.models import EvaluationRun, Organization
from privex.services import evaluation_runs, invitations
from privex.services.evaluation import Question
from tests.test_drafts_api import HOURS
from tests.test_evaluation_runs import PLANTS, QRELS, QUERIES, QUESTIONS, VOLCANO, jsonl, zipped
from tests.test_knowledge_pages import RETURNS, made_knowledge_base, said, signed_in_owner
from tests.test_web_shell import error_of, html, person, sign_in


@pytest.fixture()
def handbook(client):
    user, workspace = signed_in_owner(client)
    knowledge_base = made_knowledge_base(workspace, user, "Handbook", ("hours.md", HOURS), ("returns.md", RETURNS),
                                         ("101.txt", PLANTS), ("202.txt", VOLCANO))
    return user, workspace, knowledge_base


def evaluate(client, knowledge_base, content: bytes, name="questions.jsonl", modes=("vector", "keyword", "hybrid"),
             **fields):
    return client.post(f"/knowledge/{knowledge_base.id}/quality",
                       data={"questions": (io.BytesIO(content), name), "modes": list(modes), **fields},
                       content_type="multipart/form-data")


def test_the_empty_state_says_what_to_upload_with_an_example_line(client, handbook):
    page = html(client.get(f"/knowledge/{handbook[2].id}/quality"))
    assert 'aria-current="page">Quality</a>' in page
    assert "How well does this knowledge base find answers?" in page
    assert "{&#34;question&#34;: &#34;How long do I have to return an item?&#34;" in page
    assert "relevant_document_names" in page and "queries.jsonl" in page
    assert 'name="questions"' in page and 'type="checkbox"' in page and "Start the evaluation" in page


def test_a_run_shows_its_results_chart_and_failing_questions(client, handbook):
    knowledge_base = handbook[2]
    response = evaluate(client, knowledge_base, jsonl(QUESTIONS))
    assert response.status_code == 302, html(response)
    shown = client.get(response.headers["Location"])
    page, text = html(shown), said(shown)
    run = db.session.query(EvaluationRun).one()
    assert run.status == "done"
    assert "Results" in text
    assert "Evaluating" not in text  # no flash left over above the finished results
    assert "The next run will show how each score changed." in text
    assert re.search(r'<th scope="col" class="team-number">Meaning <span class="hint">\(vector\)</span></th>'
                     r'<th scope="col" class="team-number">Words <span class="hint">\(keyword\)</span></th>', page)
    for metric, label in (("ndcg@10", "nDCG@10"), ("recall@1", "Recall@1"), ("recall@10", "Recall@10"),
                          ("mrr@10", "MRR@10")):
        cells = r"\s*".join(rf'<td class="team-number">{run.summary[mode][metric]:.3f}</td>'
                            for mode in ("vector", "keyword", "hybrid"))
        assert re.search(rf'<th scope="row">{label}</th>\s*{cells}', page), metric
    # The chart, with the same numbers in words for screen readers.
    assert '<svg viewBox="0 0 400' in page and 'role="img" aria-labelledby="chart-title chart-desc"' in page
    assert f"Words: nDCG@10 {run.summary['keyword']['ndcg@10']:.3f}, Recall@10" in page
    assert "All (4)" in text and "Failing only (1)" in text
    assert "Which city is Mongolia's capital?" in page.replace("&#39;", "'")
    failing = said(client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}&failing=1"))
    assert "Which city is Mongolia" in failing and "When does the shop open" not in failing
    assert "hours.md <span class=\"eval-mark\">(relevant)</span>" in page


def test_a_second_run_shows_the_change_and_the_earlier_runs(client, handbook):
    knowledge_base = handbook[2]
    evaluate(client, knowledge_base, jsonl(QUESTIONS))
    response = evaluate(client, knowledge_base, jsonl(QUESTIONS[:2]), modes=("vector",))
    page = html(client.get(response.headers["Location"]))
    first, second = db.session.query(EvaluationRun).order_by(EvaluationRun.created_at).all()
    change = second.summary["vector"]["ndcg@10"] - first.summary["vector"]["ndcg@10"]
    sign = "±" if round(change, 3) == 0 else ("+" if change > 0 else "−")
    assert f'<span class="eval-delta' in page and f"{sign}{abs(change):.3f}" in page
    assert f'Changes are against <a href="/knowledge/{knowledge_base.id}/quality?run={first.id}">the run of' in page
    assert "Recent runs" in page
    assert f"/quality?run={first.id}" in page


def test_a_zipped_beir_folder_runs_from_the_page(client, handbook):
    archive = zipped({"queries.jsonl": QUERIES, "qrels/test.tsv": QRELS})
    response = evaluate(client, handbook[2], archive, name="beir.zip")
    assert response.status_code == 302
    assert "BEIR: beir.zip · 2 questions" in said(client.get(response.headers["Location"]))


@pytest.mark.parametrize("content, name, fields, said_beside", [
    (b"", "", {}, "Choose a .jsonl or .zip file."),
    (b'{"question": "a?"}\n', "q.jsonl", {}, "Line 1: give exactly one of"),
    (zipped({"queries.jsonl": QUERIES, "qrels/train.tsv": QRELS, "qrels/test.tsv": QRELS}), "b.zip", {},
     "Several splits"),
])
def test_refusals_are_shown_beside_the_file_field(client, handbook, content, name, fields, said_beside):
    response = evaluate(client, handbook[2], content, name=name, **fields)
    assert response.status_code == 422, html(response)
    page = html(response)
    if said_beside == "Several splits":
        assert "One of test, train" in error_of(page, "split")
    else:
        assert said_beside in error_of(page, "questions")
    assert db.session.query(EvaluationRun).count() == 0


def test_a_run_under_way_shows_a_progress_bar_that_htmx_polls(client, handbook):
    user, _workspace, knowledge_base = handbook
    run = evaluation_runs.start(knowledge_base, user.id, [Question(q["question"], document_names=frozenset(
        q["relevant_document_names"])) for q in QUESTIONS], "q.jsonl", evaluation_runs.settings_of(), queue=False)
    run.questions_done = 1
    db.session.commit()
    page = html(client.get(f"/knowledge/{knowledge_base.id}/quality"))
    poll = f'hx-get="/knowledge/{knowledge_base.id}/quality?run={run.id}" hx-trigger="every 1500ms"'
    assert poll in page and '<progress id="run-progress"' in page and "1 of 4 questions scored" in page
    partial = client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}", headers={"HX-Request": "true"})
    assert html(partial).startswith("<section id=\"evaluation-run\"") and poll in html(partial)
    evaluation_runs.execute(run.id)
    done = html(client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}", headers={"HX-Request": "true"}))
    assert "hx-trigger" not in done and "Results" in done and "<svg" in done  # the polling stops


def test_the_poll_that_sees_a_run_finish_redraws_the_recent_runs_too(client, handbook):
    """The list of recent runs sits outside the polled section: the poll's answer carries it out of band once the
    run has ended, so the tab no longer says "Running" beside results."""
    user, _workspace, knowledge_base = handbook
    evaluate(client, knowledge_base, jsonl(QUESTIONS), modes=("keyword",))
    run = evaluation_runs.start(knowledge_base, user.id, [Question(q["question"], document_names=frozenset(
        q["relevant_document_names"])) for q in QUESTIONS], "second.jsonl", evaluation_runs.settings_of(), queue=False)
    page = said(client.get(f"/knowledge/{knowledge_base.id}/quality"))
    assert "Recent runs" in page and "· Queued" in page
    assert "Another evaluation can start when this one has finished." in page and "Start the evaluation" not in page
    polled = html(client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}", headers={"HX-Request": "true"}))
    assert "evaluation-runs" not in polled and 'id="evaluate"' not in polled  # nothing to redraw while it runs
    evaluation_runs.execute(run.id)
    polled = html(client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}", headers={"HX-Request": "true"}))
    recent = polled[polled.index('<section id="evaluation-runs"'):]
    assert 'hx-swap-oob="true"' in recent.split(">", 1)[0]
    best = max(scores["ndcg@10"] for scores in db.session.get(EvaluationRun, run.id).summary.values())
    assert f"· Done · best nDCG@10 {best:.3f}" in " ".join(recent.split())
    assert "Queued" not in recent and "Running" not in recent
    assert "Changes are against <a href=" in polled  # the comparison with the first run, in the same answer
    # and the form is back, in place of the line saying another run must wait
    form = polled[polled.index('<section id="evaluate"'):]
    assert 'hx-swap-oob="true"' in form.split(">", 1)[0] and "Start the evaluation" in form


def test_the_first_run_finishing_keeps_a_place_for_the_list(client, handbook):
    user, _workspace, knowledge_base = handbook
    run = evaluation_runs.start(knowledge_base, user.id, [Question("When does the shop open?", document_names=frozenset(
        {"hours.md"}))], "first.jsonl", evaluation_runs.settings_of(("keyword",)), queue=False)
    assert '<div id="evaluation-runs"></div>' in html(client.get(f"/knowledge/{knowledge_base.id}/quality"))
    evaluation_runs.execute(run.id)
    polled = html(client.get(f"/knowledge/{knowledge_base.id}/quality?run={run.id}", headers={"HX-Request": "true"}))
    assert '<div id="evaluation-runs" hx-swap-oob="true"></div>' in polled  # a target that exists, so no htmx error


def test_a_run_whose_worker_stopped_says_so_stops_polling_and_lets_another_start(client, handbook):
    user, _workspace, knowledge_base = handbook
    run = evaluation_runs.start(knowledge_base, user.id, [Question("When does the shop open?", document_names=frozenset(
        {"hours.md"}))], "first.jsonl", evaluation_runs.settings_of(("keyword",)), queue=False)
    run.status, run.updated_at = "running", evaluation_runs.now() - evaluation_runs.STALE_AFTER - timedelta(minutes=1)
    db.session.commit()
    page = said(client.get(f"/knowledge/{knowledge_base.id}/quality"))
    assert "Evaluation stopped" in page and "stopped after 0 of 1 questions" in page
    assert "hx-trigger" not in page and "Start the evaluation" in page


def test_viewers_read_runs_but_cannot_start_or_delete_one(app, client, handbook):
    user, workspace, knowledge_base = handbook
    evaluate(client, knowledge_base, jsonl(QUESTIONS), modes=("keyword",))
    run = db.session.query(EvaluationRun).one()
    person("vic@example.com")
    viewer = app.test_client()
    sign_in(viewer, "vic@example.com")
    invitations.invite_or_add(db.session.get(Organization, workspace.organization_id), user, "owner",
                              "vic@example.com", "member", workspace_id=workspace.id, workspace_role="viewer")
    db.session.commit()
    viewer.post("/context", data={"context": f"{workspace.organization_id}/{workspace.id}"})
    page = html(viewer.get(f"/knowledge/{knowledge_base.id}/quality"))
    assert "Results" in page and "Start the evaluation" not in page and "Delete this run" not in page
    assert evaluate(viewer, knowledge_base, jsonl(QUESTIONS)).status_code == 403
    assert viewer.post(f"/knowledge/{knowledge_base.id}/quality/{run.id}/delete").status_code == 403


def test_deleting_a_run(client, handbook):
    knowledge_base = handbook[2]
    evaluate(client, knowledge_base, jsonl(QUESTIONS), modes=("keyword",))
    run = db.session.query(EvaluationRun).one()
    response = client.post(f"/knowledge/{knowledge_base.id}/quality/{run.id}/delete")
    assert response.status_code == 302
    assert "Deleted the evaluation run." in said(client.get(response.headers["Location"]))
    assert db.session.query(EvaluationRun).count() == 0
    other = made_knowledge_base(handbook[1], handbook[0], "Other")
    evaluate(client, knowledge_base, jsonl(QUESTIONS), modes=("keyword",))
    run = db.session.query(EvaluationRun).one()
    assert client.get(f"/knowledge/{other.id}/quality?run={run.id}").status_code == 404  # not its run
