"""Evaluation runs of a knowledge base: start one on labelled questions (JSONL, a BEIR folder, or a JSON list), watch
its progress, read its summary beside the previous run's, its per-question results (the failing ones alone), delete
it. The work is ``privex.services.evaluation_runs``, shared with ``privex eval``."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from privex.api.pagination import SelectPage
from privex.models import EvaluationRun, KnowledgeBase
from privex.services import evaluation_inputs as inputs
from privex.services import evaluation_runs as service
from privex.services.errors import Invalid, TooLarge
from privex.tenancy.context import ResourceView, caller

blp = Blueprint("evaluations", __name__, url_prefix="/knowledge-bases", description="Retrieval evaluations")

FIELDS = ("questions", "file", "queries", "qrels")
QUESTION_EXAMPLE = {"question": "How long do refunds take?", "relevant_document_names": ["returns.md"]}


class RunSchema(Schema):
    id = fields.UUID()
    knowledge_base_id = fields.UUID()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    source = fields.String(metadata={"description": "where the questions came from (a file name)"})
    settings = fields.Dict(metadata={"description": "`modes`, recall cut-offs `ks`, and `k_rank` for nDCG and MRR"})
    questions_total = fields.Integer()
    questions_done = fields.Integer()
    progress = fields.Method("progress_of", metadata={"description": "0-1, questions scored so far"})
    summary = fields.Dict(metadata={"description": "per mode: ndcg@10, recall@k, mrr@10 (means) and questions"})
    error = fields.String(allow_none=True, metadata={"description": "why it failed"})
    created_by_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)

    def progress_of(self, run) -> float:
        return service.progress(run)


class ComparisonSchema(Schema):
    run_id = fields.UUID(metadata={"description": "the previous finished run of this knowledge base"})
    finished_at = fields.DateTime(allow_none=True)
    summary = fields.Dict()
    deltas = fields.Dict(metadata={"description": "per mode and metric: this run's mean minus the previous one's"})


class RunDetailSchema(RunSchema):
    comparison = fields.Nested(ComparisonSchema, allow_none=True)


class QuestionResultSchema(Schema):
    position = fields.Integer()
    question = fields.String(attribute="text")
    relevance = fields.Dict(metadata={"description": "`kind` (document_ids, document_names, passages, corpus_ids) "
                                                     "and `values`"})
    results = fields.Dict(metadata={"description": "per mode: its metrics and `retrieved` (document id, name, "
                                                   "relevant) best first; empty until scored"})
    failed = fields.Boolean(allow_none=True, metadata={
        "description": "nothing relevant among the first 10 in at least one mode (null until scored)"})


class QuestionArgs(Schema):
    failed = fields.Boolean(metadata={"description": "true: only the questions that failed in some mode"})


START_BODY = {"content": {
    "application/json": {"schema": {"type": "object", "required": ["questions"], "properties": {
        "questions": {"type": "array", "maxItems": inputs.MAX_QUESTIONS, "items": {"type": "object"},
                      "example": [QUESTION_EXAMPLE],
                      "description": "each like a line of the JSONL format (docs/evaluation.md)"},
        "modes": {"type": "array", "items": {"type": "string", "enum": list(service.DEFAULT_MODES)}},
        "k": {"type": "array", "items": {"type": "integer"}, "description": "recall cut-offs (default 1, 5, 10)"}}}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "questions": {"type": "string", "format": "binary", "description": "a JSONL file, or a .zip of a BEIR folder"},
        "queries": {"type": "string", "format": "binary", "description": "BEIR queries.jsonl"},
        "qrels": {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "BEIR qrels .tsv"},
        "split": {"type": "string", "description": "which qrels split, when a folder has several"},
        "modes": {"type": "string", "description": "comma-separated, e.g. `vector,hybrid`"},
        "k": {"type": "string", "description": "comma-separated recall cut-offs, e.g. `1,5,10`"}}}}}}


def uploads_of(files) -> list[inputs.Upload]:
    uploads = []
    for field in files:
        if field not in FIELDS:
            raise Invalid(f"unknown file field `{field}`: use {', '.join(FIELDS)}", errors={field: ["unknown field"]})
        for storage in files.getlist(field):
            content = storage.stream.read(inputs.MAX_FILE_BYTES + 1)
            if len(content) > inputs.MAX_FILE_BYTES:
                raise TooLarge(f"{storage.filename} is larger than {inputs.MAX_FILE_BYTES // 2**20} MB",
                               errors={field: ["too large"]})
            uploads.append(inputs.Upload(field, storage.filename or field, content))
    return uploads


def listed(value, field: str) -> list[str]:
    """A form's comma-separated or repeated values, or a JSON list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, (str, int)) for item in value):
        raise Invalid(f"`{field}` must be a list", errors={field: ["a list"]})
    return [str(part).strip() for item in value for part in str(item).split(",") if str(part).strip()]


