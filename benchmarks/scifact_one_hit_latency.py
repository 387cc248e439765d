"""``store.query`` p50 / p95 for hybrid top 10 with and without ``one_per_document``, on the knowledge base
``python -m benchmarks.scifact --full`` built in ``SCIFACT_FOLDER``: 200 claims, two rounds alternating the setting,
the second timed. ``python -m benchmarks.scifact_one_hit_latency``."""
import time, statistics
from benchmarks.scifact import FOLDER, open_app, load
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
import sqlalchemy as sa
app = open_app("scifact_full_default_32_224", FOLDER)
_, claims = load(None)
claims = claims[:200]
with app.app_context():
    from privex.extensions import db
    from privex.models import KnowledgeBase
    from privex.services import components
    kb = db.session.scalar(sa.select(KnowledgeBase).where(KnowledgeBase.name == "scifact"))
    model, store = components.searching(kb)
    vectors = [model.get_query_embedding(text) for _, text, _ in claims]
    times = {False: [], True: []}
    for rnd in range(2):
        for (_, text, _), vector in zip(claims, vectors):
            for option in ((False, True) if rnd % 2 == 0 else (True, False)):
                q = VectorStoreQuery(query_str=text, query_embedding=vector, similarity_top_k=10,
                                     mode=VectorStoreQueryMode.HYBRID)
                t = time.perf_counter(); store.query(q, one_per_document=option); db.session.commit()
                if rnd: times[option].append((time.perf_counter() - t) * 1000)
    for option, values in times.items():
        values.sort()
        print(f"one_per_document={option}: p50 {values[len(values)//2]:.1f} ms, p95 {values[int(len(values)*0.95)]:.1f} ms, mean {statistics.mean(values):.1f} ms (n={len(values)})")
