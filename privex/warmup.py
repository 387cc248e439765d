"""Load, as a server process starts, what its first question or document would otherwise load on the way.

The local embedding model takes seconds to read and run for the first time in each process (5 to 9 s per fresh web
worker was measured on two busy cores), and so does the first use of LlamaIndex's tokenizer, which the chat path
counts tokens with: without this, the first visitor served by each new worker waited that long. `privex serve` calls
``warm_up`` in every gunicorn worker before it accepts connections, and Celery's worker processes call it as they
start (privex/tasks/__init__.py).

Only embedding models that compute in this process are warmed: those whose descriptor says ``local = True``. Asking
a remote one (Ollama, an OpenAI-compatible server) would send a request at every start and wait on its timeout
when it is down, for no gain: there is nothing to load here.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from flask import Flask

from privex.extensions import db, state
from privex.models import KnowledgeBase

log = logging.getLogger(__name__)
SAMPLE = "Which documents answer this question?"


def warm_up(app: Flask, process: str) -> list[str]:
    """Run each local embedding model knowledge bases use (and the default for new ones) and the tokenizer once;
    returns the models warmed. A model that fails is logged and skipped: its first real use reports the error."""
    started = time.perf_counter()
    warmed = []
    with app.app_context():
        embedding_models = state().plugins.embedding_models
        for name in models_in_use():
            try:
                model = embedding_models[name]
                if getattr(model, "local", False):
                    model.create().get_query_embedding(SAMPLE)
                    warmed.append(name)
            except Exception:  # noqa: BLE001 - a broken or missing model must not stop the server from starting
                log.warning("could not warm up embedding model %r", name, exc_info=True)
    _tokenizer()
    log.info("%s warmed up", process, extra={"embedding_models": warmed,
                                             "seconds": round(time.perf_counter() - started, 2)})
    return warmed


def models_in_use() -> list[str]:
    """The embedding models of existing knowledge bases, and the one a new knowledge base gets."""
    default = KnowledgeBase.__table__.c.embedding_model.default.arg
    try:
        names = db.session.scalars(sa.select(KnowledgeBase.embedding_model).distinct()).all()
    except sa.exc.SQLAlchemyError:  # no database yet, or not migrated: the default is still worth loading
        log.warning("could not list the embedding models in use; warming the default only", exc_info=True)
        names = []
    finally:
        db.session.rollback()
    return sorted({default, *names})


def _tokenizer() -> None:
    from llama_index.core.utils import get_tokenizer

    get_tokenizer()(SAMPLE)
