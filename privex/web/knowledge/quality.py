"""A knowledge base's Quality tab: evaluate retrieval on labelled questions (``services.evaluation_runs``, as the API
and ``privex eval`` do), watch the run's progress, then read its results per mode beside the previous run's, as a
table and a chart, and the questions one by one (the failing ones alone, if asked)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from privex.extensions import db
from privex.models import EvaluationRun, KnowledgeBase
from privex.services import evaluation_inputs as inputs
from privex.services import evaluation_runs as runs
from privex.services.errors import Invalid
from privex.web.forms import form_status, show_errors
from privex.web.knowledge import bp
from privex.web.knowledge.bases import summary
from privex.web.knowledge.forms import EvaluationForm
from privex.web.shell import may, paginate, resource_or_404

QUESTIONS_PER_PAGE = 20
RUNS_SHOWN = 10
EXAMPLE = '{"question": "How long do I have to return an item?", "relevant_document_names": ["returns.md"]}'


@bp.app_template_filter("delta")
def delta(value) -> str:
    """A change of a metric as a reader sees it: +0.031, −0.012, ±0.000."""
    if value is None:
        return ""
    if round(value, 3) == 0:
        return "±0.000"
    return f"{'+' if value > 0 else '−'}{abs(value):.3f}"


@bp.get("/<uuid:kb_id>/quality")
def quality(kb_id, form: EvaluationForm | None = None, status: int = 200):
    """The form, and the chosen run (``?run=``; the newest by default) with its questions; to htmx's polling, the
    run's section alone."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id)
    run = chosen_run(knowledge_base)
    context = run_context(knowledge_base, run)
    if request.htmx and run is not None and request.args.get("run"):
        # The poll: once the run has ended, the recent runs and the form are redrawn with it (out of band), so no
        # part of the tab still says the run is under way.
        ended = not context["busy"]
        return render_template("partials/knowledge/evaluation_run.html", kb=knowledge_base, oob=True,
                               recent=recent_runs(knowledge_base) if ended else None,
                               **form_context(knowledge_base), **context)
    return render_template("knowledge/quality.html", tab="quality", kb=knowledge_base, summary=summary(knowledge_base),
                           recent=recent_runs(knowledge_base), example=EXAMPLE,
                           **form_context(knowledge_base, form), **context), status


def form_context(knowledge_base: KnowledgeBase, form: EvaluationForm | None = None) -> dict:
    """What the form's section needs; ``under_way``: a run of the knowledge base (not abandoned) blocks a new one,
    so the section says so instead of offering a form that would be refused."""
    return {"form": form or EvaluationForm(), "can_write": may("resources.write"),
            "max_questions": inputs.MAX_QUESTIONS, "under_way": runs.busy(knowledge_base) is not None}


def recent_runs(knowledge_base: KnowledgeBase) -> list[EvaluationRun]:
    return db.session.scalars(runs.runs_of(knowledge_base).limit(RUNS_SHOWN)).all()


def chosen_run(knowledge_base: KnowledgeBase) -> EvaluationRun | None:
    wanted = request.args.get("run")
    if wanted:
        return runs.run_of(knowledge_base, resource_or_404(EvaluationRun, wanted))
    return db.session.scalar(runs.runs_of(knowledge_base).limit(1))


def run_context(knowledge_base: KnowledgeBase, run: EvaluationRun | None) -> dict:
    if run is None:
        return {"run": None}
    failing = request.args.get("failing") == "1"
    context = {"run": run, "failing": failing, "busy": runs.under_way(run), "abandoned": runs.abandoned(run),
               "progress": runs.progress(run), "metrics": metrics_of(run.settings)}
    if run.status == "done":
        context["comparison"] = runs.comparison(run)
        context["failing_count"] = db.session.scalar(
            runs.questions_of(run, failed_only=True).with_only_columns(db.func.count()).order_by(None))
        context["questions"] = paginate(runs.questions_of(run, failed_only=failing), QUESTIONS_PER_PAGE)
    return context


def metrics_of(settings: dict) -> list[tuple[str, str]]:
    """(key, label) of each metric a run reports, in the order the table shows them."""
    k_rank = settings.get("k_rank", 10)
    return [(f"ndcg@{k_rank}", f"nDCG@{k_rank}"), *((f"recall@{k}", f"Recall@{k}") for k in settings.get("ks", [])),
            (f"mrr@{k_rank}", f"MRR@{k_rank}")]


@bp.post("/<uuid:kb_id>/quality")
def evaluate(kb_id):
    """Start a run on the uploaded questions; the page then shows its progress."""
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write")
    form = EvaluationForm()
    if form.validate():
        with show_errors(form, fields={"queries": "questions", "qrels": "questions", "file": "questions",
                                       "k": "modes"}):
            # No flash saying it started: it would stay above the results once the run ended; the run's own
            # section says how far it is, and the poll redraws it.
            run = runs.start(knowledge_base, current_user.id, *uploaded(form))
            return redirect(url_for(".quality", kb_id=knowledge_base.id, run=run.id))
    return quality(kb_id, form=form, status=form_status(form))


def uploaded(form: EvaluationForm) -> tuple[list, str, dict]:
    storage = request.files.get("questions")
    if storage is None or not storage.filename:
        raise Invalid("choose a questions file", errors={"questions": ["choose a .jsonl or .zip file"]})
    content = storage.stream.read(inputs.MAX_FILE_BYTES + 1)
    if len(content) > inputs.MAX_FILE_BYTES:
        raise Invalid(f"the file is larger than {inputs.MAX_FILE_BYTES // 2**20} MB",
                      errors={"questions": ["too large"]})
    questions, source = inputs.from_uploads([inputs.Upload("questions", storage.filename, content)],
                                            split=(form.split.data or "").strip() or None)
    return questions, source, runs.settings_of(form.modes.data or None)


@bp.post("/<uuid:kb_id>/quality/<uuid:run_id>/delete")
def delete_evaluation(kb_id, run_id):
    knowledge_base = resource_or_404(KnowledgeBase, kb_id, "resources.write")
    run = runs.run_of(knowledge_base, resource_or_404(EvaluationRun, run_id, "resources.write"))
    runs.delete(run)
    flash("Deleted the evaluation run.", "success")
    return redirect(url_for(".quality", kb_id=knowledge_base.id))