def whole_numbers(values: list[str]) -> list[int]:
    try:
        return [int(value) for value in values]
    except ValueError:
        raise Invalid("`k` must be whole numbers", errors={"k": ["whole numbers, e.g. 1,5,10"]}) from None


def requested() -> tuple[list, str, dict]:
    """The questions, their source and the settings of this request (multipart or JSON)."""
    if request.mimetype == "multipart/form-data":
        questions, source = inputs.from_uploads(uploads_of(request.files), split=request.form.get("split") or None)
        modes, ks = listed(request.form.getlist("modes"), "modes"), listed(request.form.getlist("k"), "k")
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "questions" not in body:
            raise Invalid('send {"questions": [...]} as JSON, or the files as multipart/form-data',
                          errors={"questions": ["missing"]})
        questions, source = inputs.from_json(body["questions"]), "questions sent as JSON"
        modes, ks = listed(body.get("modes"), "modes"), listed(body.get("k"), "k")
    return questions, source, service.settings_of(modes or None, whole_numbers(ks) or None)


@blp.route("/<uuid:kb_id>/evaluations")
class Evaluations(ResourceView):
    resources = {"kb_id": KnowledgeBase}

    @blp.response(200, RunSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, kb_id):
        """List a knowledge base's evaluation runs, newest first"""
        return service.runs_of(self.found["kb_id"])

    @blp.doc(requestBody=START_BODY)
    @blp.response(202, RunSchema)
    @blp.alt_response(409, description="An evaluation of this knowledge base is already running")
    @blp.alt_response(413, description="Too many questions or too large a file")
    def post(self, kb_id):
        """Evaluate retrieval on labelled questions (JSONL, a BEIR folder or a JSON list); runs in the background"""
        questions, source, settings = requested()
        return service.start(self.found["kb_id"], caller().user_id, questions, source, settings)


@blp.route("/<uuid:kb_id>/evaluations/<uuid:run_id>")
class EvaluationItem(ResourceView):
    resources = {"kb_id": KnowledgeBase, "run_id": EvaluationRun}

    def run(self) -> EvaluationRun:
        return service.run_of(self.found["kb_id"], self.found["run_id"])

    @blp.response(200, RunDetailSchema)
    def get(self, kb_id, run_id):
        """An evaluation run: progress, summary per mode, and the change since the previous finished run"""
        run = self.run()
        run.comparison = service.comparison(run)
        return run

    @blp.response(204)
    def delete(self, kb_id, run_id):
        """Delete an evaluation run with its results"""
        service.delete(self.run())


@blp.route("/<uuid:kb_id>/evaluations/<uuid:run_id>/questions")
class EvaluationQuestions(ResourceView):
    resources = {"kb_id": KnowledgeBase, "run_id": EvaluationRun}

    @blp.arguments(QuestionArgs, location="query")
    @blp.response(200, QuestionResultSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, args, kb_id, run_id):
        """An evaluation run's questions in order, with what each mode retrieved (`failed=true`: the failing ones)"""
        return service.questions_of(service.run_of(self.found["kb_id"], self.found["run_id"]),
                                    failed_only=args.get("failed", False))
