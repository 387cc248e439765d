"""Raw throughput of the local embedding model (all-MiniLM-L6-v2 on the CPU): sentences per second for 1000 short
sentences (about 15 words each) at batch sizes 32 and 64.

Part of ``make bench``; ``python -m benchmarks.embedding`` runs it alone. The model is loaded and warmed up before
timing.
Each batch size is timed three times and the median is reported.
"""

from __future__ import annotations

import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SENTENCES = 1000
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


def sentences_per_second(texts: list[str], batch_size: int) -> float:
    from privex_llms.embeddings.local import embed

    started = time.perf_counter()
    embed(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def run() -> str:
    import torch

    from privex_llms.embeddings.local import embed

    texts = sentences()
    embed(texts[:128], batch_size=64)  # load the model and warm up the kernels
    rows = []
    for batch_size in BATCH_SIZES:
        rates = [sentences_per_second(texts, batch_size) for _ in range(RUNS)]
        rows.append(f"| {batch_size} | {statistics.median(rates):.0f} | {min(rates):.0f}–{max(rates):.0f} |\n")
    words = statistics.mean(len(text.split()) for text in texts)
    return (f"\n### Local embedding model (all-MiniLM-L6-v2, CPU, {torch.get_num_threads()} PyTorch threads)\n\n"
            f"{len(texts)} sentences of {words:.1f} words on average; median of {RUNS} runs.\n\n"
            "| batch size | sentences/s | range |\n|---|---|---|\n" + "".join(rows))


if __name__ == "__main__":
    print(run())
