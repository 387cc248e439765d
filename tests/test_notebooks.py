"""The three notebooks run, start to end, on a small SciFact sample (tests/data/scifact-sample), so they cannot rot.

They run as `make eval` runs them (``python -m notebooks``), each in a real Jupyter kernel, against this session's
PostgreSQL: the retrieval notebook builds its knowledge base through the real pipeline, the ingestion notebook times
each stage, and the last one evaluates over the HTTP API of a served instance with an API key.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

SAMPLE = Path(__file__).parent / "data" / "scifact-sample"


def printed(path: Path) -> str:
    """Everything the executed notebook's cells printed."""
    notebook = nbformat.read(str(path), as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []) if output.get("output_type") == "stream")


@pytest.mark.slow
def test_every_notebook_runs_on_the_sample_and_reports_what_it_measured(services, tmp_path, monkeypatch):
    from notebooks.__main__ import ORDER, benchmarks_section, run

    if not services["embedded_database"]:
        pytest.skip("the notebooks keep their SciFact databases on an embedded PostgreSQL (DATABASE_URL is set)")
    monkeypatch.delenv("PRIVEX_URL", raising=False)
    out = tmp_path / "out"
    # The session's embedded server holds the notebooks' databases (one per corpus and chunking), beside the tests'.
    executed = run(ORDER, sample=True, out=out, data=SAMPLE, folder=services["folder"], timeout=600)
    assert set(executed) == set(ORDER)

    quality = json.loads((out / "retrieval_quality.json").read_text())
    assert (quality["claims"], quality["abstracts"]) == (12, 58)
    by_mode = {row["mode"]: row for row in quality["rows"] if row["setting"] == "default"}
    assert set(by_mode) == {"vector", "keyword", "hybrid"}
    for row in quality["rows"]:
        assert 0 <= row["ndcg@10"] <= 1 and row["recall@1"] <= row["recall@5"] <= row["recall@20"]
    # On 58 abstracts the cited ones are found: a broken pipeline (no chunks, wrong names) scores 0.
    assert by_mode["hybrid"]["recall@20"] >= 0.8 and by_mode["vector"]["ndcg@10"] >= 0.5
    assert "| default | hybrid |" in benchmarks_section(quality)
    assert (out / "retrieval_quality.png").stat().st_size > 10_000

    ingestion = json.loads((out / "ingestion_performance.json").read_text())
    assert ingestion["documents"] == 58 and ingestion["chunk_texts"] > 0
    assert set(ingestion["stage_seconds"]) == {"parse", "chunk", "embed", "store"}
    assert {row["mode"] for row in ingestion["latency"]} == {"vector", "keyword", "hybrid"}
    assert "of raw" in printed(executed["ingestion_performance"])

    text = printed(executed["your_knowledge_base"])
    assert "12 questions" in text and "hybrid" in text
    assert "failing questions shown" in text
    assert (out / "your_knowledge_base.png").exists()
